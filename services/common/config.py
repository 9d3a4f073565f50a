"""Settings from environment variables, with documented defaults, checked at start.

Every variable is prefixed ``ANTIFRAUD_``; per-service ones carry the service
name, e.g. ``ANTIFRAUD_RISK_ADDR``. See README.md, "Configuration".

``check_environment()`` runs first in every ``antifraud`` command: it validates the
shared settings (``SharedSettings``, read with pydantic-settings) and every per-process
address and database URL present, and raises ``SettingError`` naming the variable, its
value and the form expected. Each service's own numbers are read at start through
``env_float`` / ``env_int``, which check on read the same way, so a bad value stops the
process before it serves, never in the middle of a call.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PREFIX = "ANTIFRAUD_"

#: Default listen addresses; also where peers find each other on one machine.
DEFAULT_ADDRS: dict[str, str] = {
    "gateway": "127.0.0.1:50050",
    "identity": "127.0.0.1:50051",
    "risk": "127.0.0.1:50052",
    "report": "127.0.0.1:50053",
    "warning": "127.0.0.1:50054",
    # Partner simulators, all hosted by one "partners" process, each on its own port:
    # four carriers (China Broadnet included) and the MVNOs, three banks, face check,
    # the national ID registry.
    "partners": "127.0.0.1:50060",
    "carrier-cmcc": "127.0.0.1:50061",
    "carrier-cucc": "127.0.0.1:50062",
    "carrier-ctcc": "127.0.0.1:50063",
    "carrier-mvno": "127.0.0.1:50064",
    "carrier-cbn": "127.0.0.1:50065",
    "bank-icbc": "127.0.0.1:50071",
    "bank-ccb": "127.0.0.1:50072",
    "bank-abc": "127.0.0.1:50073",
    "face": "127.0.0.1:50081",
    "registry": "127.0.0.1:50082",
    # The analyst and police web console (HTTP), a client of the gateway.
    "console": "127.0.0.1:8090",
}

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("auto", "json", "console")
DATABASE_FORM = "sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST:PORT/DB"
ADDR_FORM = "HOST:PORT with PORT 0-65535 (IPv6 as [::1]:PORT)"
_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
_ADDR = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]*):(\d{1,5})$")
_SCHEMA = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")


class SettingError(ValueError):
    """A setting with a value the suite cannot use: says which, what it was, what is expected."""

    def __init__(self, variable: str, value: str, expected: str) -> None:
        self.variable = variable
        self.value = _PASSWORD.sub(r"\1***@", value)  # never echo a database password
        self.expected = expected
        super().__init__(f"{variable}={self.value!r}: expected {expected}")


def env_key(service: str) -> str:
    """``carrier-cmcc`` → ``CARRIER_CMCC``, the infix of that process's variables."""
    return service.upper().replace("-", "_")


def env(name: str, default: str = "") -> str:
    return os.environ.get(f"{PREFIX}{name}", default)


T = TypeVar("T")


def env_parsed(name: str, default: T, parse: Callable[[str], T], expected: str) -> T:
    """``ANTIFRAUD_<name>`` through ``parse`` (which raises ValueError), else ``default``."""
    raw = env(name).strip()
    if not raw:
        return default
    try:
        return parse(raw)
    except ValueError as exc:
        reason = f" ({exc})" if str(exc) else ""
        raise SettingError(f"{PREFIX}{name}", raw, f"{expected}{reason}") from None


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    """A finite number of at least ``minimum`` (durations, rates, thresholds)."""

    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ValueError from None  # float()'s own message adds nothing to the form
        if not math.isfinite(value) or value < minimum:
            raise ValueError
        return value

    return env_parsed(name, default, parse, f"a number >= {minimum:g}")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    """A whole number of at least ``minimum`` (counts, limits)."""

    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError from None
        if value < minimum:
            raise ValueError
        return value

    return env_parsed(name, default, parse, f"a whole number >= {minimum}")


def _check_database_url(url: str) -> str:
    driver = url.partition("://")[0] if "://" in url else ""
    if driver not in _DRIVERS:
        raise ValueError(f"expected {DATABASE_FORM}")
    return url


