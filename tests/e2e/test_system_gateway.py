"""The loop of the brief, end to end, through the gateway only, with every process
running as deployed (see tests/e2e/deployment.py): reports become a verdict, a
carrier's screening warns the callee live, a case stops a payment at the bank,
remote verification, guardians, and the gateway's refusals."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from services.api.antifraud.common.v1 import common_pb2 as c
from services.api.antifraud.gateway.v1 import gateway_pb2 as gw
from services.api.antifraud.identity.v1 import identity_pb2 as idn
from services.api.antifraud.partner.v1 import face_pb2, simulator_pb2
from services.api.antifraud.report.v1 import report_pb2 as rp
from services.api.antifraud.risk.v1 import risk_pb2 as rk
from services.api.antifraud.warning.v1 import warning_pb2 as wn
from tests.e2e.deployment import (
    Citizen,
    Deployment,
    eventually,
    new_phone,
)
from tests.factories import card

pytestmark = pytest.mark.slow


def _minutes_ago(minutes: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(datetime.now(UTC) - timedelta(minutes=minutes))
    return stamp


def phone_indicator(phone: str) -> c.Indicator:
    return c.Indicator(kind=c.INDICATOR_KIND_PHONE_NUMBER, value=phone)


async def report_number(suite: Deployment, reporter: Citizen, number: str) -> rp.Report:
    response = await suite.report.SubmitReport(
        rp.SubmitReportRequest(
            request_id=str(uuid.uuid4()),
            report=rp.Report(
                kind=rp.REPORT_KIND_FRAUD_CALL,
                indicators=[phone_indicator(number)],
                description="自称客服说我的订单异常，要我转账退款",
                category=c.FRAUD_CATEGORY_FAKE_CUSTOMER_SERVICE,
            ),
        ),
        metadata=reporter.metadata,
    )
    return response.report


async def verdict_level(suite: Deployment, who: Citizen, number: str) -> int:
    checked = await suite.risk.CheckIndicator(
        rk.CheckIndicatorRequest(indicator=phone_indicator(number)), metadata=who.metadata
    )
    return int(checked.verdict.level)


class WarningInbox:
    """A citizen's app, connected to the warning stream."""

    def __init__(self, suite: Deployment, citizen: Citizen) -> None:
        self.received: list[wn.Warning] = []
        self.call = suite.warning.StreamWarnings(
            wn.StreamWarningsRequest(user_id=citizen.user_id), metadata=citizen.metadata
        )
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for event in self.call:
            if event.HasField("warning"):
                self.received.append(event.warning)

    async def about(self, value: str, timeout: float = 20.0) -> wn.Warning:
        async def found() -> wn.Warning | None:
            return next((w for w in self.received if w.reason.indicator.value == value), None)

        return await eventually(found, timeout)

    def close(self) -> None:
        self.call.cancel()
        self.task.cancel()


async def screen(
    suite: Deployment, carrier: tuple[tuple[str, str], ...], caller: str, callee: str
) -> gw.ScreenDecision:
    async def events() -> AsyncIterator[gw.ScreenEventsRequest]:
        yield gw.ScreenEventsRequest(
            events=[
                gw.ScreenEvent(
                    event_id=str(uuid.uuid4()),
                    caller=caller,
                    callee=callee,
                    kind=wn.CONTACT_KIND_CALL,
                )
            ]
        )

    responses = [r async for r in suite.screening.ScreenEvents(events(), metadata=carrier)]
    assert len(responses) == 1
    return responses[0].decisions[0]


async def test_reports_become_a_verdict_and_screening_warns_the_callee_live(
    suite: Deployment,
) -> None:
    reporters = [await suite.register() for _ in range(3)]
    callee = await suite.register()
    inbox = WarningInbox(suite, callee)
    fraudster = new_phone()
    try:
        for reporter in reporters:
            await report_number(suite, reporter, fraudster)

        async def corroborated() -> bool:
            return await verdict_level(suite, callee, fraudster) == c.RISK_LEVEL_MEDIUM

        await eventually(corroborated)
        carrier = await suite.key(gw.ROLE_CARRIER, "carrier-cmcc")

        async def warned() -> gw.ScreenDecision | None:
            # Every risk replica follows the change feed within a fraction of a second.
            decision = await screen(suite, carrier, fraudster, callee.phone)
            return decision if decision.action == gw.SCREEN_ACTION_WARN else None

        decision = await eventually(warned, timeout=5)
        assert decision.verdict.sources.distinct_reporters == 3
        assert decision.label
        warning = await inbox.about(fraudster)
        assert warning.user_id == callee.user_id
        assert warning.level == c.RISK_LEVEL_MEDIUM
        # An official number is labelled as such, never warned about.
        official = await screen(suite, carrier, "96110", callee.phone)
        assert official.action == gw.SCREEN_ACTION_LABEL
        assert "96110" in official.label
    finally:
        inbox.close()


