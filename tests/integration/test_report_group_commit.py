"""SubmitReport in groups, over gRPC on a real database (SQLite, and PostgreSQL when
reachable): reports sent at once are accepted in one transaction, each caller gets its own
answer, and every guarantee of a report accepted alone holds within a batch: a repeat of a
request id gets the first answer, a report the rules refuse fails alone with its own status
code, corroboration counts every report of the batch, and each answer is committed.

The intake lingers a moment for company here (``LINGER``) so that the calls started together
land in one batch on a slow machine too; the batch sizes are read from the intake's own
counters.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
import sqlalchemy as sa
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.report.v1 import report_pb2, report_pb2_grpc
from services.common.db import Database
from services.common.group_commit import BatchSettings
from services.common.idempotency import PENDING
from services.report.adapters import tables
from services.report.bootstrap import ReportComponent, build
from services.report.domain.corroboration import Rules
from services.report.service_layer import events
from tests import harness
from tests.harness import serving

NOWHERE = "127.0.0.1:1"
R = report_pb2
#: Long enough for every call of a test to join the first batch, even on a busy machine.
LINGER = BatchSettings(linger_seconds=0.5)
ALONE = BatchSettings(enabled=False)


def phone(value: str) -> common_pb2.Indicator:
    return common_pb2.Indicator(kind=common_pb2.INDICATOR_KIND_PHONE_NUMBER, value=value)


def request(number: str, request_id: str | None = None) -> R.SubmitReportRequest:
    return R.SubmitReportRequest(
        request_id=request_id or str(uuid.uuid4()),
        report=R.Report(
            kind=R.REPORT_KIND_FRAUD_CALL,
            indicators=[phone(number)],
            description="Caller claimed to be police and asked for a 'safe account' transfer.",
            category=common_pb2.FRAUD_CATEGORY_IMPERSONATING_OFFICIALS,
        ),
    )


@dataclass
class Client:
    stub: report_pb2_grpc.ReportServiceStub
    db: Database
    component: ReportComponent

    async def submit(self, principal: str, req: R.SubmitReportRequest) -> R.Report:
        response: R.SubmitReportResponse = await self.stub.SubmitReport(
            req, metadata=[("x-principal", principal)]
        )
        return response.report

    async def at_once(
        self, calls: list[tuple[str, R.SubmitReportRequest]]
    ) -> list[R.Report | grpc.aio.AioRpcError]:
        """Send every call together; each one's report, or its error."""
        answers = await asyncio.gather(
            *(self.submit(who, req) for who, req in calls), return_exceptions=True
        )
        for answer in answers:
            if not isinstance(answer, R.Report | grpc.aio.AioRpcError):
                raise answer
        return answers  # type: ignore[return-value]

    async def count(self, table: sa.Table) -> int:
        async with self.db.read() as conn:
            return int(await conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


async def _client(
    target: tuple[str, str | None], rules: Rules, intake: BatchSettings
) -> AsyncIterator[Client]:
    url, schema = target
    component = build(
        url=url,
        schema=schema,
        rules=rules,
        risk_target=NOWHERE,
        warning_target=NOWHERE,
        intake=intake,
    )
    async with serving(component) as running, harness.channel(running.address) as channel:
        yield Client(report_pb2_grpc.ReportServiceStub(channel), component.db, component)


@pytest.fixture
async def client(db_target: tuple[str, str | None]) -> AsyncIterator[Client]:
    async for c in _client(db_target, Rules(rate_limit=2), LINGER):
        yield c


@pytest.fixture(params=[LINGER, ALONE], ids=["grouped", "alone"])
async def either(
    request: pytest.FixtureRequest, db_target: tuple[str, str | None]
) -> AsyncIterator[Client]:
    async for c in _client(db_target, Rules(rate_limit=2), request.param):
        yield c


async def test_reports_sent_together_are_accepted_in_one_transaction(client: Client) -> None:
    calls = [(f"citizen:g{i}", request("13800138000")) for i in range(12)]
    answers = await client.at_once(calls)
    reports = [a for a in answers if isinstance(a, R.Report)]
    assert len(reports) == 12
    stats = client.component.intake.commits.stats
    assert stats.writes == 12
    assert stats.transactions < 12  # grouped: far fewer commits than reports
    assert stats.split == 0
    # Each answer was committed before it was given: a fresh connection reads it.
    for report in reports:
        got = await client.stub.GetReport(
            R.GetReportRequest(name=report.name), metadata=[("x-principal", report.reporter)]
        )
        assert got.report.name == report.name
    # Corroboration counted every report of the batch, in order: the third listed the number
    # and the last one saw all twelve reporters; one sync event for the listing.
    counts = sorted(r.findings[0].reporter_count for r in reports)
    assert counts == list(range(1, 13))
    assert await client.count(tables.reports) == 12
    async with client.db.read() as conn:
        topics = (await conn.execute(sa.select(tables.outbox.c.topic))).scalars().all()
        pending = await conn.scalar(
            sa.select(sa.func.count()).where(tables.idempotency.c.response == PENDING)
        )
    assert events.SYNC_INDICATOR in topics
    assert pending == 0  # every request id holds its answer


async def test_a_retry_in_the_same_batch_gets_the_same_answer(either: Client) -> None:
    twin = request("13800138000")
    calls = [("citizen:t1", twin), ("citizen:t2", request("13800138000")), ("citizen:t1", twin)]
    first, _, again = await either.at_once(calls)
    assert isinstance(first, R.Report)
    assert isinstance(again, R.Report)
    assert again == first
    assert await either.count(tables.reports) == 2
    # And after the batch, the same request id still answers the same.
    assert await either.submit("citizen:t1", twin) == first
    assert await either.count(tables.reports) == 2


async def test_a_refused_report_fails_alone(either: Client) -> None:
    reused = str(uuid.uuid4())
    calls = [
        # citizen:r1 may send two reports (Rules(rate_limit=2)): the third is refused.
        ("citizen:r1", request("13800138001")),
        ("citizen:r1", request("13800138002")),
        ("citizen:r1", request("13800138003")),
        ("citizen:r2", request("13800138004", reused)),
        # The same request id with another body: refused, the first stands.
        ("citizen:r2", request("13800138005", reused)),
        ("citizen:r3", request("13800138004")),
    ]
    answers = await either.at_once(calls)
    codes = [
        a.code() if isinstance(a, grpc.aio.AioRpcError) else grpc.StatusCode.OK for a in answers
    ]
    # Which of the three (of the two) comes last is the server's arrival order.
    assert sorted(c.name for c in codes[:3]) == ["OK", "OK", "RESOURCE_EXHAUSTED"]
    assert sorted(c.name for c in codes[3:5]) == ["ABORTED", "OK"]
    assert codes[5] is grpc.StatusCode.OK
    assert await either.count(tables.reports) == 4
    # The refused ones left nothing behind: no report, no claim of their request ids.
    assert await either.count(tables.report_indicators) == 4
    assert await either.count(tables.idempotency) == 4


async def test_each_report_of_a_batch_continues_its_own_trace(
    spans: InMemorySpanExporter, db_target: tuple[str, str | None]
) -> None:
    """The reports of one transaction came from different calls: each one's risk sync must
    continue its own caller's trace, not the batch's nor whichever caller started the
    collector; the transaction's span links to every caller's."""
    traces = [f"{i + 1:032x}" for i in range(5)]
    async for client in _client(db_target, Rules(threshold=1.0), LINGER):
        await asyncio.gather(
            *(
                client.stub.SubmitReport(
                    request(f"1380013{i:04d}"),
                    metadata=[
                        ("x-principal", f"citizen:t{i}"),
                        ("traceparent", f"00-{trace}-{i + 1:016x}-01"),
                    ],
                )
                for i, trace in enumerate(traces)
            )
        )
        assert client.component.intake.commits.stats.transactions < len(traces)
        async with client.db.read() as conn:
            stored = (await conn.execute(sa.select(tables.outbox.c.trace_context))).scalars().all()
    assert sorted(str(t).split("-")[1] for t in stored) == traces
    batches = [s for s in spans.get_finished_spans() if s.name == "report-intake"]
    linked = {format(link.context.trace_id, "032x") for s in batches for link in s.links}
    assert linked == set(traces)
    assert all(s.parent is None for s in batches)


async def test_reports_sharing_nothing_are_stored_together_each_as_if_alone(
    client: Client,
) -> None:
    """Reports of a batch with no reporter and no indicator in common are stored in one
    statement per table and counted in one read, with every rule applied as if each were
    alone: a report that completes a listing sends it (and the reports before it) to review,
    a repeat of an open report is a duplicate, the rest are received."""
    listed, repeated = "13900139000", "13700137000"
    for who in ("citizen:early-1", "citizen:early-2"):
        await client.submit(who, request(listed))
    first = await client.submit("citizen:repeater", request(repeated))
    inserts: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO") and " reports " in statement:
            inserts.append(statement)

    sa.event.listen(client.db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        calls = [
            ("citizen:third", request(listed)),
            ("citizen:repeater", request(repeated)),
            *((f"citizen:other-{i}", request(f"1360013600{i}")) for i in range(6)),
        ]
        answers = await client.at_once(calls)
    finally:
        sa.event.remove(client.db.engine.sync_engine, "before_cursor_execute", seen)
    reports = [a for a in answers if isinstance(a, R.Report)]
    assert len(reports) == len(calls)
    assert len(inserts) < len(calls)  # stored together, not one statement each
    third, repeat, *others = reports
    assert third.status == R.REPORT_STATUS_UNDER_REVIEW
    assert third.findings[0].reporter_count == 3
    assert third.findings[0].standing == R.INDICATOR_STANDING_CORROBORATED
    assert repeat.status == R.REPORT_STATUS_DUPLICATE
    assert repeat.duplicate_of == first.name
    for other in others:
        assert other.status == R.REPORT_STATUS_RECEIVED
        assert other.findings[0].reporter_count == 1
    async with client.db.read() as conn:
        statuses = (
            await conn.execute(
                sa.select(tables.reports.c.reporter, tables.reports.c.status).where(
                    tables.reports.c.reporter.like("citizen:early-%")
                )
            )
        ).all()
        topics = (await conn.execute(sa.select(tables.outbox.c.topic))).scalars().all()
        pending = await conn.scalar(
            sa.select(sa.func.count()).where(tables.idempotency.c.response == PENDING)
        )
    # The listing sent the reports before it to the analysts' queue, and its sync is queued.
    assert {status for _, status in statuses} == {R.REPORT_STATUS_UNDER_REVIEW}
    assert topics == [events.SYNC_INDICATOR]
    assert pending == 0
