"""Fixtures shared by every test: the database backends, traces kept in memory, and a
structlog set-up for tests."""

from __future__ import annotations

import asyncio
import io
import signal
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.common import logs, tracing
from tests import harness

_PG = harness.postgres_reachable()


def pytest_configure(config: pytest.Config) -> None:
    logs.configure(fmt="json", level="warning", cache=False)
    # One set of token signing keys for the whole run, shared by the servers this process
    # starts and the ones it starts as processes (they inherit the environment).
    harness.use_token_keys()
    harness.cache_bytecode()


#: How to set a test's timeout alarm again (pytest-timeout's "signal" method).
_ARM_TIMEOUT = pytest.StashKey[Callable[[], None]]()


@pytest.hookimpl(wrapper=True, optionalhook=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> Generator[None, Any, Any]:
    """pytest-timeout's SIGALRM handler, preceded by the stack of every asyncio task: a test
    hung on an await shows where (the threads' stacks only show the event loop waiting)."""
    result = yield
    fail = signal.getsignal(signal.SIGALRM)
    if not callable(fail):
        return result  # not the "signal" method

    def timed_out(signum: int, frame: FrameType | None) -> None:
        terminal = item.config.get_terminal_writer()
        terminal.sep("+", title=f"Timeout: asyncio tasks of {item.nodeid}")
        terminal.write(_asyncio_stacks())
        fail(signum, frame)

    def arm() -> None:
        signal.signal(signal.SIGALRM, timed_out)
        signal.setitimer(signal.ITIMER_REAL, settings.timeout)

    arm()
    item.stash[_ARM_TIMEOUT] = arm
    return result


@pytest.hookimpl(trylast=True)
def pytest_exception_interact(node: pytest.Item | pytest.Collector) -> None:
    """pytest-timeout stops the alarm when a phase fails (for the debugger): set it again,
    so the teardown after a failure or a timeout cannot hang the run either."""
    arm = node.stash.get(_ARM_TIMEOUT, None)
    if arm is not None and not node.config.getoption("usepdb"):
        arm()


def _asyncio_stacks() -> str:
    """Each pending task of the running loop with the chain of awaits it is stopped at,
    outermost first (``Task.print_stack`` shows only the task's own coroutine)."""
    loop = asyncio._get_running_loop()
    if loop is None:
        return "(no event loop running)\n"
    out = io.StringIO()
    for task in asyncio.all_tasks(loop):
        out.write(f"{task.get_name()}:\n")
        awaited: Any = task.get_coro()
        while awaited is not None:
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
            if frame is None:
                out.write(f"    awaiting {type(awaited).__name__}\n")
                break
            code = frame.f_code
            out.write(f'  File "{code.co_filename}", line {frame.f_lineno}, in {code.co_name}\n')
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return out.getvalue()


def pytest_report_header(config: pytest.Config) -> str:
    if _PG:
        return f"PostgreSQL: reachable at {harness.PG_URL}; tests run on SQLite and PostgreSQL"
    return "PostgreSQL: NOT reachable; integration tests run on SQLite only (PostgreSQL skipped)"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _PG:
        return
    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if "postgres" in getattr(report, "keywords", {})
    ]
    terminalreporter.write_sep("!", "PostgreSQL SKIPPED", yellow=True, bold=True)
    terminalreporter.write_line(
        f"PostgreSQL was not reachable at {harness.PG_URL}: {len(skipped)} PostgreSQL "
        "variant(s) skipped. What was tested ran on SQLite only; start PostgreSQL (trust "
        "auth, database `test`) for the full suite.",
        yellow=True,
        bold=True,
    )


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgresql",
        id="postgresql",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(not _PG, reason=f"PostgreSQL not reachable at {harness.PG_URL}"),
        ],
    ),
]


@pytest.fixture(params=BACKENDS)
async def db_target(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, str | None]]:
    """A (url, schema) pair for a fresh database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield harness.sqlite_url(tmp_path, "db"), None
        return
    schema = harness.new_schema("db")
    yield harness.PG_URL, schema
    await harness.drop_schema(schema)


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """Tracing on in this process (servers built in it too), every span kept in memory."""
    exporter = InMemorySpanExporter()
    monkeypatch.setenv("ANTIFRAUD_TRACE_SAMPLE_RATIO", "1")
    assert tracing.configure("test", SimpleSpanProcessor(exporter))
    try:
        yield exporter
    finally:
        tracing.shutdown()