async def test_a_filed_case_stops_the_payment_at_the_payees_bank(suite: Deployment) -> None:
    import random

    victim = await suite.register()
    payee = card(random.Random())  # an ICBC, CCB or ABC card by its BIN
    filed_at = time.monotonic()
    filed = await suite.report.FileCase(
        rp.FileCaseRequest(
            request_id=str(uuid.uuid4()),
            case=rp.Case(
                description="对方冒充公安说我涉嫌洗钱，让我把钱转到安全账户",
                category=c.FRAUD_CATEGORY_IMPERSONATING_OFFICIALS,
                amount_lost=c.Money(currency_code="CNY", units=50_000),
                incident_time=_minutes_ago(30),
                payees=[
                    rp.Payee(account=c.Indicator(kind=c.INDICATOR_KIND_BANK_ACCOUNT, value=payee))
                ],
            ),
        ),
        metadata=victim.metadata,
    )

    async def bank_received() -> simulator_pb2.ReceivedCall | None:
        got = await suite.control.ListReceived(
            simulator_pb2.ListReceivedRequest(method="StopPayment", page_size=500)
        )
        return next(
            (
                r
                for r in got.received_calls
                if r.summary.get("case_reference") == filed.case.name
                or filed.case.name.endswith(r.summary.get("case_reference", "-"))
            ),
            None,
        )

    received = await eventually(bank_received, timeout=10)
    latency = time.monotonic() - filed_at
    print(f"\ncase filed -> stop-payment at the bank simulator: {latency * 1000:.0f} ms")
    assert received.simulator.startswith("bank-")

    async def acknowledged() -> rp.Case | None:
        got = await suite.report.GetCase(
            rp.GetCaseRequest(name=filed.case.name), metadata=victim.metadata
        )
        status = got.case.payees[0].stop_payment_status
        return got.case if status == rp.STOP_PAYMENT_STATUS_ACKNOWLEDGED else None

    case = await eventually(acknowledged)
    assert case.payees[0].bank_order.startswith("bankOrders/")

    async def listed() -> rk.Verdict | None:
        got = await suite.risk.CheckIndicator(
            rk.CheckIndicatorRequest(
                indicator=c.Indicator(kind=c.INDICATOR_KIND_BANK_ACCOUNT, value=payee)
            ),
            metadata=victim.metadata,
        )
        return got.verdict if got.verdict.level == c.RISK_LEVEL_HIGH else None

    verdict = await eventually(listed, timeout=10)
    assert verdict.sources.case_reported


async def _ask(suite: Deployment, a: Citizen, b: Citizen) -> idn.VerificationRequest:
    created = await suite.identity.CreateVerificationRequest(
        idn.CreateVerificationRequestRequest(
            request_id=str(uuid.uuid4()),
            target_phone_number=b.phone,
            purpose=idn.VERIFICATION_PURPOSE_PAYMENT,
        ),
        metadata=a.metadata,
    )
    return created.verification_request


async def _answer(
    suite: Deployment, b: Citizen, name: str, token: str
) -> idn.RespondToVerificationRequestResponse:
    return await suite.identity.RespondToVerificationRequest(
        idn.RespondToVerificationRequestRequest(
            request_id=str(uuid.uuid4()),
            name=name,
            decision=idn.VERIFICATION_DECISION_ACCEPT,
            face_token=token,
        ),
        metadata=b.metadata,
    )


