"""The one test harness: databases to test on, servers in this process, servers as processes.

- ``database_urls()`` lists the backends every integration test runs on: SQLite
  always, PostgreSQL when 127.0.0.1:5432 answers (the skip is reported).
- ``serving(component)`` runs a component on the shared runtime on a free port.
- ``ProcessSuite`` starts `antifraud serve NAME` processes on free ports, as
  `antifraud up` does, for end-to-end and kill -9 tests.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import grpc
import sqlalchemy as sa

from services.common import tokens
from services.common.config import ServerSettings, env_key
from services.common.health_client import wait_serving
from services.common.server import Component, RunningServer, start_server
from tests.speak_as import SpeakAs

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get(
    "ANTIFRAUD_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


def postgres_reachable() -> bool:
    host_port = PG_URL.split("@", 1)[1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    try:
        with socket.create_connection((host, int(port or 5432)), timeout=1):
            return True
    except OSError:
        return False


_handed_out: set[int] = set()


def free_port() -> int:
    """A port nothing listens on now, and one this test run has not handed out before:
    the kernel may offer the same free port twice before either is bound."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def antifraud(
    *args: str, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the ``antifraud`` command (``services.cli``) to its end, its output kept."""
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def use_token_keys() -> Path:
    """Generate every issuer's signing key into a fresh directory and point this process
    (and every process it starts) at it, so tests can speak as anyone."""
    import tempfile

    directory = Path(tempfile.mkdtemp(prefix="antifraud-token-keys-"))
    os.environ["ANTIFRAUD_TOKEN_KEYS_DIR"] = str(directory)
    for issuer in sorted(tokens.ISSUERS):
        tokens.ensure_key(issuer, directory)
    return directory


def cache_bytecode() -> None:
    """Let the processes this run starts keep their compiled bytecode, outside the source
    tree, when ``PYTHONDONTWRITEBYTECODE`` would have each one compile every module of ours
    again (about a fifth of a server's start-up CPU; a run starts hundreds of them).

    The cache is this interpreter's venv's (``make clean`` removes it); a changed source
    is compiled again, as with ``__pycache__``."""
    if not os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
        return  # bytecode is written where Python writes it by default
    os.environ.setdefault("PYTHONPYCACHEPREFIX", str(Path(sys.prefix) / "pycache"))


#: Whom a test call speaks as when its ``x-principal`` metadata names no one: an
#: administrator may call anything.
DEFAULT_PRINCIPAL = "admin:tests"


def channel(address: str) -> grpc.aio.Channel:
    """A channel to one of our services whose calls carry a signed token, as the gateway's
    and the services' own calls do (``x-principal`` metadata picks whom; empty: none)."""
    return grpc.aio.insecure_channel(
        address, interceptors=SpeakAs(DEFAULT_PRINCIPAL, 120.0).interceptors()
    )


def tls_credentials(folder: Path, client: str = "operator") -> grpc.ChannelCredentials:
    """Client credentials from ``folder``: the CA and ``client``'s pair, in the flat layout
    of ``antifraud tls-certs --dir`` (``ca.crt``, ``<client>.crt``, ``<client>.key``) or, when
    it has a ``tls.crt``, the per-process one (``ca.crt``, ``tls.crt``, ``tls.key``)."""
    flat = not (folder / "tls.crt").exists()
    cert, key = (f"{client}.crt", f"{client}.key") if flat else ("tls.crt", "tls.key")
    return grpc.ssl_channel_credentials(
        (folder / "ca.crt").read_bytes(), (folder / key).read_bytes(), (folder / cert).read_bytes()
    )


def tls_env(folder: Path, process: str) -> dict[str, str]:
    """What process ``process`` is given for mutual TLS, as compose gives it: its own pair
    for serving and calling, the CA for checking both ways; the gateway asks callers for
    no certificate (its callers hold API keys)."""
    ca, cert, key = folder / "ca.crt", folder / f"{process}.crt", folder / f"{process}.key"
    return {
        "ANTIFRAUD_TLS_CERT": str(cert),
        "ANTIFRAUD_TLS_KEY": str(key),
        "ANTIFRAUD_TLS_CLIENT_CA": "" if process == "gateway" else str(ca),
        "ANTIFRAUD_TLS_CA": str(ca),
        "ANTIFRAUD_TLS_CLIENT_CERT": str(cert),
        "ANTIFRAUD_TLS_CLIENT_KEY": str(key),
    }


def new_schema(prefix: str) -> str:
    return f"t_{prefix}_{uuid.uuid4().hex[:10]}"


def sqlite_url(tmp: Path, name: str) -> str:
    return f"sqlite+aiosqlite:///{tmp / (name + '.db')}"


async def drop_schema(schema: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(PG_URL)
    async with engine.begin() as conn:
        await conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    await engine.dispose()


@asynccontextmanager
async def serving(component: Component, *, grace: float = 0.5) -> AsyncIterator[RunningServer]:
    """Run a component on the shared runtime on a free port for the duration of the block."""
    running = await start_server(component, ServerSettings(component.name, "127.0.0.1:0"))
    try:
        yield running
    finally:
        await running.stop(grace)


class ProcessSuite:
    """Servers as separate OS processes, each on a free port, wired to each other by environment.

    ``replicas`` runs more processes of a service (``risk-2``, ...); peers reach all of
    them through one round-robin target. ``also_ports`` gives free ports to servers that
    another process hosts (the partner simulators inside ``partners``). ``tls_dir`` (what
    ``antifraud tls-certs --dir`` wrote) turns mutual TLS on, each process with its own
    certificate; readiness is then asked on each one's plaintext health-only port.
    """

    def __init__(
        self,
        names: list[str],
        *,
        data_dir: Path,
        extra_env: dict[str, str] | None = None,
        replicas: dict[str, int] | None = None,
        also_ports: list[str] | None = None,
        tls_dir: Path | None = None,
    ):
        self.tls_dir = tls_dir
        self.names = list(names)
        self.service_of = {name: name for name in names}
        for service, count in (replicas or {}).items():
            for i in range(2, count + 1):
                self.names.append(f"{service}-{i}")
                self.service_of[f"{service}-{i}"] = service
        self.addrs = {name: f"127.0.0.1:{free_port()}" for name in self.names}
        #: Where each process serves /metrics: free ports of their own (the default, the
        #: gRPC port + 1000, could be another process's free port).
        self.metrics_addrs = {name: f"127.0.0.1:{free_port()}" for name in self.names}
        #: With TLS, where each process answers health in plaintext (and nothing else).
        self.health_addrs = (
            {name: f"127.0.0.1:{free_port()}" for name in self.names} if tls_dir else {}
        )
        self.env = {
            **os.environ,
            "ANTIFRAUD_DATA_DIR": str(data_dir),
            "ANTIFRAUD_LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        for name in also_ports or []:
            self.env[f"ANTIFRAUD_{env_key(name)}_ADDR"] = f"127.0.0.1:{free_port()}"
        for name in names:
            self.env[f"ANTIFRAUD_{env_key(name)}_ADDR"] = self.addrs[name]
            group = [self.addrs[n] for n in self.names if self.service_of[n] == name]
            if len(group) > 1:
                self.env[f"ANTIFRAUD_{env_key(name)}_TARGET"] = "ipv4:" + ",".join(group)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.log_dir = data_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)

    def set_addr(self, name: str, addr: str) -> None:
        self.env[f"ANTIFRAUD_{env_key(name)}_ADDR"] = addr

    def start(self, name: str) -> None:
        service = self.service_of.get(name, name)
        env = dict(self.env)
        if name in self.addrs:
            env[f"ANTIFRAUD_{env_key(service)}_ADDR"] = self.addrs[name]
            env[f"ANTIFRAUD_{env_key(service)}_METRICS_ADDR"] = self.metrics_addrs[name]
        if self.tls_dir is not None:
            env |= tls_env(self.tls_dir, service)
            if name in self.health_addrs:
                env[f"ANTIFRAUD_{env_key(service)}_HEALTH_ADDR"] = self.health_addrs[name]
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the process
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "serve", service],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    async def start_all(self, timeout: float = 60) -> None:
        for name in self.names:
            self.start(name)
        await asyncio.gather(*(self.wait(name, timeout) for name in self.names))

    async def wait(self, name: str, timeout: float = 60) -> None:
        await wait_serving(self.health_addrs.get(name) or self.addrs[name], timeout=timeout)

    def kill(self, name: str) -> None:
        """kill -9: no shutdown, no flush, no goodbye."""
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def terminate(self, name: str, timeout: float = 10) -> int:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout)

    def stop_all(self, timeout: float = 10) -> None:
        """SIGTERM to every process at once, then wait; a process still there ``timeout``
        seconds after the SIGTERM (one deadline for all of them) is killed."""
        procs = list(self.procs.values())
        self.procs.clear()
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    async def stop_all_async(self, timeout: float = 10) -> None:
        """``stop_all`` without blocking this process's event loop while the processes
        stop: what they still talk to here (a test's TCP proxy, an in-process server)
        keeps answering, so their shutdown does not wait on it until its timeouts."""
        await asyncio.to_thread(self.stop_all, timeout)

    def log_text(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def process_suite(
    names: list[str], data_dir: Path, extra_env: dict[str, str] | None = None
) -> Iterator[ProcessSuite]:
    suite = ProcessSuite(names, data_dir=data_dir, extra_env=extra_env)
    try:
        yield suite
    finally:
        suite.stop_all()
