"""Risk list writes on PostgreSQL, against plain inserts of the same rows in the same run.

- Upserts/s and imported indicators/s with two writer processes at once (two replicas:
  ``bench/risk_writer.py``, each with 8 transactions in flight), each writing its own values
  through the service layer (row locks, the feed lock around the append), against the same
  two processes making plain INSERTs of the same indicator rows (one per transaction for
  upserts, 500 per transaction for imports). Targets: 500 upserts/s and 5,000 imported/s.
- 1,000,000 assertions lapsing in the same second (30,000 with --quick, the time scaled to
  a million, saying so): the time the sweeper takes to record them all in the feed, against
  one plain UPDATE lapsing the same rows. Target: 60 s for a million.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from bench.harness import ROOT, Result, Run
from services.common.db import Database
from services.risk.adapters.bulk import load_new
from services.risk.bootstrap import VERSIONS, RiskComponent
from services.risk.domain.model import Assertion, RiskLevel, SourceType
from tests import harness
from tests.factories import dataset

SUITE = "risk"
TASKS = 8


async def run(run: Run) -> None:
    if not harness.postgres_reachable():
        print(f"  {SUITE:<8} PostgreSQL not reachable at {harness.PG_URL}: write scaling skipped")
        return
    await _writes(run)
    await _lapses(run)


async def _schema(prefix: str) -> str:
    schema = harness.new_schema(prefix)
    await Database("risk", url=harness.PG_URL, schema=schema).migrate(VERSIONS)
    return schema


def _line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    return proc.stdout.readline()


async def _two_writers(mode: str, schema: str, per_writer: int) -> float:
    """Both writer processes started together; the rate over the slower one's time."""
    specs = [
        {"url": harness.PG_URL, "schema": schema, "mode": mode, "first": k * per_writer,
         "count": per_writer, "tasks": TASKS}
        for k in range(2)
    ]  # fmt: skip
    procs = [
        subprocess.Popen(  # noqa: ASYNC220 - started once, read through threads
            [sys.executable, "-m", "bench.risk_writer", json.dumps(spec)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for spec in specs
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            said = await asyncio.to_thread(proc.stdout.readline)
            if said.strip() != "ready":
                raise RuntimeError(f"risk writer did not start: {said!r}")
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outs = [json.loads(await asyncio.to_thread(_line, p)) for p in procs]
    finally:
        for proc in procs:
            proc.wait(timeout=600)
    return float(sum(o["count"] for o in outs)) / float(max(o["seconds"] for o in outs))


async def _writes(run: Run) -> None:
    upserts = 500 if run.quick else 5_000
    imported = 10_000 if run.quick else 100_000
    schemas: list[str] = []
    try:
        for mode, per_writer, unit, target, label in (
            ("upsert", upserts, "upserts/s", ">= 500", "UpsertIndicator"),
            ("import", imported, "imported/s", ">= 5,000", "ImportIndicators"),
        ):
            plain_schema, risk_schema = await _schema("bplain"), await _schema("bwrites")
            schemas += [plain_schema, risk_schema]
            plain = await _two_writers(f"plain-{mode}", plain_schema, per_writer)
            got = await _two_writers(mode, risk_schema, per_writer)
            written = run.add(
                Result(
                    SUITE,
                    f"{label} writes, 2 writer processes (PostgreSQL)",
                    got,
                    unit,
                    plain,
                    "plain INSERTs of the same rows",
                    target,
                    notes=f"{2 * per_writer:,} values, {TASKS} transactions in flight per "
                    f"process; the feed lock only around the append",
                )
            )
            if written.met is False and got >= plain:
                print(
                    f"  {'':<8} {'':<52} limit: the database: plain INSERTs of the same rows, "
                    f"with nothing else to do, reached {plain:,.0f}/s here",
                    flush=True,
                )
    finally:
        for schema in schemas:
            await harness.drop_schema(schema)


async def _vacuum(schema: str) -> None:
    engine = create_async_engine(
        harness.PG_URL,
        connect_args={"server_settings": {"search_path": schema}},
        isolation_level="AUTOCOMMIT",
    )
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text("VACUUM ANALYZE"))
    finally:
        await engine.dispose()


async def _lapses(run: Run) -> None:
    n = 30_000 if run.quick else 1_000_000
    now = datetime.now(UTC)
    items = [
        (i, Assertion(SourceType.CARRIER, "feed", RiskLevel.HIGH, frozenset(), "feed",
                      now - timedelta(seconds=1), now - timedelta(days=1),
                      now - timedelta(days=1)))
        for i in dataset(n, seed=13)
    ]  # fmt: skip
    schema = await _schema("blapses")
    component = RiskComponent(Database("risk", url=harness.PG_URL, schema=schema))
    try:
        async with component.db.unbounded() as conn:
            await load_new(conn, items, "bench", now - timedelta(days=1))
        del items
        await _vacuum(schema)
        started = time.perf_counter()
        async with component.db.unbounded() as conn:
            await conn.execute(sa.text("UPDATE assertions SET lapsed = true"))
        plain = time.perf_counter() - started
        async with component.db.unbounded() as conn:
            await conn.execute(sa.text("UPDATE assertions SET lapsed = false"))
        await _vacuum(schema)  # the sweeper starts on a table as clean as the UPDATE had
        started = time.perf_counter()
        recorded = await component.sweep_once()
        swept = time.perf_counter() - started
    finally:
        await component.db.dispose()
        await harness.drop_schema(schema)
    scaled = swept * 1_000_000 / max(recorded, 1)
    notes = f"{recorded / swept:,.0f} lapses/s"
    if n != 1_000_000:
        verdict = "met" if scaled < 60 else "NOT met"
        notes += f"; scaled to a million: {scaled:,.1f} s (< 60 s: {verdict}; extrapolated)"
    run.add(
        Result(
            SUITE,
            f"sweeper: {recorded:,} simultaneous lapses into the feed (PostgreSQL)",
            swept,
            "s",
            plain,
            "one plain UPDATE of the same rows",
            "< 60 s for 1,000,000" if n == 1_000_000 else "",
            notes=notes,
        )
    )