def _check_addr(addr: str) -> str:
    if addr.startswith("unix:"):
        return addr
    match = _ADDR.match(addr)
    if match is None or int(match.group(1)) > 65535:
        raise ValueError(f"expected {ADDR_FORM}")
    return addr


class _Missing(ValueError):
    """A setting that must be set because another one is."""

    def __init__(self, field_name: str, expected: str) -> None:
        self.field_name = field_name
        self.expected = expected
        super().__init__(expected)


class SharedSettings(BaseSettings):
    """The settings every process reads, validated by pydantic-settings.

    Each field is ``ANTIFRAUD_<FIELD>``; its description is the form a bad value is told.
    """

    model_config = SettingsConfigDict(env_prefix=PREFIX, env_ignore_empty=True, extra="ignore")

    log_level: Literal["debug", "info", "warning", "error", "critical"] = Field(
        default="info", description="one of " + ", ".join(LOG_LEVELS)
    )
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="one of " + ", ".join(LOG_FORMATS)
    )
    grace_seconds: float = Field(
        default=5.0,
        ge=0,
        le=3600,
        allow_inf_nan=False,
        description="a number of seconds, 0 to 3600",
    )
    data_dir: Path = Field(default=Path("var/data"), description="a directory path")
    database_url: str = Field(default="", description=DATABASE_FORM)
    tls_cert: str = Field(
        default="", description="a readable PEM certificate file, set with TLS_KEY"
    )
    tls_key: str = Field(default="", description="a readable PEM key file, set with TLS_CERT")
    tls_client_ca: str = Field(
        default="", description="a readable PEM file, with TLS_CERT and TLS_KEY"
    )
    tls_ca: str = Field(default="", description="a readable PEM file")
    tls_client_cert: str = Field(
        default="", description="a readable PEM file, set with TLS_CLIENT_KEY"
    )
    tls_client_key: str = Field(
        default="", description="a readable PEM file, set with TLS_CLIENT_CERT"
    )

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _database(cls, value: str) -> str:
        return _check_database_url(value) if value else value

    @field_validator(
        "tls_cert", "tls_key", "tls_client_ca", "tls_ca", "tls_client_cert", "tls_client_key"
    )
    @classmethod
    def _readable(cls, value: str) -> str:
        if value and not os.access(value, os.R_OK):
            raise ValueError("no readable file there")
        return value

    @model_validator(mode="after")
    def _pairs(self) -> SharedSettings:
        for first, second in (("tls_cert", "tls_key"), ("tls_client_cert", "tls_client_key")):
            if bool(getattr(self, first)) != bool(getattr(self, second)):
                missing, other = (second, first) if getattr(self, first) else (first, second)
                raise _Missing(missing, f"a file as well, since {PREFIX}{other.upper()} is set")
        if self.tls_client_ca and not self.tls_cert:
            raise _Missing("tls_cert", f"a file as well, since {PREFIX}TLS_CLIENT_CA is set")
        if self.tls_client_cert and not self.tls_ca:
            raise _Missing("tls_ca", f"a file as well, since {PREFIX}TLS_CLIENT_CERT is set")
        return self


def shared() -> SharedSettings:
    """The shared settings as the environment says now; SettingError for a bad value."""
    try:
        return SharedSettings()
    except ValidationError as exc:
        raise _setting_error(exc) from None


def _setting_error(exc: ValidationError) -> SettingError:
    error = exc.errors()[0]
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, _Missing):
        variable = f"{PREFIX}{cause.field_name.upper()}"
        return SettingError(variable, env(cause.field_name.upper()), cause.expected)
    name = str(error["loc"][0]) if error["loc"] else ""
    info = SharedSettings.model_fields.get(name)
    expected = info.description if info is not None and info.description else error["msg"]
    if error["type"] == "value_error" and name.startswith("tls_"):
        expected = f"{expected} ({cause})"
    return SettingError(f"{PREFIX}{name.upper()}", env(name.upper()), expected)


