"""The report service over gRPC on a real database (SQLite, and PostgreSQL when reachable).

The risk and warning services are not running here: the relay keeps their events
queued, which lets these tests read exactly what was written to the outbox.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.report.v1 import report_pb2, report_pb2_grpc
from services.common.db import Database
from services.common.errors import field_violations
from services.report.adapters import tables
from services.report.bootstrap import ReportComponent, build
from services.report.domain.corroboration import Rules
from services.report.service_layer import events
from tests import harness
from tests.harness import serving

# Nothing listens here: the relay's calls fail fast and its events stay queued.
NOWHERE = "127.0.0.1:1"
PHONE = common_pb2.INDICATOR_KIND_PHONE_NUMBER
BANK = common_pb2.INDICATOR_KIND_BANK_ACCOUNT
URL = common_pb2.INDICATOR_KIND_URL
R = report_pb2


def phone(value: str) -> common_pb2.Indicator:
    return common_pb2.Indicator(kind=PHONE, value=value)


def report_body(*indicators: common_pb2.Indicator, **fields: object) -> report_pb2.Report:
    given: dict[str, object] = {
        "kind": R.REPORT_KIND_FRAUD_CALL,
        "indicators": list(indicators),
        "description": "Caller claimed to be police and asked for a 'safe account' transfer.",
        "category": common_pb2.FRAUD_CATEGORY_IMPERSONATING_OFFICIALS,
    }
    return R.Report(**(given | fields))  # type: ignore[arg-type]


@dataclass
class Client:
    stub: report_pb2_grpc.ReportServiceStub
    db: Database
    component: ReportComponent

    async def submit(
        self,
        principal: str,
        *indicators: common_pb2.Indicator,
        request_id: str | None = None,
        body: report_pb2.Report | None = None,
    ) -> report_pb2.Report:
        request = R.SubmitReportRequest(
            request_id=request_id or str(uuid.uuid4()), report=body or report_body(*indicators)
        )
        response: report_pb2.SubmitReportResponse = await self.stub.SubmitReport(
            request, metadata=as_(principal)
        )
        return response.report

    async def get(self, name: str, principal: str = "") -> report_pb2.Report:
        response: report_pb2.GetReportResponse = await self.stub.GetReport(
            R.GetReportRequest(name=name), metadata=as_(principal)
        )
        return response.report

    async def review(
        self,
        name: str,
        decision: report_pb2.ReviewDecision,
        reason: str,
        principal: str = "analyst:a1",
    ) -> report_pb2.Report:
        response: report_pb2.ReviewReportResponse = await self.stub.ReviewReport(
            R.ReviewReportRequest(
                request_id=str(uuid.uuid4()), name=name, decision=decision, reason=reason
            ),
            metadata=as_(principal),
        )
        return response.report

    async def outbox(self, topic: str) -> list[tuple[str, bytes]]:
        async with self.db.read() as conn:
            rows = await conn.execute(
                sa.select(tables.outbox.c.key, tables.outbox.c.payload)
                .where(tables.outbox.c.topic == topic)
                .order_by(tables.outbox.c.id)
            )
            return [(r.key, bytes(r.payload)) for r in rows]


def as_(principal: str) -> list[tuple[str, str]]:
    return [("x-principal", principal)] if principal else []


@pytest.fixture
async def rules() -> Rules:
    return Rules()


async def _client(url: str, schema: str | None, rules: Rules) -> AsyncGenerator[Client, None]:
    component = build(
        url=url, schema=schema, rules=rules, risk_target=NOWHERE, warning_target=NOWHERE
    )
    async with (
        serving(component) as running,
        harness.channel(running.address) as channel,
    ):
        yield Client(report_pb2_grpc.ReportServiceStub(channel), component.db, component)


@pytest.fixture
async def client(db_target: tuple[str, str | None], rules: Rules) -> AsyncIterator[Client]:
    url, schema = db_target
    async for c in _client(url, schema, rules):
        yield c


def finding(report: report_pb2.Report, position: int = 0) -> tuple[int, int]:
    f = report.findings[position]
    return f.standing, f.reporter_count


async def rpc_error(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


# --- idempotency ------------------------------------------------------------------------------


async def test_a_repeated_submission_returns_the_first_result(client: Client) -> None:
    request_id = str(uuid.uuid4())
    first = await client.submit("citizen:u1", phone("13800138000"), request_id=request_id)
    again = await client.submit("citizen:u1", phone("13800138000"), request_id=request_id)
    assert again == first
    listed = await client.stub.ListReports(R.ListReportsRequest(), metadata=as_("citizen:u1"))
    assert [r.name for r in listed.reports] == [first.name]


async def test_the_same_request_id_with_another_body_is_refused(client: Client) -> None:
    request_id = str(uuid.uuid4())
    await client.submit("citizen:u1", phone("13800138000"), request_id=request_id)
    error = await rpc_error(
        client.submit("citizen:u1", phone("13900139000"), request_id=request_id)
    )
    assert error.code() is grpc.StatusCode.ABORTED
    assert "request_id" in (error.details() or "")


async def test_request_ids_are_scoped_to_the_caller(client: Client) -> None:
    request_id = str(uuid.uuid4())
    mine = await client.submit("citizen:u1", phone("13800138000"), request_id=request_id)
    theirs = await client.submit("citizen:u2", phone("13800138000"), request_id=request_id)
    assert mine.name != theirs.name
    assert (mine.reporter, theirs.reporter) == ("citizen:u1", "citizen:u2")


# --- corroboration ------------------------------------------------------------------------------


async def test_three_distinct_reporters_list_the_indicator_once(client: Client) -> None:
    # One number written three ways: normalisation makes them one indicator.
    first = await client.submit("citizen:u1", phone("138 0013 8000"))
    second = await client.submit("citizen:u2", phone("+86 138-0013-8000"))
    assert (first.status, second.status) == (R.REPORT_STATUS_RECEIVED, R.REPORT_STATUS_RECEIVED)
    assert finding(second) == (R.INDICATOR_STANDING_UNLISTED, 2)
    assert await client.outbox(events.SYNC_INDICATOR) == []

    third = await client.submit("citizen:u3", phone("8613800138000"))
    assert third.indicators[0].value == "+8613800138000"
    assert third.status == R.REPORT_STATUS_UNDER_REVIEW
    assert finding(third) == (R.INDICATOR_STANDING_CORROBORATED, 3)
    # The earlier reports moved to the analysts' queue with it.
    for earlier in (first, second):
        assert (await client.get(earlier.name)).status == R.REPORT_STATUS_UNDER_REVIEW
    assert len(await client.outbox(events.SYNC_INDICATOR)) == 1


async def test_one_reporter_reporting_again_and_again_counts_once(client: Client) -> None:
    original = await client.submit("citizen:u1", phone("13800138000"))
    repeats = [await client.submit("citizen:u1", phone("13800138000")) for _ in range(10)]
    assert {r.status for r in repeats} == {R.REPORT_STATUS_DUPLICATE}
    assert {r.duplicate_of for r in repeats} == {original.name}
    await client.submit("citizen:u2", phone("13800138000"))
    latest = await client.get(original.name)
    assert latest.status == R.REPORT_STATUS_RECEIVED
    assert finding(latest) == (R.INDICATOR_STANDING_UNLISTED, 2)
    assert await client.outbox(events.SYNC_INDICATOR) == []


async def test_a_report_naming_a_new_value_too_is_no_duplicate(client: Client) -> None:
    await client.submit("citizen:u1", phone("13800138000"))
    wider = await client.submit("citizen:u1", phone("13800138000"), phone("13900139000"))
    assert wider.status == R.REPORT_STATUS_RECEIVED
    assert [finding(wider, i)[1] for i in range(2)] == [1, 1]


@pytest.mark.parametrize("rules", [Rules(anonymous_weight=0.25, anonymous_cap=1.0)])
async def test_anonymous_reports_count_less_and_never_alone(client: Client) -> None:
    for _ in range(8):
        alone = await client.submit("citizen:", phone("13800138000"))
    assert alone.anonymous
    assert alone.reporter == "anonymous"
    assert finding(alone) == (R.INDICATOR_STANDING_UNLISTED, 0)
    await client.submit("citizen:u1", phone("13800138000"))
    # Two real-name reporters plus the anonymous reports (capped at one reporter) make three.
    listed = await client.submit("citizen:u2", phone("13800138000"))
    assert finding(listed) == (R.INDICATOR_STANDING_CORROBORATED, 2)


# --- review ---------------------------------------------------------------------------------------


async def test_confirmation_lists_high_and_rejection_withdraws(client: Client) -> None:
    reports = [await client.submit(f"citizen:u{i}", phone("13800138000")) for i in range(3)]
    assert finding(reports[-1]) == (R.INDICATOR_STANDING_CORROBORATED, 3)

    confirmed = await client.review(reports[0].name, R.REVIEW_DECISION_CONFIRM, "callback verified")
    assert confirmed.status == R.REPORT_STATUS_CONFIRMED
    assert finding(confirmed) == (R.INDICATOR_STANDING_CONFIRMED, 3)
    assert confirmed.resolution.reason == "callback verified"
    assert confirmed.resolution.reviewer == "analyst:a1"

    rejected = await client.review(
        reports[1].name, R.REVIEW_DECISION_REJECT, "a courier's number", principal="analyst:a2"
    )
    assert rejected.status == R.REPORT_STATUS_REJECTED
    assert finding(rejected) == (R.INDICATOR_STANDING_REJECTED, 0)
    # Listed, confirmed, withdrawn: three versions, each its own event.
    assert len(await client.outbox(events.SYNC_INDICATOR)) == 3

    # Reports from before the rejection no longer count; new reporters count afresh.
    again = [await client.submit(f"citizen:v{i}", phone("13800138000")) for i in range(2)]
    assert finding(again[-1]) == (R.INDICATOR_STANDING_REJECTED, 2)
    relisted = await client.submit("citizen:v2", phone("13800138000"))
    assert finding(relisted) == (R.INDICATOR_STANDING_CORROBORATED, 3)
    assert len(await client.outbox(events.SYNC_INDICATOR)) == 4


async def test_confirming_a_single_report_lists_it_high(client: Client) -> None:
    report = await client.submit("citizen:u1", phone("13800138000"))
    confirmed = await client.review(report.name, R.REVIEW_DECISION_CONFIRM, "matches case 17")
    assert finding(confirmed) == (R.INDICATOR_STANDING_CONFIRMED, 1)
    assert len(await client.outbox(events.SYNC_INDICATOR)) == 1


async def test_rejecting_an_unlisted_indicator_sends_nothing(client: Client) -> None:
    report = await client.submit("citizen:u1", phone("13800138000"))
    rejected = await client.review(report.name, R.REVIEW_DECISION_REJECT, "no evidence")
    assert finding(rejected) == (R.INDICATOR_STANDING_REJECTED, 0)
    assert await client.outbox(events.SYNC_INDICATOR) == []


async def test_every_decision_is_recorded_and_only_staff_see_the_history(client: Client) -> None:
    report = await client.submit("citizen:u1", phone("13800138000"))
    await client.review(report.name, R.REVIEW_DECISION_REJECT, "looks like a prank")
    await client.review(report.name, R.REVIEW_DECISION_CONFIRM, "second caller confirmed it")
    as_analyst = await client.get(report.name, "analyst:a9")
    assert [(r.decision, r.reason) for r in as_analyst.reviews] == [
        (R.REVIEW_DECISION_REJECT, "looks like a prank"),
        (R.REVIEW_DECISION_CONFIRM, "second caller confirmed it"),
    ]
    as_reporter = await client.get(report.name, "citizen:u1")
    assert as_reporter.status == R.REPORT_STATUS_CONFIRMED
    assert as_reporter.resolution.reason == "second caller confirmed it"
    assert list(as_reporter.reviews) == []


async def test_rejections_weigh_a_reporter_down(client: Client) -> None:
    for i in range(3):
        bogus = await client.submit("citizen:liar", phone(f"1390013900{i}"))
        await client.review(bogus.name, R.REVIEW_DECISION_REJECT, "false report")
    await client.submit("citizen:u1", phone("13800138000"))
    await client.submit("citizen:u2", phone("13800138000"))
    # The liar's weight is 0.25: three names are not enough...
    third = await client.submit("citizen:liar", phone("13800138000"))
    assert finding(third) == (R.INDICATOR_STANDING_UNLISTED, 3)
    # ...a fourth good reporter is.
    fourth = await client.submit("citizen:u3", phone("13800138000"))
    assert finding(fourth) == (R.INDICATOR_STANDING_CORROBORATED, 4)


async def test_only_staff_review(client: Client) -> None:
    report = await client.submit("citizen:u1", phone("13800138000"))
    error = await rpc_error(
        client.review(report.name, R.REVIEW_DECISION_CONFIRM, "mine", principal="citizen:u1")
    )
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    missing = await rpc_error(client.review("reports/" + "0" * 32, R.REVIEW_DECISION_CONFIRM, "x"))
    assert missing.code() is grpc.StatusCode.NOT_FOUND


# --- rate limit ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rules", [Rules(rate_limit=3)])
async def test_a_flood_from_one_reporter_is_rate_limited(client: Client) -> None:
    first_id = str(uuid.uuid4())
    await client.submit("citizen:u1", phone("13800138000"), request_id=first_id)
    for i in range(2):
        await client.submit("citizen:u1", phone(f"1390013900{i}"))
    error = await rpc_error(client.submit("citizen:u1", phone("13700137000")))
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    retry = error_details_pb2.RetryInfo()
    assert any(d.Unpack(retry) for d in status.details if d.Is(retry.DESCRIPTOR))
    assert 0 < retry.retry_delay.seconds <= 600
    # Others are not affected; a retry of an accepted submission still gets its answer.
    await client.submit("citizen:u2", phone("13700137000"))
    await client.submit("citizen:u1", phone("13800138000"), request_id=first_id)
    # Analysts filing for hotline callers are not limited.
    for i in range(5):
        await client.submit("analyst:a1", phone(f"1370013700{i}"))


@pytest.mark.parametrize("rules", [Rules(anonymous_rate_limit=2)])
async def test_anonymous_reports_share_one_budget(client: Client) -> None:
    await client.submit("citizen:", phone("13800138000"))
    await client.submit("citizen:", phone("13900139000"))
    error = await rpc_error(client.submit("citizen:", phone("13700137000")))
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    await client.submit("citizen:u1", phone("13700137000"))


# --- access ---------------------------------------------------------------------------------------


async def test_a_citizen_sees_only_their_own_reports(client: Client) -> None:
    mine = await client.submit("citizen:u1", phone("13800138000"))
    await client.submit("citizen:u2", phone("13800138000"))
    error = await rpc_error(client.get(mine.name, "citizen:u2"))
    assert error.code() is grpc.StatusCode.NOT_FOUND
    error = await rpc_error(client.get(mine.name, "citizen:"))
    assert error.code() is grpc.StatusCode.NOT_FOUND
    listed = await client.stub.ListReports(R.ListReportsRequest(), metadata=as_("citizen:u1"))
    assert [r.name for r in listed.reports] == [mine.name]
    error = await rpc_error(
        client.stub.ListReports(
            R.ListReportsRequest(reporter="citizen:u2"), metadata=as_("citizen:u1")
        )
    )
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    error = await rpc_error(
        client.stub.ListReports(R.ListReportsRequest(), metadata=as_("citizen:"))
    )
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    error = await rpc_error(
        client.stub.GetReportStats(R.GetReportStatsRequest(), metadata=as_("citizen:u1"))
    )
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    # A name nobody signed for is no proof at all.
    error = await rpc_error(client.get(mine.name, "martian:x"))
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED


# --- listing and stats --------------------------------------------------------------------------


async def _names(client: Client, principal: str = "analyst:a1", **filters: object) -> list[str]:
    names: list[str] = []
    token = ""
    while True:
        request = R.ListReportsRequest(page_size=2, page_token=token, **filters)  # type: ignore[arg-type]
        page = await client.stub.ListReports(request, metadata=as_(principal))
        names.extend(r.name for r in page.reports)
        token = page.next_page_token
        if not token:
            return names


async def test_analysts_list_the_queue_with_filters_and_pages(client: Client) -> None:
    calls = [await client.submit(f"citizen:u{i}", phone("13800138000")) for i in range(3)]
    url = await client.submit(
        "citizen:u9",
        body=report_body(
            common_pb2.Indicator(kind=URL, value="http://pay.evil.example/x"),
            kind=R.REPORT_KIND_URL,
        ),
    )
    rejected = await client.submit("citizen:u8", phone("13900139000"))
    await client.review(rejected.name, R.REVIEW_DECISION_REJECT, "not fraud")
    every = [r.name for r in (*calls, url, rejected)]

    assert await _names(client) == every[::-1]
    assert await _names(client, order_by="create_time") == every
    queue = [R.REPORT_STATUS_RECEIVED, R.REPORT_STATUS_UNDER_REVIEW]
    assert await _names(client, statuses=queue, order_by="create_time") == every[:4]
    assert await _names(client, statuses=[R.REPORT_STATUS_UNDER_REVIEW]) == every[:3][::-1]
    assert await _names(client, kind=R.REPORT_KIND_URL) == [url.name]
    assert await _names(client, indicator=phone("+86 139 0013 9000")) == [rejected.name]
    assert await _names(client, reporter="citizen:u1") == [calls[1].name]
    start = Timestamp()
    start.FromDatetime(datetime.now(UTC) + timedelta(hours=1))
    assert await _names(client, start_time=start) == []

    first = await client.stub.ListReports(
        R.ListReportsRequest(page_size=2), metadata=as_("analyst:a1")
    )
    error = await rpc_error(
        client.stub.ListReports(
            R.ListReportsRequest(
                page_size=2, page_token=first.next_page_token, kind=R.REPORT_KIND_URL
            ),
            metadata=as_("analyst:a1"),
        )
    )
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error)[0][0] == "page_token"
    error = await rpc_error(
        client.stub.ListReports(
            R.ListReportsRequest(order_by="severity"), metadata=as_("analyst:a1")
        )
    )
    assert field_violations(error)[0][0] == "order_by"

    stats = await client.stub.GetReportStats(R.GetReportStatsRequest(), metadata=as_("analyst:a1"))
    counts = {c.status: c.count for c in stats.status_counts}
    assert stats.total_count == 5
    assert counts[R.REPORT_STATUS_UNDER_REVIEW] == 3
    assert counts[R.REPORT_STATUS_RECEIVED] == 1
    assert counts[R.REPORT_STATUS_REJECTED] == 1
    assert counts[R.REPORT_STATUS_CONFIRMED] == 0
    assert {k.kind: k.count for k in stats.kind_counts}[R.REPORT_KIND_URL] == 1
    assert stats.corroborated_indicator_count == 1


# --- bad input ----------------------------------------------------------------------------------


def _money(units: int, nanos: int = 0) -> common_pb2.Money:
    return common_pb2.Money(currency_code="CNY", units=units, nanos=nanos)


def _future() -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(datetime.now(UTC) + timedelta(days=2))
    return ts


BAD_REPORTS: list[tuple[str, report_pb2.Report, str]] = [
    ("no indicator", report_body(), "report.indicators"),
    ("unnormalisable", report_body(phone("call me maybe")), "report.indicators[0].value"),
    (
        "no kind",
        report_body(common_pb2.Indicator(value="13800138000")),
        "report.indicators[0].kind",
    ),
    (
        "negative amount",
        report_body(phone("13800138000"), evidence=R.Evidence(amount_requested=_money(-500))),
        "report.evidence.amount_requested",
    ),
    (
        "long description",
        report_body(phone("13800138000"), description="诈" * 5001),
        "report.description",
    ),
    (
        "future incident",
        report_body(phone("13800138000"), incident_time=_future()),
        "report.incident_time",
    ),
    (
        "huge attachment",
        report_body(
            phone("13800138000"),
            evidence=R.Evidence(
                attachments=[R.Attachment(sha256="a" * 64, size_bytes=50 * 1024 * 1024)]
            ),
        ),
        "report.evidence.attachments[0].size_bytes",
    ),
    (
        "bad hash",
        report_body(
            phone("13800138000"),
            evidence=R.Evidence(attachments=[R.Attachment(sha256="xyz", size_bytes=10)]),
        ),
        "report.evidence.attachments[0].sha256",
    ),
    ("unknown kind", report_body(phone("13800138000"), kind=99), "report.kind"),
    (
        "control characters",
        report_body(phone("13800138000"), description="a\x00b"),
        "report.description",
    ),
    ("too many", report_body(*[phone(f"1380013{i:04d}") for i in range(21)]), "report.indicators"),
]


@pytest.mark.parametrize(("case", "body", "field"), BAD_REPORTS, ids=[c[0] for c in BAD_REPORTS])
async def test_bad_reports_are_invalid_argument_naming_the_field(
    client: Client, case: str, body: report_pb2.Report, field: str
) -> None:
    error = await rpc_error(client.submit("citizen:u1", body=body))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field in [f for f, _ in field_violations(error)]


async def test_a_bad_request_id_is_invalid_argument(client: Client) -> None:
    error = await rpc_error(
        client.submit("citizen:u1", phone("13800138000"), request_id="not-a-uuid")
    )
    assert [f for f, _ in field_violations(error)] == ["request_id"]


async def test_a_ten_megabyte_description_is_stopped_by_grpc_itself(client: Client) -> None:
    body = report_body(phone("13800138000"), description="x" * (10 * 1024 * 1024))
    error = await rpc_error(client.submit("citizen:u1", body=body))
    # Over the 4 MiB message cap: refused before it reaches the service.
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    below_cap = report_body(phone("13800138000"), description="x" * (3 * 1024 * 1024))
    error = await rpc_error(client.submit("citizen:u1", body=below_cap))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(error)] == ["report.description"]


async def test_bad_names_are_invalid_and_unknown_ones_not_found(client: Client) -> None:
    error = await rpc_error(client.get("reports/../../etc", "analyst:a1"))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    error = await rpc_error(client.get("reports/" + "f" * 32, "analyst:a1"))
    assert error.code() is grpc.StatusCode.NOT_FOUND


# --- cases ----------------------------------------------------------------------------------------


def case_body(*payees: report_pb2.Payee, **fields: object) -> report_pb2.Case:
    when = Timestamp()
    when.FromDatetime(datetime.now(UTC) - timedelta(hours=2))
    given: dict[str, object] = {
        "description": "Told my account was frozen by police, moved savings to a 'safe account'.",
        "category": common_pb2.FRAUD_CATEGORY_IMPERSONATING_OFFICIALS,
        "amount_lost": _money(52_000),
        "incident_time": when,
        "payees": list(payees),
        "suspect_indicators": [
            phone("13800138000"),
            common_pb2.Indicator(kind=URL, value="police-cn.example/verify"),
        ],
    }
    return R.Case(**(given | fields))  # type: ignore[arg-type]


def payee(
    value: str, units: int | None = None, kind: common_pb2.IndicatorKind = BANK
) -> report_pb2.Payee:
    p = R.Payee(account=common_pb2.Indicator(kind=kind, value=value))
    if units is not None:
        p.amount.CopyFrom(_money(units))
    return p


async def file_case(
    client: Client, principal: str, body: report_pb2.Case, request_id: str | None = None
) -> report_pb2.Case:
    response: report_pb2.FileCaseResponse = await client.stub.FileCase(
        R.FileCaseRequest(request_id=request_id or str(uuid.uuid4()), case=body),
        metadata=as_(principal),
    )
    return response.case


async def test_a_filed_case_queues_listing_and_stop_payment_per_payee(client: Client) -> None:
    body = case_body(
        payee("6222 0212 3456 1234 567", 30_000),
        payee("alipay:13900139000", kind=common_pb2.INDICATOR_KIND_PAYMENT_ACCOUNT),
        payee("6222021234561234567"),  # the first one again, written differently
    )
    request_id = str(uuid.uuid4())
    case = await file_case(client, "citizen:victim", body, request_id)
    assert case.filer == "citizen:victim"
    assert [p.account.value for p in case.payees] == [
        "6222021234561234567",
        "alipay:+8613900139000",
    ]
    assert {p.stop_payment_status for p in case.payees} == {R.STOP_PAYMENT_STATUS_PENDING}
    assert case.payees[0].amount.units == 30_000
    assert len(await client.outbox(events.LIST_PAYEE)) == 2
    assert len(await client.outbox(events.STOP_PAYMENT)) == 2
    # The suspects were filed as a report by the victim, linked to the case.
    report = await client.get(case.report, "citizen:victim")
    assert report.case == case.name
    assert [i.value for i in report.indicators] == ["+8613800138000", "police-cn.example/verify"]

    assert await file_case(client, "citizen:victim", body, request_id) == case
    assert len(await client.outbox(events.STOP_PAYMENT)) == 2

    got = await client.stub.GetCase(
        R.GetCaseRequest(name=case.name), metadata=as_("citizen:victim")
    )
    assert got.case.name == case.name
    # The warning service is not running: the last known status stands.
    assert {p.stop_payment_status for p in got.case.payees} == {R.STOP_PAYMENT_STATUS_PENDING}
    error = await rpc_error(
        client.stub.GetCase(R.GetCaseRequest(name=case.name), metadata=as_("citizen:other"))
    )
    assert error.code() is grpc.StatusCode.NOT_FOUND
    mine = await client.stub.ListCases(R.ListCasesRequest(), metadata=as_("citizen:victim"))
    assert [c.name for c in mine.cases] == [case.name]
    theirs = await client.stub.ListCases(R.ListCasesRequest(), metadata=as_("citizen:other"))
    assert list(theirs.cases) == []
    every = await client.stub.ListCases(R.ListCasesRequest(), metadata=as_("analyst:a1"))
    assert [c.name for c in every.cases] == [case.name]


BAD_CASES: list[tuple[str, report_pb2.Case, str]] = [
    ("negative loss", case_body(amount_lost=_money(-1)), "case.amount_lost"),
    ("phone as payee", case_body(payee("13800138000", kind=PHONE)), "case.payees[0].account.kind"),
    ("bad card", case_body(payee("12")), "case.payees[0].account.value"),
    (
        "zero order",
        case_body(payee("6222021234561234567"), amount_lost=_money(0)),
        "case.payees[0].amount",
    ),
    ("no category", case_body(category=0), "case.category"),
    ("no description", case_body(description="  "), "case.description"),
    ("future", case_body(incident_time=_future()), "case.incident_time"),
]


@pytest.mark.parametrize(("case", "body", "field"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
async def test_bad_cases_are_invalid_argument_naming_the_field(
    client: Client, case: str, body: report_pb2.Case, field: str
) -> None:
    error = await rpc_error(file_case(client, "citizen:victim", body))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field in [f for f, _ in field_violations(error)]


async def test_only_registered_users_and_staff_file_cases(client: Client) -> None:
    for principal in ("citizen:", "bank:icbc"):
        error = await rpc_error(
            file_case(client, principal, case_body(payee("6222021234561234567")))
        )
        assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    on_behalf = await file_case(client, "analyst:a1", case_body(payee("6222021234561234567")))
    assert on_behalf.filer == "analyst:a1"


# --- two replicas on one database -----------------------------------------------------------------


@pytest.mark.parametrize("rules", [Rules(rate_limit=5)])
async def test_two_replicas_count_in_the_database(
    db_target: tuple[str, str | None], rules: Rules
) -> None:
    url, schema = db_target
    one, two = _client(url, schema, rules), _client(url, schema, rules)
    a, b = await anext(one), await anext(two)
    try:
        replicas = [a, b]
        # Six reporters at once through both replicas: every one counted, listed once.
        done = await asyncio.gather(
            *(replicas[i % 2].submit(f"citizen:r{i}", phone("13800138000")) for i in range(6))
        )
        counts = sorted(finding(r)[1] for r in done)
        assert counts == [1, 2, 3, 4, 5, 6]
        latest = await a.get(done[0].name)
        assert finding(latest) == (R.INDICATOR_STANDING_CORROBORATED, 6)
        # Listed at 3, then re-asserted with 4, 5 and 6 reporters: one event per version.
        assert len(await a.outbox(events.SYNC_INDICATOR)) == 4

        # One reporter flooding both replicas at once gets exactly the limit through.
        results = await asyncio.gather(
            *(replicas[i % 2].submit("citizen:flood", phone(f"1390013{i:04d}")) for i in range(12)),
            return_exceptions=True,
        )
        accepted = [r for r in results if isinstance(r, report_pb2.Report)]
        limited = [
            r
            for r in results
            if isinstance(r, grpc.aio.AioRpcError)
            and r.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        ]
        assert (len(accepted), len(limited)) == (5, 7)
    finally:
        for gen in (one, two):
            await gen.aclose()


async def test_twins_on_two_replicas_get_one_answer_and_one_report(
    db_target: tuple[str, str | None],
) -> None:
    """The same request id sent to both replicas at once, again and again: each pair is
    answered alike and stored once (the second waits for the first's commit, on the
    reporter's lock, then finds its answer)."""
    url, schema = db_target
    one, two = _client(url, schema, Rules()), _client(url, schema, Rules())
    a, b = await anext(one), await anext(two)
    try:
        for i in range(5):
            request_id = str(uuid.uuid4())
            first, second = await asyncio.gather(
                a.submit(f"citizen:twin{i}", phone("13800138000"), request_id=request_id),
                b.submit(f"citizen:twin{i}", phone("13800138000"), request_id=request_id),
            )
            assert first == second
            listed = await a.stub.ListReports(
                R.ListReportsRequest(), metadata=as_(f"citizen:twin{i}")
            )
            assert [r.name for r in listed.reports] == [first.name]
    finally:
        for gen in (one, two):
            await gen.aclose()


def _names_of(reports: Sequence[report_pb2.Report]) -> list[str]:
    return [r.name for r in reports]


# --- the audit log of reveals ---------------------------------------------------------------------


async def test_every_reveal_is_in_the_audit_log_with_who_and_why(client: Client) -> None:
    first = await client.submit("citizen:u1", phone("13800138000"))
    second = await client.submit("citizen:u2", phone("13800138000"))
    for name, who, why in (
        (first.name, "analyst:a1", "回访举报人"),
        (second.name, "analyst:a2", "核实身份"),
        (first.name, "analyst:a2", "复核"),
    ):
        await client.stub.RevealOriginalText(
            R.RevealOriginalTextRequest(name=name, purpose=why), metadata=as_(who)
        )
    about_first = await client.stub.ListAuditEvents(
        R.ListAuditEventsRequest(record=first.name), metadata=as_("analyst:a9")
    )
    assert [(e.actor, e.purpose) for e in about_first.audit_events] == [
        ("analyst:a2", "复核"),  # newest first
        ("analyst:a1", "回访举报人"),
    ]
    assert all(e.name.startswith("auditEvents/") for e in about_first.audit_events)
    by_a2 = await client.stub.ListAuditEvents(
        R.ListAuditEventsRequest(actor="analyst:a2", page_size=1), metadata=as_("analyst:a9")
    )
    assert [e.record for e in by_a2.audit_events] == [first.name]
    rest = await client.stub.ListAuditEvents(
        R.ListAuditEventsRequest(actor="analyst:a2", page_token=by_a2.next_page_token),
        metadata=as_("analyst:a9"),
    )
    assert [e.record for e in rest.audit_events] == [second.name]
    assert not rest.next_page_token
    refused = await rpc_error(
        client.stub.ListAuditEvents(R.ListAuditEventsRequest(), metadata=as_("citizen:u1"))
    )
    assert refused.code() is grpc.StatusCode.PERMISSION_DENIED