async def test_remote_verification_verified_and_failed(suite: Deployment) -> None:
    a, b, c_ = await suite.register(), await suite.register(), await suite.register()
    asked = await _ask(suite, a, b)
    incoming = await suite.identity.ListIncomingVerificationRequests(
        idn.ListIncomingVerificationRequestsRequest(), metadata=b.metadata
    )
    assert asked.name in [r.name for r in incoming.verification_requests]
    await _answer(suite, b, asked.name, f"liveness-{uuid.uuid4()}")
    seen = await suite.identity.GetVerificationRequest(
        idn.GetVerificationRequestRequest(name=asked.name), metadata=a.metadata
    )
    assert seen.verification_request.state == idn.VERIFICATION_STATE_VERIFIED
    assert seen.verification_request.target_identity.masked_name == b.name[0] + "*" * (
        len(b.name) - 1
    )

    # Whoever holds C's phone is not C: every face capture fails.
    tokens = [f"someone-else-{uuid.uuid4()}" for _ in range(3)]
    await suite.control.SeedFaceOutcomes(
        simulator_pb2.SeedFaceOutcomesRequest(
            outcomes=[
                face_pb2.FaceOutcomeSeed(face_token=t, outcome=face_pb2.FACE_OUTCOME_FAIL)
                for t in tokens
            ]
        )
    )
    second = await _ask(suite, a, c_)
    for token in tokens:
        await _answer(suite, c_, second.name, token)
    ended = await suite.identity.GetVerificationRequest(
        idn.GetVerificationRequestRequest(name=second.name), metadata=a.metadata
    )
    assert ended.verification_request.state == idn.VERIFICATION_STATE_FAILED
    assert not ended.verification_request.HasField("target_identity")


async def test_an_elderly_users_guardian_is_warned_too(suite: Deployment) -> None:
    guardian_phone = new_phone()
    elder = await suite.register(protected=True, guardians=[guardian_phone])
    inbox = WarningInbox(suite, elder)
    analyst = await suite.key(gw.ROLE_ANALYST, "analyst-7")
    fraudster = new_phone()
    try:
        await suite.risk.UpsertIndicator(
            rk.UpsertIndicatorRequest(
                request_id=str(uuid.uuid4()),
                indicator=phone_indicator(fraudster),
                # An analyst asserts as themselves: citizen reports come from report intake.
                assertion=rk.Assertion(
                    source_type=rk.SOURCE_TYPE_ANALYST,
                    source_id="analyst-7",
                    level=c.RISK_LEVEL_MEDIUM,
                    reason="corroborated",
                ),
            ),
            metadata=analyst,
        )
        carrier = await suite.key(gw.ROLE_CARRIER, "carrier-cucc")

        async def warned() -> bool:
            decision = await screen(suite, carrier, fraudster, elder.phone)
            return decision.action == gw.SCREEN_ACTION_WARN

        await eventually(warned)
        warning = await inbox.about(fraudster)
        assert warning.user_id == elder.user_id

        # The guardian (亲情号码) is warned with the elder, by SMS, and it is delivered.
        async def guardian_delivered() -> wn.Delivery | None:
            listed = await suite.warning.ListWarnings(
                wn.ListWarningsRequest(user_id=elder.user_id), metadata=analyst
            )
            return next(
                (
                    d
                    for w in listed.warnings
                    for d in w.deliveries
                    if d.guardian and d.state == wn.DELIVERY_STATE_DELIVERED
                ),
                None,
            )

        delivery = await eventually(guardian_delivered)
        assert delivery.channel in (wn.CHANNEL_SMS, wn.CHANNEL_FLASH_SMS)
        assert delivery.masked_phone_number[-4:] == guardian_phone[-4:]
    finally:
        inbox.close()


