"""structlog set-up: JSON lines in production, readable lines on a terminal.

Personal values (phone, ID, card numbers, names, faces) must never reach a log
line; callers log masked forms only (``services.common.indicators.display``).
"""

from __future__ import annotations

import logging
import sys

import orjson
import structlog
from structlog.tracebacks import ExceptionDictTransformer

from services.common.config import env


# The stream is looked up when a logger is made, not when logging is configured: a
# stream replaced since (a test's captured output, closed after the test) is never used.
def _print_logger(*args: object) -> structlog.PrintLogger:
    return structlog.PrintLogger(sys.stderr)


def _bytes_logger(*args: object) -> structlog.BytesLogger:
    return structlog.BytesLogger(sys.stderr.buffer)


def configure(*, level: str | None = None, fmt: str | None = None, cache: bool = True) -> None:
    """Configure structlog once at start; ``fmt`` is ``json``, ``console`` or ``auto``."""
    level_name = (level or env("LOG_LEVEL", "info")).upper()
    fmt = fmt or env("LOG_FORMAT", "auto")
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
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
        logger_factory = _bytes_logger
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level_name)),
        logger_factory=logger_factory,
        cache_logger_on_first_use=cache,
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
