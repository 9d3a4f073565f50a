"""kill -9 between accepting reports and delivering their promotion: nothing lost, nothing doubled.

The report service runs as its own process while the risk service is down, so
the promotion is accepted and waits in the outbox (its relay retrying). The
report process is then killed with SIGKILL, the risk service started, the report
service restarted: the promotion must arrive, exactly once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

import grpc
import pytest
import sqlalchemy as sa

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.report.v1 import report_pb2, report_pb2_grpc
from services.api.antifraud.risk.v1 import risk_pb2, risk_pb2_grpc
from services.common.db import Database
from services.report.adapters import tables
from services.report.service_layer import events
from tests import harness
from tests.harness import ProcessSuite

R = report_pb2
T = TypeVar("T")
NUMBER = common_pb2.Indicator(kind=common_pb2.INDICATOR_KIND_PHONE_NUMBER, value="+8617012345678")

pytestmark = pytest.mark.slow


async def eventually(probe: Callable[[], object], timeout: float = 90) -> None:
    """Poll an async probe until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = await probe()  # type: ignore[misc]
        if last:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not reached within {timeout}s; last probe: {last!r}")


@pytest.fixture
async def suite(
    db_target: tuple[str, str | None], tmp_path: Path
) -> AsyncIterator[tuple[ProcessSuite, Database]]:
    url, schema = db_target
    env = {"ANTIFRAUD_REPORT_POLL_SECONDS": "0.1", "ANTIFRAUD_LOG_LEVEL": "info"}
    risk_schema = None
    if schema is None:
        db = Database("report", url=harness.sqlite_url(tmp_path, "report"))
    else:
        risk_schema = harness.new_schema("risk")
        env |= {
            "ANTIFRAUD_DATABASE_URL": url,
            "ANTIFRAUD_REPORT_DB_SCHEMA": schema,
            "ANTIFRAUD_RISK_DB_SCHEMA": risk_schema,
        }
        db = Database("report", url=url, schema=schema)
    processes = ProcessSuite(["risk", "report"], data_dir=tmp_path, extra_env=env)
    try:
        yield processes, db
    finally:
        processes.stop_all()
        await db.dispose()
        if risk_schema is not None:
            await harness.drop_schema(risk_schema)


async def submit(stub: report_pb2_grpc.ReportServiceStub, principal: str) -> report_pb2.Report:
    response: report_pb2.SubmitReportResponse = await stub.SubmitReport(
        R.SubmitReportRequest(
            request_id=str(uuid.uuid4()),
            report=R.Report(kind=R.REPORT_KIND_FRAUD_CALL, indicators=[NUMBER]),
        ),
        metadata=[("x-principal", principal)],
        timeout=10,
    )
    return response.report


async def syncs(db: Database) -> list[tuple[bool, bool]]:
    """(failed at least once, delivered) of every sync event in the report service's outbox."""
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(tables.outbox.c.last_error, tables.outbox.c.deliver_time)
            .where(tables.outbox.c.topic == events.SYNC_INDICATOR)
            .order_by(tables.outbox.c.id)
        )
        return [(r.last_error is not None, r.deliver_time is not None) for r in rows]


async def our_changes(stub: risk_pb2_grpc.RiskServiceStub) -> list[tuple[int, int, int]]:
    """(change type, level, reporters) of our assertion's changes, oldest first."""
    try:
        found = await stub.GetIndicator(risk_pb2.GetIndicatorRequest(indicator=NUMBER), timeout=5)
    except grpc.aio.AioRpcError as exc:
        if exc.code() is grpc.StatusCode.NOT_FOUND:
            return []
        raise
    return [
        (c.change_type, c.verdict.level, c.verdict.sources.distinct_reporters)
        for c in reversed(found.history)
        if c.source_type == risk_pb2.SOURCE_TYPE_CITIZEN_REPORTS
    ]


async def test_kill_9_between_accept_and_delivery_loses_and_doubles_nothing(
    suite: tuple[ProcessSuite, Database],
) -> None:
    processes, db = suite
    processes.start("report")  # the risk service is down
    await processes.wait("report")
    async with harness.channel(processes.addrs["report"]) as channel:
        stub = report_pb2_grpc.ReportServiceStub(channel)
        for i in range(3):
            last = await submit(stub, f"citizen:k{i}")
    assert last.status == R.REPORT_STATUS_UNDER_REVIEW  # accepted, and the promotion written

    # The relay has tried (the risk service is down), failed, and will try again.
    async def tried() -> bool:
        return await syncs(db) == [(True, False)]

    await eventually(tried, timeout=30)
    processes.kill("report")

    processes.start("risk")
    await processes.wait("risk")
    processes.start("report")
    await processes.wait("report")

    upserted = (risk_pb2.CHANGE_TYPE_UPSERTED, common_pb2.RISK_LEVEL_MEDIUM, 3)
    async with harness.channel(processes.addrs["risk"]) as channel:
        risk = risk_pb2_grpc.RiskServiceStub(channel)

        async def promoted() -> list[tuple[int, int, int]]:
            return await our_changes(risk)

        await eventually(promoted)

        async def delivered() -> bool:
            return all(done for _, done in await syncs(db))

        await eventually(delivered)
        assert await our_changes(risk) == [upserted]

        # Now the other way round: kill -9 the risk service, report, start it again.
        processes.kill("risk")
        async with harness.channel(processes.addrs["report"]) as channel2:
            await submit(report_pb2_grpc.ReportServiceStub(channel2), "citizen:k3")
        processes.start("risk")
        await processes.wait("risk")

        async def reasserted() -> bool:
            return len(await our_changes(risk)) == 2

        await eventually(reasserted)
        await eventually(delivered)
        assert await our_changes(risk) == [
            upserted,
            (risk_pb2.CHANGE_TYPE_UPSERTED, common_pb2.RISK_LEVEL_MEDIUM, 4),
        ]