async def test_the_gateway_refuses_what_it_must(suite: Deployment) -> None:
    alice, bob = await suite.register(), await suite.register()
    check = rk.CheckIndicatorRequest(indicator=phone_indicator("96110"))
    for bad in [
        (),
        (("authorization", "Bearer afk_0000000000000000_nope"),),
        (("authorization", "Basic x"),),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await suite.risk.CheckIndicator(check, metadata=bad)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # A revoked key stops working.
    created = await suite.admin.CreateApiKey(
        gw.CreateApiKeyRequest(role=gw.ROLE_BANK, subject="bank-abc"),
        metadata=(("authorization", f"Bearer {suite.admin_key}"),),
    )
    bank = (("authorization", f"Bearer {created.api_key}"),)
    assert (await suite.risk.CheckIndicator(check, metadata=bank)).verdict.verified
    await suite.admin.RevokeApiKey(
        gw.RevokeApiKeyRequest(key_id=created.key.key_id),
        metadata=(("authorization", f"Bearer {suite.admin_key}"),),
    )

    async def refused() -> bool:
        try:
            await suite.risk.CheckIndicator(check, metadata=bank)
        except grpc.aio.AioRpcError as exc:
            return exc.code() == grpc.StatusCode.UNAUTHENTICATED
        return False

    await eventually(refused, timeout=10)
    # Only an officer's key serves a region, and only a real one (GB/T 2260).
    for role, region in (
        (gw.ROLE_BANK, "440300"),
        (gw.ROLE_ANALYST, "44030"),
        (gw.ROLE_ANALYST, "990000"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await suite.admin.CreateApiKey(
                gw.CreateApiKeyRequest(role=role, subject="officer-x", region=region),  # type: ignore[arg-type]
                metadata=(("authorization", f"Bearer {suite.admin_key}"),),
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "region" in (err.value.details() or "")
    # Wrong role.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await suite.report.ReviewReport(rp.ReviewReportRequest(), metadata=alice.metadata)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # Another citizen's data.
    mine = await report_number(suite, alice, new_phone())
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await suite.report.GetReport(rp.GetReportRequest(name=mine.name), metadata=bob.metadata)
    assert err.value.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await suite.identity.CountPhoneCards(
            idn.CountPhoneCardsRequest(user_id=alice.user_id), metadata=bob.metadata
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    stream = suite.warning.StreamWarnings(
        wn.StreamWarningsRequest(user_id=alice.user_id), metadata=bob.metadata
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stream.read()
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # A flood: RESOURCE_EXHAUSTED with the time to wait.
    flooder = await suite.key(gw.ROLE_CITIZEN)
    results = await asyncio.gather(
        *(suite.risk.CheckIndicator(check, metadata=flooder) for _ in range(400)),
        return_exceptions=True,
    )
    limited = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert limited
    assert {e.code() for e in limited} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    if suite.processes is None:
        return
    # The report service goes down: look-ups still answer, reports fail fast with UNAVAILABLE.
    suite.processes.terminate("report")
    try:
        assert (await suite.risk.CheckIndicator(check, metadata=alice.metadata)).verdict.verified
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await report_number(suite, alice, new_phone())
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        print(f"\nreport down: UNAVAILABLE after {(time.monotonic() - started) * 1000:.0f} ms")
        carrier = await suite.key(gw.ROLE_CARRIER, "carrier-ctcc")
        assert (await screen(suite, carrier, "96110", alice.phone)).action == gw.SCREEN_ACTION_LABEL
    finally:
        suite.processes.start("report")
        await suite.processes.wait("report")


async def test_the_composites_answer_for_banks_citizens_and_analysts(suite: Deployment) -> None:
    import random

    citizen = await suite.register()
    analyst = await suite.key(gw.ROLE_ANALYST, "analyst-9")
    bank = await suite.key(gw.ROLE_BANK, "bank-icbc")
    mule = card(random.Random(9))
    for kind, value in [
        (c.INDICATOR_KIND_BANK_ACCOUNT, mule),
        (c.INDICATOR_KIND_APP, "com.fake.bank"),
    ]:
        await suite.risk.UpsertIndicator(
            rk.UpsertIndicatorRequest(
                request_id=str(uuid.uuid4()),
                indicator=c.Indicator(kind=kind, value=value),
                assertion=rk.Assertion(source_type=rk.SOURCE_TYPE_ANALYST, source_id="analyst-9",
                                       level=c.RISK_LEVEL_HIGH, reason="mule account"),
            ),
            metadata=analyst,
        )  # fmt: skip
    account = c.Indicator(kind=c.INDICATOR_KIND_BANK_ACCOUNT, value=mule)

    async def payee() -> gw.CheckPayeeResponse | None:
        got = await suite.payee.CheckPayee(
            gw.CheckPayeeRequest(account=account, payee_name="张三"), metadata=bank
        )
        return got if got.verdict.level == c.RISK_LEVEL_HIGH else None

    checked = await eventually(payee)
    assert checked.match != idn.PAYEE_MATCH_UNSPECIFIED  # a name was given: it was compared
    unnamed = await suite.payee.CheckPayee(gw.CheckPayeeRequest(account=account), metadata=bank)
    assert unnamed.match == idn.PAYEE_MATCH_UNSPECIFIED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await suite.payee.CheckPayee(
            gw.CheckPayeeRequest(account=phone_indicator("13800138000")), metadata=bank
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    apps = await eventually(
        lambda: _apps(suite, citizen, [gw.InstalledApp(package_name="com.fake.bank",
                                                        certificate_sha256="ab" * 32),
                                       gw.InstalledApp(package_name="com.good.app")])
    )  # fmt: skip
    assert [v.level for v in apps] == [c.RISK_LEVEL_HIGH, c.RISK_LEVEL_NONE]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await suite.citizen.CheckApps(
            gw.CheckAppsRequest(apps=[gw.InstalledApp(package_name="not a package")]),
            metadata=citizen.metadata,
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    guardian = new_phone()
    updated = await suite.citizen.SetGuardians(
        gw.SetGuardiansRequest(
            protected=True,
            guardian_phone_numbers=[guardian],
            guardian_confirmations=[await suite.guardian_consent(guardian, citizen.metadata)],
        ),
        metadata=citizen.metadata,
    )
    assert list(updated.recipient.guardian_phone_numbers) == [guardian]
    mine = await suite.warning.GetRecipient(wn.GetRecipientRequest(), metadata=citizen.metadata)
    assert mine.recipient.protected
    assert list(mine.recipient.guardian_phone_numbers) == [guardian]

    await until_up(lambda: report_number(suite, citizen, new_phone()))

    async def counted() -> gw.GetDashboardResponse | None:
        got = await suite.analyst.GetDashboard(gw.GetDashboardRequest(), metadata=analyst)
        return got if not got.unavailable and got.reports.total_count >= 1 else None

    dashboard = await eventually(counted)
    assert dashboard.HasField("warnings")


async def _apps(
    suite: Deployment, citizen: Citizen, apps: list[gw.InstalledApp]
) -> list[rk.Verdict] | None:
    got = await suite.citizen.CheckApps(gw.CheckAppsRequest(apps=apps), metadata=citizen.metadata)
    return list(got.verdicts) if got.verdicts[0].level == c.RISK_LEVEL_HIGH else None


async def until_up(call: Callable[[], Awaitable[object]]) -> None:
    """Retry while a service is still coming back (an earlier test restarts report)."""

    async def done() -> bool:
        try:
            await call()
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            return False
        return True

    await eventually(done)


Samples = dict[str, list[tuple[dict[str, str], float]]]


async def _scrape(address: str) -> Samples:
    """Every sample a process's /metrics endpoint shows, by metric name."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    def read() -> str:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as reply:
            return str(reply.read().decode())

    found: Samples = {}
    for family in text_string_to_metric_families(await asyncio.to_thread(read)):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


def _total(
    samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str
) -> float:
    return sum(
        value
        for found, value in samples.get(name, [])
        if all(found.get(k) == v for k, v in labels.items())
    )


async def test_the_scenarios_above_show_in_every_process_metrics(suite: Deployment) -> None:
    """Runs last: what the scenarios did shows in the series, and no label holds a
    personal value (a phone number, an ID number, a card number)."""
    if suite.suite is None:
        pytest.skip("the metrics ports of a remote deployment are not known here")
    import re

    scraped = {name: await _scrape(address) for name, address in suite.suite.metrics_addrs.items()}
    # The report service was restarted by a scenario (its counters began again): the
    # gateway, which was not, counts the calls that went through it.
    report, gateway = scraped["report"], scraped["gateway"]
    submitted = "/antifraud.report.v1.ReportService/SubmitReport"
    filed = "/antifraud.report.v1.ReportService/FileCase"
    for method in (submitted, filed):
        assert _total(gateway, "antifraud_rpcs_handled_total", method=method, code="OK") >= 1
        assert _total(gateway, "antifraud_rpc_duration_seconds_count", method=method) >= 1
    assert "antifraud_outbox_backlog_events" in report
    assert _total(gateway, "antifraud_auth_refusals_total", reason="permission_denied") >= 1
    assert _total(gateway, "antifraud_auth_refusals_total", reason="rate_limited") >= 1
    risks = [scraped[n] for n in scraped if n.startswith("risk")]
    assert any(_total(r, "antifraud_risk_index_indicators") > 0 for r in risks)
    personal = re.compile(r"\+?86\d{11}|\b1[3-9]\d{9}\b|\d{17}[\dXx]|\b\d{16,19}\b")
    for name, samples in scraped.items():
        for metric, found in samples.items():
            for labels, _ in found:
                for value in labels.values():
                    assert not personal.search(value), f"{name} {metric} label {value!r}"
