"""A server process's start and end: fail in one line, tell the supervisor, die with it.

- ``check_can_listen`` finds an address another process holds before gRPC tries it, so
  "port in use" is one clear line rather than gRPC's "Failed to bind" and a core log line.
- ``fatal_start_error`` turns what stops a process from starting (a bad setting, an address
  in use, a database that cannot be reached) into one line, without a traceback.
- Under ``antifraud up`` (``ANTIFRAUD_SUPERVISOR_PID`` set): ``die_with_supervisor`` makes the
  kernel send this process SIGTERM when the supervisor dies, even by ``kill -9``
  (Linux ``prctl(PR_SET_PDEATHSIG)``, set by the child itself after exec, so no
  ``preexec_fn`` runs between fork and exec in a threaded parent; elsewhere a thread
  watches the parent pid), and ``notify_ready`` writes ``ready`` to the descriptor in
  ``ANTIFRAUD_READY_FD`` once this process's own server took its ports and is SERVING.
  SIGTERM, not SIGKILL: the orphan still drains its in-flight calls within the grace.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from services.common.config import SettingError

SUPERVISOR_PID = "ANTIFRAUD_SUPERVISOR_PID"
READY_FD = "ANTIFRAUD_READY_FD"
#: Exit status of a process that could not start (sysexits EX_CONFIG for bad settings,
#: EX_UNAVAILABLE for a port or database it cannot have); the supervisor reports it.
EXIT_BAD_SETTING = 78
EXIT_CANNOT_START = 69

_PR_SET_PDEATHSIG = 1

T = TypeVar("T")


class StartError(RuntimeError):
    """A process cannot start for a reason outside the code: said in one line."""


class ConfigurationError(StartError):
    """A component refused its configuration while being built (a service's own parser,
    e.g. the identity keys): a bad setting, in its own words."""


def build_checked(build: Callable[[], T]) -> T:
    """``build()``, with a ValueError from a settings parser as a ConfigurationError."""
    try:
        return build()
    except SettingError:
        raise
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


def check_can_listen(addr: str, *, shared: bool = False) -> None:
    """StartError when ``addr`` (``host:port``) is held by another process or not local;
    ``shared``: a worker's address, which its sibling workers may hold already."""
    if addr.startswith("unix:"):
        return
    host, _, port = addr.rpartition(":")
    if int(port) == 0:
        return
    host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(
            host or None, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise StartError(f"cannot listen on {addr}: {exc.strerror}") from None
    for family, kind, proto, _, sockaddr in infos:
        with socket.socket(family, kind, proto) as probe:
            # As gRPC binds: SO_REUSEADDR (a TIME_WAIT leftover is no obstacle), SO_REUSEPORT
            # only for workers.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if shared:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            try:
                probe.bind(sockaddr)
            except OSError as exc:
                raise StartError(f"cannot listen on {addr}: {exc.strerror}") from None


def fatal_start_error(exc: BaseException) -> tuple[str, dict[str, str], int] | None:
    """(event, fields, exit status) for an error that stops a start, logged in one line
    without a traceback; None for anything else (a bug: its traceback is wanted)."""
    if isinstance(exc, SettingError):
        fields = {"variable": exc.variable, "value": exc.value, "expected": exc.expected}
        return "bad setting", fields, EXIT_BAD_SETTING
    if isinstance(exc, ConfigurationError):
        return "bad setting", {"error": str(exc)}, EXIT_BAD_SETTING
    if isinstance(exc, StartError):
        return "cannot start", {"error": str(exc)}, EXIT_CANNOT_START
    if isinstance(exc, RuntimeError) and str(exc).startswith("Failed to bind to address"):
        addr = str(exc).removeprefix("Failed to bind to address ").split(";")[0]
        return "cannot start", {"error": f"cannot listen on {addr}"}, EXIT_CANNOT_START
    if isinstance(exc, OperationalError | InterfaceError) or (
        isinstance(exc, DBAPIError) and (exc.connection_invalidated or _while_connecting(exc))
    ):
        return "cannot start", {"error": f"database: {_first_line(exc.orig)}"}, EXIT_CANNOT_START
    if isinstance(exc, OSError | TimeoutError | sqlite3.OperationalError):
        # Raised at start by connecting to a database or peer, or opening a file.
        where = "database: " if _from_database_driver(exc) else ""
        return "cannot start", {"error": where + _first_line(exc)}, EXIT_CANNOT_START
    return None


def _modules(exc: BaseException) -> list[str]:
    """The modules of the frames ``exc`` was raised through."""
    found = []
    tb = exc.__traceback__
    while tb is not None:
        found.append(str(tb.tb_frame.f_globals.get("__name__", "")))
        tb = tb.tb_next
    return found


def _from_database_driver(exc: BaseException) -> bool:
    """Whether ``exc`` was raised inside SQLAlchemy or a database driver."""
    return any(m.split(".")[0] in ("sqlalchemy", "asyncpg", "aiosqlite") for m in _modules(exc))


def _while_connecting(exc: BaseException) -> bool:
    """Whether ``exc`` was raised opening a connection (an unknown database or role, a
    refused password), not running a statement."""
    return any(m.startswith(("sqlalchemy.pool", "asyncpg.connect_utils")) for m in _modules(exc))


def _first_line(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    text = str(exc).strip().splitlines()
    detail = text[0] if text else ""
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def die_with_supervisor() -> None:
    """Under a supervisor: end (SIGTERM to self) when it ends, however it ends."""
    raw = os.environ.pop(SUPERVISOR_PID, "")
    if not raw.isdigit():
        return
    supervisor = int(raw)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0:
            # The supervisor may have died between our fork and the prctl: then our
            # parent is already someone else, and no signal will ever come.
            if os.getppid() != supervisor:
                os.kill(os.getpid(), signal.SIGTERM)
            return
    threading.Thread(
        target=_watch_parent, args=(supervisor,), name="watch-supervisor", daemon=True
    ).start()


def _watch_parent(supervisor: int) -> None:
    while os.getppid() == supervisor:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)


def notify_ready() -> None:
    """Tell the supervisor this process is SERVING on its own ports (once)."""
    raw = os.environ.pop(READY_FD, "")
    if not raw.isdigit():
        return
    try:
        os.write(int(raw), b"ready\n")
        os.close(int(raw))
    except OSError:
        pass  # the supervisor is gone; die_with_supervisor ends this process