def check_environment(environ: Mapping[str, str] | None = None) -> SharedSettings:
    """Validate every setting present once, at start: the shared ones, then each process's
    address, database URL and schema. The first bad one raises SettingError."""
    settings = shared()
    environ = os.environ if environ is None else environ
    for variable, raw in sorted(environ.items()):
        value = raw.strip()
        if not variable.startswith(PREFIX) or not value:
            continue
        if variable.endswith("_METRICS_ADDR") and value.lower() == "off":
            continue
        if variable.endswith("_ADDR"):
            _check(variable, value, _check_addr, ADDR_FORM)
        elif variable.endswith("_DATABASE_URL"):
            _check(variable, value, _check_database_url, DATABASE_FORM)
        elif variable.endswith("_WORKERS") and not (value.isdigit() and int(value) >= 1):
            raise SettingError(variable, value, "a whole number >= 1")
        elif variable.endswith("_DB_SCHEMA") and not _SCHEMA.match(value):
            raise SettingError(variable, value, "a schema name: letters, digits, _ (max 63)")
    return settings


def _check(variable: str, value: str, check: Callable[[str], str], expected: str) -> None:
    try:
        check(value)
    except ValueError:
        raise SettingError(variable, value, expected) from None


def data_dir() -> Path:
    return shared().data_dir


def keys_dir() -> Path:
    """Where generated development keys live: ``ANTIFRAUD_KEYS_DIR``, else ``keys`` beside
    the data dir (``var/keys`` for ``var/data``), never inside it (see keys.py)."""
    configured = env("KEYS_DIR")
    if configured:
        return Path(configured)
    return data_dir().parent / "keys"


def database_url(service: str) -> str:
    """``ANTIFRAUD_<SERVICE>_DATABASE_URL``, else ``ANTIFRAUD_DATABASE_URL``, else SQLite."""
    own = env_parsed(f"{env_key(service)}_DATABASE_URL", "", _check_database_url, DATABASE_FORM)
    url = own or shared().database_url
    if url:
        return url
    return f"sqlite+aiosqlite:///{data_dir() / (service + '.db')}"


def database_schema(service: str) -> str | None:
    """The PostgreSQL schema a service owns (``ANTIFRAUD_<SERVICE>_DB_SCHEMA``)."""
    if not database_url(service).startswith("postgresql"):
        return None
    return env(f"{env_key(service)}_DB_SCHEMA") or f"antifraud_{service.replace('-', '_')}"


def listen_addr(service: str) -> str:
    default = DEFAULT_ADDRS.get(service, "127.0.0.1:0")
    return env_parsed(f"{env_key(service)}_ADDR", default, _check_addr, ADDR_FORM)


def health_addr(service: str) -> str:
    """``ANTIFRAUD_<SERVICE>_HEALTH_ADDR``: where plaintext health is served, if anywhere."""
    return env_parsed(f"{env_key(service)}_HEALTH_ADDR", "", _check_addr, ADDR_FORM)


#: Services that run one server process per core under ``antifraud up`` unless
#: ``ANTIFRAUD_<NAME>_WORKERS`` says otherwise: they are stateless between calls (the risk
#: index follows the database in each process), and a Python server uses one core.
MULTI_WORKER = frozenset({"risk", "gateway"})


def workers(service: str) -> int:
    """How many server processes ``antifraud up`` starts for ``service`` on its one port."""
    default = (os.cpu_count() or 1) if service in MULTI_WORKER else 1
    return env_int(f"{env_key(service)}_WORKERS", default, minimum=1)


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
    #: On SIGTERM: NOT_SERVING, still taking calls this long, then the grace.
    drain_seconds: float = 0.0
    tls: TlsSettings = field(default_factory=TlsSettings)
    #: A plaintext port serving the health service alone (``<NAME>_HEALTH_ADDR``), for
    #: probes that cannot speak mutual TLS (Kubernetes gRPC probes, compose health checks).
    health_addr: str = ""
    #: 0: the only process on its address; k >= 1: worker k of several processes that
    #: share the address (SO_REUSEPORT: the kernel spreads connections among them).
    worker: int = 0

    @classmethod
    def from_env(cls, name: str, addr: str | None = None, worker: int = 0) -> ServerSettings:
        settings = shared()
        return cls(
            name=name,
            addr=addr if addr is not None else listen_addr(name),
            worker=worker,
            grace_seconds=settings.grace_seconds,
            drain_seconds=env_float("DRAIN_SECONDS", 1.0),
            health_addr=health_addr(name),
            tls=TlsSettings(
                cert=settings.tls_cert, key=settings.tls_key, client_ca=settings.tls_client_ca
            ),
        )
