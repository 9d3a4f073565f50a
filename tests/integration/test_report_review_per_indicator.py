"""Review per indicator on a real database (SQLite and PostgreSQL): every reporter's record
counts the decision once per report, duplicates not at all; the queue grouped by
indicator pages without repeats."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.report.v1 import report_pb2 as R
from services.api.antifraud.report.v1 import report_pb2_grpc
from services.common.db import Database
from services.report.adapters import tables
from services.report.bootstrap import build
from services.report.domain.corroboration import Rules
from tests import harness
from tests.harness import serving
from tests.integration.test_report_service import NOWHERE, as_, phone, report_body

ANALYST = as_("analyst:a1")


@pytest.fixture
async def stub(
    db_target: tuple[str, str | None],
) -> AsyncIterator[tuple[report_pb2_grpc.ReportServiceStub, Database]]:
    url, schema = db_target
    component = build(
        url=url, schema=schema, rules=Rules(), risk_target=NOWHERE, warning_target=NOWHERE
    )
    async with serving(component) as running, harness.channel(running.address) as channel:
        yield report_pb2_grpc.ReportServiceStub(channel), component.db


async def _submit(stub: report_pb2_grpc.ReportServiceStub, who: str, *numbers: str) -> R.Report:
    response = await stub.SubmitReport(
        R.SubmitReportRequest(
            request_id=str(uuid.uuid4()), report=report_body(*(phone(n) for n in numbers))
        ),
        metadata=as_(who),
    )
    return response.report


async def test_a_rejected_value_counts_against_every_reporter_once(
    stub: tuple[report_pb2_grpc.ReportServiceStub, Database],
) -> None:
    api, db = stub
    number, other = "13800001111", "13800002222"
    first = await _submit(api, "citizen:r1", number, other)
    await _submit(api, "citizen:r2", number)
    await _submit(api, "citizen:r3", number)
    duplicate = await _submit(api, "citizen:r1", number)
    assert duplicate.status == R.REPORT_STATUS_DUPLICATE

    done = await api.ReviewIndicatorReports(
        R.ReviewIndicatorReportsRequest(
            request_id=str(uuid.uuid4()),
            indicator=phone(number),
            decision=R.REVIEW_DECISION_REJECT,
            reason="not fraud",
        ),
        metadata=ANALYST,
    )
    assert (done.resolved_report_count, done.reporter_count) == (4, 3)
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(tables.reporters.c.reporter, tables.reporters.c.rejected_count)
        )
        rejected = dict(rows.all())
    assert rejected == {"citizen:r1": 1, "citizen:r2": 1, "citizen:r3": 1}
    # The other value the first report names keeps its own standing.
    got = (await api.GetReport(R.GetReportRequest(name=first.name), metadata=ANALYST)).report
    assert got.status == R.REPORT_STATUS_REJECTED
    standings = {f.indicator.value: f.standing for f in got.findings}
    assert standings["+86" + other] != R.INDICATOR_STANDING_REJECTED


async def test_the_queue_by_indicator_pages_without_repeats(
    stub: tuple[report_pb2_grpc.ReportServiceStub, Database],
) -> None:
    api, _ = stub
    numbers = [f"1390000{i:04d}" for i in range(5)]
    for i, number in enumerate(numbers):
        for reporter in range(i % 2 + 1):
            await _submit(api, f"citizen:q{reporter}", number)
    seen: list[str] = []
    token = ""
    while True:
        page = await api.ListReviewIndicators(
            R.ListReviewIndicatorsRequest(
                page_size=2, page_token=token, kind=common_pb2.INDICATOR_KIND_PHONE_NUMBER
            ),
            metadata=ANALYST,
        )
        seen.extend(e.indicator.indicator.value for e in page.review_indicators)
        for entry in page.review_indicators:
            assert entry.open_report_count == entry.distinct_reporter_count
        token = page.next_page_token
        if not token:
            break
    assert seen == ["+86" + n for n in numbers]
