"""Settings from environment variables, with documented defaults.

Every variable is prefixed ``ANTIFRAUD_``; per-service ones carry the service
name, e.g. ``ANTIFRAUD_RISK_ADDR``. See README.md, "Configuration".
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

#: Default listen addresses; also where peers find each other on one machine.
DEFAULT_ADDRS: dict[str, str] = {
    "gateway": "127.0.0.1:50050",
    "identity": "127.0.0.1:50051",
    "risk": "127.0.0.1:50052",
    "report": "127.0.0.1:50053",
    "warning": "127.0.0.1:50054",
    # Partner simulators, all hosted by one "partners" process, each on its own port:
    # three carriers and an MVNO, three banks, face check, the national ID registry.
    "partners": "127.0.0.1:50060",
    "carrier-cmcc": "127.0.0.1:50061",
    "carrier-cucc": "127.0.0.1:50062",
    "carrier-ctcc": "127.0.0.1:50063",
    "carrier-mvno": "127.0.0.1:50064",
    "bank-icbc": "127.0.0.1:50071",
    "bank-ccb": "127.0.0.1:50072",
    "bank-abc": "127.0.0.1:50073",
    "face": "127.0.0.1:50081",
    "registry": "127.0.0.1:50082",
}


def env_key(service: str) -> str:
    """``carrier-cmcc`` → ``CARRIER_CMCC``, the infix of that process's variables."""
    return service.upper().replace("-", "_")


def env(name: str, default: str = "") -> str:
    return os.environ.get(f"ANTIFRAUD_{name}", default)


def env_float(name: str, default: float) -> float:
    raw = env(name)
    return float(raw) if raw else default


def env_int(name: str, default: int) -> int:
    raw = env(name)
    return int(raw) if raw else default


def data_dir() -> Path:
    return Path(env("DATA_DIR", "var/data"))


def keys_dir() -> Path:
    """Where generated development keys live: ``ANTIFRAUD_KEYS_DIR``, else ``keys`` beside
    the data dir (``var/keys`` for ``var/data``), never inside it (see keys.py)."""
    configured = env("KEYS_DIR")
    if configured:
        return Path(configured)
    return data_dir().parent / "keys"


def database_url(service: str) -> str:
    """``ANTIFRAUD_<SERVICE>_DATABASE_URL``, else ``ANTIFRAUD_DATABASE_URL``, else SQLite."""
    url = env(f"{env_key(service)}_DATABASE_URL") or env("DATABASE_URL")
    if url:
        return url
    return f"sqlite+aiosqlite:///{data_dir() / (service + '.db')}"


def database_schema(service: str) -> str | None:
    """The PostgreSQL schema a service owns (``ANTIFRAUD_<SERVICE>_DB_SCHEMA``)."""
    if not database_url(service).startswith("postgresql"):
        return None
    return env(f"{env_key(service)}_DB_SCHEMA") or f"antifraud_{service.replace('-', '_')}"


def listen_addr(service: str) -> str:
    return env(f"{env_key(service)}_ADDR", DEFAULT_ADDRS.get(service, "127.0.0.1:0"))


def target(service: str) -> str:
    """Where a peer service is reached: ``ANTIFRAUD_<SERVICE>_TARGET``, else its listen address."""
    return env(f"{env_key(service)}_TARGET") or listen_addr(service)


@dataclass(frozen=True)
class TlsSettings:
    """Certificate paths: TLS when ``cert`` and ``key`` are set, mutual with ``client_ca``."""

    cert: str = ""
    key: str = ""
    client_ca: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.cert and self.key)


@dataclass(frozen=True)
class ServerSettings:
    name: str
    addr: str
    grace_seconds: float = 5.0
    tls: TlsSettings = field(default_factory=TlsSettings)

    @classmethod
    def from_env(cls, name: str, addr: str | None = None) -> ServerSettings:
        return cls(
            name=name,
            addr=addr if addr is not None else listen_addr(name),
            grace_seconds=env_float("GRACE_SECONDS", 5.0),
            tls=TlsSettings(
                cert=env("TLS_CERT"), key=env("TLS_KEY"), client_ca=env("TLS_CLIENT_CA")
            ),
        )
