"""structlog set-up: JSON lines in production, readable lines on a terminal.

Personal values (phone, ID, card numbers, names, faces) must never reach a log
line; callers log masked forms only (``services.common.indicators.display``).

In JSON mode a server process also routes its native standard error (``route_native``):
gRPC's C core logs through absl straight to file descriptor 2 (``E1130 ... chttp2_transport.cc]
GOAWAY received ... too_many_pings``), and so would any C library or a stray ``print`` to
``sys.stderr``. Descriptor 2 becomes a pipe; a thread reads it and writes each line as a JSON
record (``event: "grpc core"`` with the absl level mapped, else ``event: "stderr"``), while
structlog writes to the real standard error. GRPC_VERBOSITY keeps gRPC's default (ERROR): its
errors stay visible, now as JSON, and ``GRPC_VERBOSITY=debug`` still works when diagnosing.
Silencing it (``NONE``) would hide real transport errors.
"""

from __future__ import annotations

import atexit
import faulthandler
import logging
import os
import re
import sys
import threading
from typing import BinaryIO

import orjson
import structlog
from opentelemetry import trace
from structlog.tracebacks import ExceptionDictTransformer

from services.common import config

#: ``E1130 16:48:13.628845   25085 add_port.cc:83] message``: absl's prefix.
_ABSL = re.compile(rb"^([IWEF])\d{4} [\d:.]+\s+\d+ ([^\]\s]+)\] ?(.*)$")
_ABSL_LEVELS = {b"I": "info", b"W": "warning", b"E": "error", b"F": "critical"}

#: Where structlog writes: the real standard error, even once descriptor 2 is routed.
_output: BinaryIO | None = None
_router: threading.Thread | None = None


# The stream is looked up when a logger is made, not when logging is configured: a
# stream replaced since (a test's captured output, closed after the test) is never used.
def add_trace_ids(
    logger: object, method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """``trace_id`` and ``span_id`` of the span current where the line is written (an RPC,
    an outbox delivery, a fan-out step), when tracing is on (services.common.tracing)."""
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        event.setdefault("trace_id", format(span.trace_id, "032x"))
        event.setdefault("span_id", format(span.span_id, "016x"))
    return event


def _print_logger(*args: object) -> structlog.PrintLogger:
    return structlog.PrintLogger(sys.stderr)


def _bytes_logger(*args: object) -> structlog.BytesLogger:
    return structlog.BytesLogger(_output or sys.stderr.buffer)


def configure(
    *,
    level: str | None = None,
    fmt: str | None = None,
    cache: bool = True,
    route_native: bool = False,
) -> str:
    """Configure structlog once at start; ``fmt`` is ``json``, ``console`` or ``auto``.

    Unset arguments come from ANTIFRAUD_LOG_LEVEL / _LOG_FORMAT (SettingError when bad).
    ``route_native`` (servers and the supervisor): stdlib ``logging`` records, and in JSON
    mode native standard error, are turned into records of ours too.
    Returns the format in force (``json`` or ``console``).
    """
    if level is None or fmt is None:
        settings = config.shared()
        level = level or settings.log_level
        fmt = fmt or settings.log_format
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        add_trace_ids,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: structlog.typing.Processor
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer()
        logger_factory: structlog.typing.WrappedLogger = _print_logger
    else:
        # Tracebacks as data, but never with local variables: they hold personal values.
        processors.append(
            structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))
        )
        renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps)
        if route_native:
            _route_native_stderr()
        logger_factory = _bytes_logger
    if route_native:
        # Libraries' stdlib logging (grpc's Cython layer, asyncio) as records of ours too;
        # their warnings and errors only, as before (their info is chatter: alembic's plugins).
        logging.root.handlers = [_StdlibToStructlog()]
        logging.root.setLevel(max(logging.WARNING, logging.getLevelName(level.upper())))
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=logger_factory,
        cache_logger_on_first_use=cache,
    )
    return fmt


class _StdlibToStructlog(logging.Handler):
    """A stdlib ``logging`` record, written as one structlog record."""

    def emit(self, record: logging.LogRecord) -> None:
        fields: dict[str, object] = {"logger": record.name}
        if record.exc_info:
            fields["exc_info"] = record.exc_info
        get_logger(record.name).log(record.levelno, record.getMessage(), **fields)


def configure_for_failure(*, route_native: bool = False) -> str:
    """Logging good enough to report a bad setting: each of ANTIFRAUD_LOG_LEVEL and
    _LOG_FORMAT as given when valid, else its default."""
    level = config.env("LOG_LEVEL").strip().lower()
    fmt = config.env("LOG_FORMAT").strip().lower()
    return configure(
        level=level if level in config.LOG_LEVELS else "info",
        fmt=fmt if fmt in config.LOG_FORMATS else "auto",
        route_native=route_native,
    )


def native_stderr() -> int:
    """The real standard error's descriptor: for child processes, which log on their own."""
    return _output.fileno() if _output is not None else 2


def _route_native_stderr() -> None:
    """Turn every line written to descriptor 2 by native code into a JSON log record.

    Crash dumps (faulthandler) go to the real standard error as they are: a process
    that is dying cannot format them, and they are what a crash is diagnosed from.
    """
    global _output, _router
    if _router is not None:
        return
    sys.stderr.flush()
    _output = os.fdopen(os.dup(2), "wb", buffering=0)  # not inherited by children
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    faulthandler.enable(file=_output)
    _router = threading.Thread(target=_relay, args=(read_end,), name="stderr-router", daemon=True)
    _router.start()
    atexit.register(_stop_routing)


def _relay(read_end: int) -> None:
    log = get_logger("native")
    with os.fdopen(read_end, "rb") as pipe:
        for raw in pipe:
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                continue
            match = _ABSL.match(line)
            if match is None:
                log.warning("stderr", line=line.decode("utf-8", "replace"))
                continue
            level = _ABSL_LEVELS[match.group(1)]
            log.log(
                logging.getLevelName(level.upper()),
                "grpc core",
                source=match.group(2).decode("utf-8", "replace"),
                message=match.group(3).decode("utf-8", "replace"),
            )


def _stop_routing() -> None:
    """At exit: give descriptor 2 back, so the relay reads what is left and ends."""
    if _output is None or _router is None:
        return
    sys.stderr.flush()
    os.dup2(_output.fileno(), 2)
    _router.join(timeout=2)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
