"""Report intake about a hot number: the time of one more report as the number's reports grow.

A scam number that goes viral is reported thousands of times in a week. Each new report about
it reads the number's tallies: every counted report about it in the corroboration window
(``_tallies`` and ``_build_intake_checks`` in ``services/report/adapters/repository.py``),
while the batch holds the number's lock. So its cost grows with the reports already there, and
the reports about one number go one after another.

The curve: one number with 0, 1,000 and 10,000 earlier reports in its window (0, 200 and
1,000 with ``--quick``), from distinct citizens, written as plain rows. At each point,
reports from new citizens are submitted one at a time to a report service in this process, and
the median time of one is taken. The baseline is the same number with no earlier report.

Before (issue 20, 2026-12-02, in-process, the median of 20): the tallies came back one row per
reporter and category, each turned into objects and counted in Python. SQLite took 8.0, 9.5,
23.6, 183 and 1,377 ms at 0, 100, 1,000, 10,000 and 50,000 earlier reports; PostgreSQL took
3.8, 3.7, 13.5, 154 and 960 ms. At 50,000 on PostgreSQL the query itself took about 104 ms
in the server. Most of the rest was Python: the driver's 50,000 rows, SQLAlchemy's rows and
the tally objects.

After: the database counts them. The tallies come back per class of reporter (anonymous or
not, confirmed and rejected counts: what a reporter's weight depends on) and set of categories
(a bit mask), with how many reporters and reports each class holds. The reporter about to
report gets a row of their own, to be counted in. So a hot number costs a few rows, not one
per reporter. ``tests/integration/test_report_tallies.py`` checks the counts against one
tally per reporter made by hand, on both databases. This curve, alternated with the version
before (two pairs): at 10,000 SQLite 214 and 249 ms became 85 and 90; PostgreSQL 135 and 146
became 44 and 47. At 1,000 SQLite 25-41 ms became 15-20; PostgreSQL 20-23 stayed 18-23. The
1, 8 and 64 in-flight figures stayed within their noise.

Still O(N) in the database: the query reads every counted report link of the number in the
window. Not done: keep each number's tallies up to date instead of counting them again. That
means one row per number and reporter, and a running score on the number. A new report updates
one row under the lock it already takes. Reports leave the window through a watermark, and each
reporter leaves once. The catches: a rejected report must be taken back out. When a review
changes a reporter's weight, that change reaches every number the reporter is counted on, under
the same lock order as intake. Stored totals can drift, so they need a property test against a
full count.
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bench.harness import Result, Run
from bench.harness import channel as channel_as
from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.report.v1 import report_pb2, report_pb2_grpc
from services.common.db import Database
from services.common.indicators import IndicatorKind, normalize
from services.report.adapters import tables
from services.report.adapters.repository import indicator_key
from services.report.bootstrap import build
from services.report.domain.model import ReportStatus
from tests import harness

SUITE = "report"
NUMBER = "+8613800138000"
LEVELS = (0, 1_000, 10_000)
LEVELS_QUICK = (0, 200, 1_000)
TRIES = 15
TRIES_QUICK = 7
#: Rows written per statement while the earlier reports are filled in.
FILL_CHUNK = 500


def report_request(number: str) -> report_pb2.SubmitReportRequest:
    """A citizen's report of a fraud call from ``number``, with a new request id."""
    return report_pb2.SubmitReportRequest(
        request_id=str(uuid.uuid4()),
        report=report_pb2.Report(
            kind=report_pb2.REPORT_KIND_FRAUD_CALL,
            indicators=[
                common_pb2.Indicator(kind=common_pb2.INDICATOR_KIND_PHONE_NUMBER, value=number)
            ],
            description="Caller posed as a bank officer and asked for a verification code.",
            category=common_pb2.FRAUD_CATEGORY_IMPERSONATING_OFFICIALS,
        ),
    )


