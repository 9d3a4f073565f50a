"""Reports reach the real risk service: corroboration lists, confirmation raises, rejection
withdraws.

Both services run in this process on real sockets and real databases (each its
own, as in production); the report service's relay delivers through its outbox.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.report.v1 import report_pb2, report_pb2_grpc
from services.api.antifraud.risk.v1 import risk_pb2, risk_pb2_grpc
from services.report.adapters import tables
from services.report.bootstrap import ReportComponent
from services.report.bootstrap import build as build_report
from services.report.domain.corroboration import Rules
from services.risk.bootstrap import build as build_risk
from tests import harness
from tests.harness import serving

R = report_pb2
NUMBER = common_pb2.Indicator(kind=common_pb2.INDICATOR_KIND_PHONE_NUMBER, value="+8613800138000")


@dataclass
class Suite:
    report: report_pb2_grpc.ReportServiceStub
    risk: risk_pb2_grpc.RiskServiceStub
    component: ReportComponent

    async def submit(self, principal: str) -> report_pb2.Report:
        response: report_pb2.SubmitReportResponse = await self.report.SubmitReport(
            R.SubmitReportRequest(
                request_id=str(uuid.uuid4()),
                report=R.Report(
                    kind=R.REPORT_KIND_FRAUD_CALL,
                    indicators=[NUMBER],
                    category=common_pb2.FRAUD_CATEGORY_STOCK_TIPS,
                ),
            ),
            metadata=[("x-principal", principal)],
        )
        return response.report

    async def review(self, name: str, decision: report_pb2.ReviewDecision) -> None:
        await self.report.ReviewReport(
            R.ReviewReportRequest(
                request_id=str(uuid.uuid4()), name=name, decision=decision, reason="reviewed"
            ),
            metadata=[("x-principal", "analyst:a1")],
        )

    async def record(self) -> risk_pb2.GetIndicatorResponse | None:
        try:
            found: risk_pb2.GetIndicatorResponse = await self.risk.GetIndicator(
                risk_pb2.GetIndicatorRequest(indicator=NUMBER)
            )
            return found
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.NOT_FOUND:
                return None
            raise

    async def until(
        self, check: Callable[[risk_pb2.GetIndicatorResponse | None], bool], timeout: float = 20
    ) -> risk_pb2.GetIndicatorResponse | None:
        deadline = time.monotonic() + timeout
        while True:
            found = await self.record()
            if check(found):
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"risk record never matched; last: {found}")
            await asyncio.sleep(0.05)


def ours(found: risk_pb2.GetIndicatorResponse | None) -> list[risk_pb2.Assertion]:
    if found is None:
        return []
    return [
        a
        for a in found.record.assertions
        if a.source_type == risk_pb2.SOURCE_TYPE_CITIZEN_REPORTS and a.source_id == "report-service"
    ]


def level_of(level: int) -> Callable[[risk_pb2.GetIndicatorResponse | None], bool]:
    return lambda found: [a.level for a in ours(found)] == [level]


@pytest.fixture
async def suite(db_target: tuple[str, str | None], tmp_path: Path) -> AsyncIterator[Suite]:
    url, schema = db_target
    # The risk service gets a database of its own, as in production.
    if schema is None:
        risk_url, risk_schema = harness.sqlite_url(tmp_path, "risk"), None
    else:
        risk_url, risk_schema = url, harness.new_schema("risk")
    try:
        async with serving(build_risk(url=risk_url, schema=risk_schema)) as risk:
            report = build_report(
                url=url,
                schema=schema,
                rules=Rules(),
                risk_target=risk.address,
                warning_target="127.0.0.1:1",
            )
            async with (
                serving(report) as running,
                harness.channel(running.address) as rc,
                harness.channel(risk.address) as kc,
            ):
                yield Suite(
                    report_pb2_grpc.ReportServiceStub(rc),
                    risk_pb2_grpc.RiskServiceStub(kc),
                    report,
                )
    finally:
        if risk_schema is not None:
            await harness.drop_schema(risk_schema)


async def test_reports_list_confirm_and_withdraw_on_the_risk_list(suite: Suite) -> None:
    reports = [await suite.submit(f"citizen:u{i}") for i in range(2)]
    # Two reporters are below the threshold: nothing was queued for the risk service.
    async with suite.component.db.read() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(tables.outbox)) == 0
    assert ours(await suite.record()) == []

    reports.append(await suite.submit("citizen:u2"))
    found = await suite.until(level_of(common_pb2.RISK_LEVEL_MEDIUM))
    assertion = ours(found)[0]
    assert assertion.reporter_count == 3
    assert list(assertion.categories) == [common_pb2.FRAUD_CATEGORY_STOCK_TIPS]
    assert found is not None
    assert found.record.verdict.level == common_pb2.RISK_LEVEL_MEDIUM

    await suite.submit("citizen:u3")
    found = await suite.until(lambda f: [a.reporter_count for a in ours(f)] == [4])

    await suite.review(reports[0].name, R.REVIEW_DECISION_CONFIRM)
    found = await suite.until(level_of(common_pb2.RISK_LEVEL_HIGH))
    assert found is not None
    assert found.record.verdict.level == common_pb2.RISK_LEVEL_HIGH

    await suite.review(reports[1].name, R.REVIEW_DECISION_REJECT)
    found = await suite.until(lambda f: ours(f) == [])

    # The history shows each step once: listed, re-asserted, raised, withdrawn.
    assert found is not None
    steps = [
        change.change_type
        for change in reversed(found.history)
        if change.source_type == risk_pb2.SOURCE_TYPE_CITIZEN_REPORTS
    ]
    assert steps == [
        risk_pb2.CHANGE_TYPE_UPSERTED,
        risk_pb2.CHANGE_TYPE_UPSERTED,
        risk_pb2.CHANGE_TYPE_UPSERTED,
        risk_pb2.CHANGE_TYPE_RETIRED,
    ]


def upserts(found: risk_pb2.GetIndicatorResponse | None) -> int:
    assert found is not None
    return sum(
        1
        for change in found.history
        if change.source_type == risk_pb2.SOURCE_TYPE_CITIZEN_REPORTS
        and change.change_type == risk_pb2.CHANGE_TYPE_UPSERTED
    )


async def test_a_promotion_delivered_twice_is_applied_once(suite: Suite) -> None:
    for i in range(3):
        await suite.submit(f"citizen:u{i}")
    found = await suite.until(level_of(common_pb2.RISK_LEVEL_MEDIUM))
    assert upserts(found) == 1
    db = suite.component.db

    async def undelivered() -> int:
        async with db.read() as conn:
            return int(
                await conn.scalar(
                    sa.select(sa.func.count()).where(tables.outbox.c.deliver_time.is_(None))
                )
                or 0
            )

    deadline = time.monotonic() + 20
    while await undelivered():
        assert time.monotonic() < deadline, "the promotion was never marked delivered"
        await asyncio.sleep(0.05)

    # What a crash after the call and before the bookkeeping leaves behind: the event
    # looks undelivered and the indicator looks unsynced, so the relay sends it again.
    async with db.engine.begin() as conn:
        await conn.execute(sa.update(tables.outbox).values(deliver_time=None))
        await conn.execute(sa.update(tables.indicators).values(synced_version=0))
    suite.component.relay.wake()
    deadline = time.monotonic() + 20
    while await undelivered():
        assert time.monotonic() < deadline, "the repeat was never delivered"
        await asyncio.sleep(0.05)
    async with db.read() as conn:
        synced = await conn.scalar(sa.select(tables.indicators.c.synced_version))
    assert synced == 1  # it was sent again...
    # ...and the risk service recognised the repeated request id: still one upsert.
    assert upserts(await suite.record()) == 1
