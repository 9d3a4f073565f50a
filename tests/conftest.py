"""Fixtures shared by every test: the database backends and a structlog set-up for tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.common import logs
from tests import harness

_PG = harness.postgres_reachable()


def pytest_configure(config: pytest.Config) -> None:
    logs.configure(fmt="json", level="warning", cache=False)
    # One set of token signing keys for the whole run, shared by the servers this process
    # starts and the ones it starts as processes (they inherit the environment).
    harness.use_token_keys()


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