async def _indicator_id(db: Database) -> int:
    key = indicator_key(normalize(IndicatorKind.PHONE_NUMBER, NUMBER))
    async with db.read() as conn:
        found = await conn.scalar(
            sa.select(tables.indicators.c.id).where(tables.indicators.c.key == key)
        )
    assert found is not None, "the first report stored the number"
    return int(found)


async def _fill(db: Database, indicator_id: int, start: int, count: int, seed: int) -> None:
    """``count`` earlier reports about the number from distinct citizens, spread over the
    window's last week less a minute, each counted (received, not rejected)."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    for first in range(start, start + count, FILL_CHUNK):
        reporters: list[dict[str, Any]] = []
        reports: list[dict[str, Any]] = []
        links: list[dict[str, Any]] = []
        for i in range(first, min(first + FILL_CHUNK, start + count)):
            who = f"citizen:hot-{i:07d}"
            at = now - timedelta(seconds=rng.uniform(60, 6.9 * 86_400))
            report_id = uuid.uuid4().hex
            reporters.append(
                {
                    "reporter": who,
                    "anonymous": False,
                    "confirmed_count": rng.choice((0, 0, 0, 1, 2)),
                    "rejected_count": rng.choice((0, 0, 0, 1, 3)),
                    "create_time": at,
                }
            )
            reports.append(
                {
                    "id": report_id,
                    "reporter": who,
                    "anonymous": False,
                    "kind": int(report_pb2.REPORT_KIND_FRAUD_CALL),
                    "status": int(ReportStatus.RECEIVED),
                    "category": rng.randrange(1, 6),
                    "description": "earlier report",
                    "evidence": {},
                    "create_time": at,
                    "update_time": at,
                }
            )
            links.append(
                {
                    "report_id": report_id,
                    "position": 0,
                    "indicator_id": indicator_id,
                    "reporter": who,
                    "create_time": at,
                }
            )
        async with db.engine.begin() as conn:
            await conn.execute(sa.insert(tables.reporters), reporters)
            await conn.execute(sa.insert(tables.reports), reports)
            await conn.execute(sa.insert(tables.report_indicators), links)
    if not db.is_sqlite:
        async with db.engine.begin() as conn:
            await conn.execute(sa.text("ANALYZE"))


async def hot_number(run: Run, label: str, url: str, schema: str | None) -> None:
    """The curve for one database (``url``; on PostgreSQL in ``schema``)."""
    levels, tries = (LEVELS_QUICK, TRIES_QUICK) if run.quick else (LEVELS, TRIES)
    component = build(url=url, schema=schema, risk_target="127.0.0.1:1",
                      warning_target="127.0.0.1:1")  # fmt: skip
    medians: dict[int, float] = {}
    async with harness.serving(component) as running:
        component.relay.poll_seconds = 3600.0  # only the calls' own work is timed
        async with channel_as(running.address, "") as channel:
            stub = report_pb2_grpc.ReportServiceStub(channel)  # type: ignore[no-untyped-call]
            citizen = 0

            async def submit() -> float:
                nonlocal citizen
                citizen += 1
                started = time.perf_counter()
                await stub.SubmitReport(
                    report_request(NUMBER), metadata=[("x-principal", f"citizen:hot-new-{citizen}")]
                )
                return time.perf_counter() - started

            await submit()  # stores the number
            indicator_id = await _indicator_id(component.db)
            filled = 0
            for level in levels:
                if level > filled:
                    await _fill(component.db, indicator_id, filled, level - filled, level)
                    filled = level
                await submit()  # warm
                medians[level] = statistics.median([await submit() for _ in range(tries)])
    base = medians[levels[0]]
    for level in levels:
        run.add(
            Result(
                SUITE,
                f"SubmitReport about one number with {level:,} reports in its window ({label})",
                medians[level] * 1000,
                "ms",
                base * 1000,
                "the same number with none",
                notes=(
                    f"median of {tries}, one at a time, each from a new citizen; each report "
                    "about the number reads and counts every counted report about it in the "
                    "window (counted in the database: bench/report_hot.py)"
                ),
                curve=f"SubmitReport ms about one number ({label})",
                x=level,
                x_label="reports about the number in its window",
            )
        )
