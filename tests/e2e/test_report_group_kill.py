"""kill -9 in the middle of a batch of reports: nothing of the batch stays, every report can
be sent again and is accepted once.

PostgreSQL only: there a batch can be held mid-transaction from outside (this test locks
the row of the number the reports name, so the batch waits after writing its claims and
reporters). SQLite gives the write lock to one transaction at a time, so a batch cannot be
caught half-way from another connection; its atomicity is SQLite's own.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.report.v1 import report_pb2, report_pb2_grpc
from services.common.db import Database
from services.report.adapters import tables
from tests import harness
from tests.harness import ProcessSuite

R = report_pb2
NUMBER = common_pb2.Indicator(kind=common_pb2.INDICATOR_KIND_PHONE_NUMBER, value="+8617012345678")
REPORTERS = 6

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.skipif(
        not harness.postgres_reachable(), reason=f"PostgreSQL not reachable at {harness.PG_URL}"
    ),
]


@pytest.fixture
async def suite(tmp_path: Path) -> AsyncIterator[tuple[ProcessSuite, Database, str]]:
    schema = harness.new_schema("report_group_kill")
    env = {
        "ANTIFRAUD_DATABASE_URL": harness.PG_URL,
        "ANTIFRAUD_REPORT_DB_SCHEMA": schema,
        "ANTIFRAUD_RISK_TARGET": "127.0.0.1:1",
        "ANTIFRAUD_WARNING_TARGET": "127.0.0.1:1",
        # Every report of the test joins one batch.
        "ANTIFRAUD_REPORT_GROUP_COMMIT_LINGER_MS": "500",
    }
    processes = ProcessSuite(["report"], data_dir=tmp_path, extra_env=env)
    db = Database("report", url=harness.PG_URL, schema=schema)
    try:
        yield processes, db, schema
    finally:
        processes.stop_all()
        await db.dispose()
        await harness.drop_schema(schema)


def submission(request_id: str) -> R.SubmitReportRequest:
    return R.SubmitReportRequest(
        request_id=request_id, report=R.Report(kind=R.REPORT_KIND_FRAUD_CALL, indicators=[NUMBER])
    )


async def counts(db: Database) -> dict[str, int]:
    async with db.read() as conn:
        return {
            table.name: int(await conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)
            for table in (tables.reports, tables.report_indicators, tables.idempotency)
        }


async def test_kill_9_mid_batch_leaves_no_partial_reports(
    suite: tuple[ProcessSuite, Database, str],
) -> None:
    processes, db, schema = suite
    processes.start("report")
    await processes.wait("report")
    ids = [str(uuid.uuid4()) for _ in range(REPORTERS)]
    async with harness.channel(processes.addrs["report"]) as channel:
        stub = report_pb2_grpc.ReportServiceStub(channel)
        # The number's row exists (a first report), then this test holds its lock.
        await stub.SubmitReport(
            submission(str(uuid.uuid4())), metadata=[("x-principal", "citizen:first")], timeout=30
        )
        holder = create_async_engine(
            harness.PG_URL, connect_args={"server_settings": {"search_path": schema}}
        )
        try:
            async with holder.connect() as held:
                # The batch will wait on this row, its claims and reporters written.
                await held.execute(sa.select(tables.indicators.c.id).with_for_update())
                holder_pid = int(await held.scalar(sa.text("SELECT pg_backend_pid()")) or 0)
                calls = [
                    asyncio.ensure_future(
                        stub.SubmitReport(
                            submission(ids[i]),
                            metadata=[("x-principal", f"citizen:k{i}")],
                            timeout=60,
                        )
                    )
                    for i in range(REPORTERS)
                ]
                await _batch_waits_on_lock(holder_pid)
                processes.kill("report")
                for call in calls:
                    with pytest.raises(grpc.aio.AioRpcError) as failed:
                        await call
                    assert failed.value.code() is grpc.StatusCode.UNAVAILABLE  # retryable
                await held.rollback()
        finally:
            await holder.dispose()
    # Nothing of the batch stayed: only the first report and its request id.
    assert await counts(db) == {"reports": 1, "report_indicators": 1, "idempotency_keys": 1}

    # Sent again with the same request ids, each report is accepted, once.
    processes.start("report")
    await processes.wait("report")
    async with harness.channel(processes.addrs["report"]) as channel:
        stub = report_pb2_grpc.ReportServiceStub(channel)
        for _ in range(2):
            answers = [
                await stub.SubmitReport(
                    submission(ids[i]), metadata=[("x-principal", f"citizen:k{i}")], timeout=30
                )
                for i in range(REPORTERS)
            ]
    assert len({a.report.name for a in answers}) == REPORTERS
    assert await counts(db) == {
        "reports": REPORTERS + 1,
        "report_indicators": REPORTERS + 1,
        "idempotency_keys": REPORTERS + 1,
    }


async def _batch_waits_on_lock(holder_pid: int, timeout: float = 60) -> None:
    """Until a session of the database waits for the holder's lock (the batch, on our row)."""
    deadline = time.monotonic() + timeout
    engine = create_async_engine(harness.PG_URL)
    try:
        while time.monotonic() < deadline:
            async with engine.connect() as probe:
                waiting = await probe.scalar(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE :holder = ANY(pg_blocking_pids(pid))"
                    ),
                    {"holder": holder_pid},
                )
            if waiting:
                return
            await asyncio.sleep(0.1)
    finally:
        await engine.dispose()
    raise AssertionError("the batch never waited on the held row")
