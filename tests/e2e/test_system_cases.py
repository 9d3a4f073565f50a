"""Cases a victim can follow, review per indicator and the payee decision, through the
gateway only, with every process running as deployed (tests/e2e/deployment.py), on each
database.

A filed case's stop-payment reaches the bank simulator, which holds what the account's
balance allows; the victim is pushed the hold and follows the case's status, officer and
replies; officers extend and end the hold and close the case. Banks see only their own
orders. An analyst resolves every report of one number at once from the queue grouped by
indicator. Banks get one pre-payment decision per payee check (allow, warn, hold, block)
and say what they did.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from services.api.antifraud.common.v1 import common_pb2 as c
from services.api.antifraud.gateway.v1 import gateway_pb2 as gw
from services.api.antifraud.identity.v1 import identity_pb2 as idn
from services.api.antifraud.partner.v1 import bank_pb2, simulator_pb2
from services.api.antifraud.report.v1 import report_pb2 as rp
from services.api.antifraud.risk.v1 import risk_pb2 as rk
from services.api.antifraud.warning.v1 import warning_pb2 as wn
from tests.e2e.deployment import (
    SUITE_PARAMS,
    Citizen,
    Deployment,
    deployment,
    eventually,
    new_phone,
)
from tests.factories import card

pytestmark = pytest.mark.slow

Metadata = tuple[tuple[str, str], ...]


@pytest.fixture(scope="module", params=SUITE_PARAMS)
async def suite(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Deployment]:
    data_dir: Path = tmp_path_factory.mktemp(f"cases-{request.param}")
    # One replica each: these tests are about the flow, not about replicas.
    async with deployment(request.param, data_dir, replicas={}) as found:
        yield found


def _ago(minutes: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(datetime.now(UTC) - timedelta(minutes=minutes))
    return stamp


def _icbc_card() -> str:
    rng = random.Random()
    while True:
        number = card(rng)
        if number.startswith("622202"):
            return number


async def _code(call: object) -> grpc.StatusCode:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    raise AssertionError("the call succeeded")


class Inbox:
    """The victim's app on the live stream: notifications as they arrive."""

    def __init__(self, suite: Deployment, citizen: Citizen) -> None:
        self.notifications: list[wn.Notification] = []
        self.call = suite.warning.StreamWarnings(
            wn.StreamWarningsRequest(user_id=citizen.user_id), metadata=citizen.metadata
        )
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for event in self.call:
            if event.HasField("notification"):
                self.notifications.append(event.notification)

    def close(self) -> None:
        self.call.cancel()
        self.task.cancel()


async def test_a_case_is_held_pushed_followed_released_and_closed(suite: Deployment) -> None:
    victim = await suite.register()
    stranger = await suite.register()
    analyst = await suite.key(gw.ROLE_ANALYST, "officer-li")
    icbc = await suite.key(gw.ROLE_BANK, "bank-icbc")
    ccb = await suite.key(gw.ROLE_BANK, "bank-ccb")
    payee = _icbc_card()
    # The fraudster's account holds only 12,000 of the 30,000 sent to it.
    await suite.control.SeedCards(
        simulator_pb2.SeedCardsRequest(
            simulator="bank-icbc",
            account_holders=[
                bank_pb2.AccountHolder(
                    account=c.Indicator(kind=c.INDICATOR_KIND_BANK_ACCOUNT, value=payee),
                    holder_name="赵六",
                    balance=c.Money(currency_code="CNY", units=12_000),
                )
            ],
        )
    )
    inbox = Inbox(suite, victim)
    try:
        filed_at = time.monotonic()
        filed = await suite.report.FileCase(
            rp.FileCaseRequest(
                request_id=str(uuid.uuid4()),
                case=rp.Case(
                    description="假冒客服以退款为由让我转账",
                    category=c.FRAUD_CATEGORY_FAKE_CUSTOMER_SERVICE,
                    amount_lost=c.Money(currency_code="CNY", units=30_000),
                    incident_time=_ago(20),
                    payees=[
                        rp.Payee(
                            account=c.Indicator(kind=c.INDICATOR_KIND_BANK_ACCOUNT, value=payee),
                            amount=c.Money(currency_code="CNY", units=30_000),
                            transaction_references=["TX20261130-0001"],
                        )
                    ],
                ),
            ),
            metadata=victim.metadata,
        )
        name = filed.case.name
        assert filed.case.status in (rp.CASE_STATUS_FILED, rp.CASE_STATUS_ORDERS_SENT)

        # The bank holds what is there; the victim is pushed and sees the case HELD.
        async def pushed() -> wn.Notification | None:
            return next(
                (
                    n
                    for n in inbox.notifications
                    if n.purpose == wn.NOTIFICATION_PURPOSE_CASE_UPDATE and name in n.text
                ),
                None,
            )

        notice = await eventually(pushed)
        print(f"\ncase filed -> victim pushed the hold: {time.monotonic() - filed_at:.2f} s")
        assert "12000.00 CNY" in notice.text
        assert payee not in notice.text

        # The board moves on its own (the report service follows the banks' answers), before
        # anyone opens the case.
        async def on_board() -> rp.Case | None:
            board = await suite.report.ListCases(
                rp.ListCasesRequest(statuses=[rp.CASE_STATUS_HELD], page_size=500),
                metadata=analyst,
            )
            return next((x for x in board.cases if x.name == name), None)

        await eventually(on_board)
        print(
            f"case filed -> HELD on the board without a read: {time.monotonic() - filed_at:.2f} s"
        )
        case = (
            await suite.report.GetCase(rp.GetCaseRequest(name=name), metadata=victim.metadata)
        ).case
        assert case.status == rp.CASE_STATUS_HELD
        assert case.held_amount.units == 12_000
        assert case.payees[0].held_amount.units == 12_000
        assert case.payees[0].stop_payment_status == rp.STOP_PAYMENT_STATUS_ACKNOWLEDGED
        assert case.payees[0].HasField("hold_expire_time")
        assert [e.type for e in case.events][:1] == [rp.CASE_EVENT_TYPE_FILED]
        assert any(e.status == rp.CASE_STATUS_HELD for e in case.events)

        # The bank holding the account sees the order, with what a real stop-payment needs;
        # another bank does not see it at all.
        order_name = case.payees[0].bank_order
        order = (
            await suite.warning.GetBankOrder(wn.GetBankOrderRequest(name=order_name), metadata=icbc)
        ).bank_order
        assert list(order.transaction_references) == ["TX20261130-0001"]
        assert order.legal_instrument_id.startswith("ZF-")
        assert order.held_amount.units == 12_000
        assert (
            await _code(
                suite.warning.GetBankOrder(wn.GetBankOrderRequest(name=order_name), metadata=ccb)
            )
            == grpc.StatusCode.NOT_FOUND
        )
        theirs = await suite.warning.ListBankOrders(
            wn.ListBankOrdersRequest(case_id=name.removeprefix("cases/")), metadata=ccb
        )
        assert not theirs.bank_orders

        # The officer takes the case and answers the victim.
        assigned = await suite.report.AssignCase(rp.AssignCaseRequest(name=name), metadata=analyst)
        officer = assigned.case.officer
        assert officer.endswith("officer-li")
        mine = await suite.report.ListCases(rp.ListCasesRequest(officer=officer), metadata=analyst)
        assert [x.name for x in mine.cases] == [name]
        await suite.report.ReplyToCase(
            rp.ReplyToCaseRequest(
                request_id=str(uuid.uuid4()), name=name, text="银行已止付部分资金，请保持电话畅通。"
            ),
            metadata=analyst,
        )
        seen = (
            await suite.report.GetCase(rp.GetCaseRequest(name=name), metadata=victim.metadata)
        ).case
        assert seen.officer == officer
        replies = [e for e in seen.events if e.type == rp.CASE_EVENT_TYPE_REPLY]
        assert [r.text for r in replies] == ["银行已止付部分资金，请保持电话畅通。"]

        # Money still held: the case cannot be closed yet.
        assert (
            await _code(
                suite.report.CloseCase(
                    rp.CloseCaseRequest(request_id=str(uuid.uuid4()), name=name, reason="结案"),
                    metadata=analyst,
                )
            )
            == grpc.StatusCode.FAILED_PRECONDITION
        )

        # The officer extends the hold, then has the funds returned to the victim.
        extended = await suite.warning.ExtendBankOrder(
            wn.ExtendBankOrderRequest(
                request_id=str(uuid.uuid4()), name=order_name, legal_instrument_id="YQ-2026-0042"
            ),
            metadata=analyst,
        )
        assert extended.bank_order.legal_instrument_id == "YQ-2026-0042"
        # The status query: the bank says the same.
        asked = await suite.warning.RefreshBankOrder(
            wn.RefreshBankOrderRequest(name=order_name), metadata=analyst
        )
        assert asked.bank_order.state == wn.BANK_ORDER_STATE_ACKNOWLEDGED
        assert asked.bank_order.hold_expire_time == extended.bank_order.hold_expire_time
        assert (
            extended.bank_order.hold_expire_time.ToDatetime() > order.hold_expire_time.ToDatetime()
        )
        release = wn.ReleaseBankOrderRequest(
            request_id=str(uuid.uuid4()),
            name=order_name,
            disposition=wn.HOLD_DISPOSITION_RETURN_TO_VICTIM,
            legal_instrument_id="FH-2026-0042",
            reason="court order: return to the victim",
        )
        returned = await suite.warning.ReleaseBankOrder(release, metadata=analyst)
        assert returned.bank_order.state == wn.BANK_ORDER_STATE_RETURNED
        again = await suite.warning.ReleaseBankOrder(release, metadata=analyst)
        assert again.bank_order.state == wn.BANK_ORDER_STATE_RETURNED
        # Nothing is held any more: a release to the holder has nothing to act on.
        assert (
            await _code(
                suite.warning.ReleaseBankOrder(
                    wn.ReleaseBankOrderRequest(
                        request_id=str(uuid.uuid4()),
                        name=order_name,
                        disposition=wn.HOLD_DISPOSITION_RELEASE,
                        legal_instrument_id="JC-2026-0001",
                        reason="lift",
                    ),
                    metadata=analyst,
                )
            )
            == grpc.StatusCode.FAILED_PRECONDITION
        )

        async def transferred() -> rp.Case | None:
            got = await suite.report.GetCase(rp.GetCaseRequest(name=name), metadata=victim.metadata)
            return got.case if got.case.status == rp.CASE_STATUS_TRANSFERRED else None

        moved = await eventually(transferred)
        assert moved.payees[0].stop_payment_status == rp.STOP_PAYMENT_STATUS_RETURNED
        assert moved.held_amount.units == 0

        closed = await suite.report.CloseCase(
            rp.CloseCaseRequest(request_id=str(uuid.uuid4()), name=name, reason="资金已返还，结案"),
            metadata=analyst,
        )
        assert closed.case.status == rp.CASE_STATUS_CLOSED
        final = (
            await suite.report.GetCase(rp.GetCaseRequest(name=name), metadata=victim.metadata)
        ).case
        assert [e.type for e in final.events][-1] == rp.CASE_EVENT_TYPE_CLOSED
        assert final.events[-1].text == "资金已返还，结案"

        # Hostile callers.
        assert (
            await _code(
                suite.report.GetCase(rp.GetCaseRequest(name=name), metadata=stranger.metadata)
            )
            == grpc.StatusCode.NOT_FOUND
        )
        assert (
            await _code(
                suite.report.AssignCase(rp.AssignCaseRequest(name=name), metadata=victim.metadata)
            )
            == grpc.StatusCode.PERMISSION_DENIED
        )
        assert (
            await _code(
                suite.warning.ExtendBankOrder(
                    wn.ExtendBankOrderRequest(
                        request_id=str(uuid.uuid4()), name=order_name, legal_instrument_id="X-1"
                    ),
                    metadata=icbc,
                )
            )
            == grpc.StatusCode.PERMISSION_DENIED
        )
        bad_inputs = [
            suite.report.ListCases(rp.ListCasesRequest(statuses=[99]), metadata=analyst),  # type: ignore[list-item]
            suite.report.ReplyToCase(
                rp.ReplyToCaseRequest(request_id=str(uuid.uuid4()), name=name, text=""),
                metadata=analyst,
            ),
            suite.warning.ReleaseBankOrder(
                wn.ReleaseBankOrderRequest(
                    request_id=str(uuid.uuid4()),
                    name=order_name,
                    legal_instrument_id="has spaces in it",
                    reason="x",
                ),
                metadata=analyst,
            ),
            suite.report.FileCase(
                rp.FileCaseRequest(
                    request_id=str(uuid.uuid4()),
                    case=rp.Case(
                        description="x",
                        category=c.FRAUD_CATEGORY_FAKE_SHOPPING,
                        amount_lost=c.Money(currency_code="CNY", units=10),
                        incident_time=_ago(5),
                        payees=[
                            rp.Payee(
                                account=c.Indicator(
                                    kind=c.INDICATOR_KIND_BANK_ACCOUNT, value=payee
                                ),
                                transaction_references=["T" * 65],
                            )
                        ],
                    ),
                ),
                metadata=victim.metadata,
            ),
        ]
        for call in bad_inputs:
            assert await _code(call) == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        inbox.close()


async def _report(suite: Deployment, reporter: Citizen, number: str) -> rp.Report:
    response = await suite.report.SubmitReport(
        rp.SubmitReportRequest(
            request_id=str(uuid.uuid4()),
            report=rp.Report(
                kind=rp.REPORT_KIND_FRAUD_CALL,
                indicators=[c.Indicator(kind=c.INDICATOR_KIND_PHONE_NUMBER, value=number)],
                description="自称公安说我涉嫌洗钱",
                category=c.FRAUD_CATEGORY_IMPERSONATING_OFFICIALS,
            ),
        ),
        metadata=reporter.metadata,
    )
    return response.report


async def test_an_analyst_resolves_every_report_of_a_number_at_once(suite: Deployment) -> None:
    analyst = await suite.key(gw.ROLE_ANALYST, "reviewer-wu")
    number = new_phone()
    reporters = [await suite.register() for _ in range(3)]
    filed = [await _report(suite, who, number) for who in reporters]
    # A second report of the same number by the first reporter is a duplicate.
    filed.append(await _report(suite, reporters[0], number))
    indicator = c.Indicator(kind=c.INDICATOR_KIND_PHONE_NUMBER, value=number)

    queue = await suite.report.ListReviewIndicators(
        rp.ListReviewIndicatorsRequest(kind=c.INDICATOR_KIND_PHONE_NUMBER, page_size=500),
        metadata=analyst,
    )
    entry = next(e for e in queue.review_indicators if e.indicator.indicator.value == number)
    assert entry.open_report_count == 3
    assert entry.distinct_reporter_count == 3
    assert entry.indicator.standing == rp.INDICATOR_STANDING_CORROBORATED

    # One report confirmed on its own first (as before), then the value rejected as a whole.
    await suite.report.ReviewReport(
        rp.ReviewReportRequest(
            request_id=str(uuid.uuid4()),
            name=filed[1].name,
            decision=rp.REVIEW_DECISION_CONFIRM,
            reason="looked right at first",
        ),
        metadata=analyst,
    )
    request = rp.ReviewIndicatorReportsRequest(
        request_id=str(uuid.uuid4()),
        indicator=indicator,
        decision=rp.REVIEW_DECISION_REJECT,
        reason="号码为银行官方客服，误报",
    )
    done = await suite.report.ReviewIndicatorReports(request, metadata=analyst)
    assert done.resolved_report_count == 4
    assert done.reporter_count == 3
    assert done.indicator.standing == rp.INDICATOR_STANDING_REJECTED
    repeat = await suite.report.ReviewIndicatorReports(request, metadata=analyst)
    assert repeat == done

    # Every reporter sees the same outcome and the reason.
    for who, report in zip([*reporters, reporters[0]], filed, strict=True):
        got = (
            await suite.report.GetReport(
                rp.GetReportRequest(name=report.name), metadata=who.metadata
            )
        ).report
        assert got.status == rp.REPORT_STATUS_REJECTED
        assert got.resolution.reason == "号码为银行官方客服，误报"

    # The value has left the queue.
    queue = await suite.report.ListReviewIndicators(
        rp.ListReviewIndicatorsRequest(page_size=500), metadata=analyst
    )
    assert number not in [e.indicator.indicator.value for e in queue.review_indicators]

    # Hostile callers and bad input.
    assert (
        await _code(suite.report.ReviewIndicatorReports(request, metadata=reporters[0].metadata))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    unknown = rp.ReviewIndicatorReportsRequest(
        request_id=str(uuid.uuid4()),
        indicator=c.Indicator(kind=c.INDICATOR_KIND_PHONE_NUMBER, value=new_phone()),
        decision=rp.REVIEW_DECISION_CONFIRM,
        reason="x",
    )
    assert (
        await _code(suite.report.ReviewIndicatorReports(unknown, metadata=analyst))
        == grpc.StatusCode.NOT_FOUND
    )
    for bad in (
        rp.ReviewIndicatorReportsRequest(
            request_id=str(uuid.uuid4()), indicator=indicator, reason="x"
        ),
        rp.ReviewIndicatorReportsRequest(
            request_id=str(uuid.uuid4()),
            indicator=c.Indicator(kind=c.INDICATOR_KIND_PHONE_NUMBER, value="not a number"),
            decision=rp.REVIEW_DECISION_REJECT,
            reason="x",
        ),
    ):
        assert (
            await _code(suite.report.ReviewIndicatorReports(bad, metadata=analyst))
            == grpc.StatusCode.INVALID_ARGUMENT
        )
    assert (
        await _code(
            suite.report.ListReviewIndicators(
                rp.ListReviewIndicatorsRequest(page_token="garbage"), metadata=analyst
            )
        )
        == grpc.StatusCode.INVALID_ARGUMENT
    )


async def _list(suite: Deployment, analyst: Metadata, kind: int, value: str, level: int) -> None:
    await suite.risk.UpsertIndicator(
        rk.UpsertIndicatorRequest(
            request_id=str(uuid.uuid4()),
            indicator=c.Indicator(kind=kind, value=value),  # type: ignore[arg-type]
            assertion=rk.Assertion(
                source_type=rk.SOURCE_TYPE_ANALYST,
                source_id="analyst-zhou",
                level=level,  # type: ignore[arg-type]
                reason="system test",
            ),
        ),
        metadata=analyst,
    )


async def test_banks_get_one_decision_per_payment_and_say_what_they_did(
    suite: Deployment,
) -> None:
    analyst = await suite.key(gw.ROLE_ANALYST, "analyst-zhou")
    icbc = await suite.key(gw.ROLE_BANK, "bank-icbc")
    ccb = await suite.key(gw.ROLE_BANK, "bank-ccb")
    carrier = await suite.key(gw.ROLE_CARRIER, "carrier-cmcc")
    clean, corroborated, mule = _icbc_card(), _icbc_card(), _icbc_card()
    await suite.control.SeedCards(
        simulator_pb2.SeedCardsRequest(
            simulator="bank-icbc",
            account_holders=[
                bank_pb2.AccountHolder(
                    account=c.Indicator(kind=c.INDICATOR_KIND_BANK_ACCOUNT, value=value),
                    holder_name="王五",
                )
                for value in (clean, corroborated, mule)
            ],
        )
    )
    await _list(suite, analyst, c.INDICATOR_KIND_BANK_ACCOUNT, corroborated, c.RISK_LEVEL_MEDIUM)
    await _list(suite, analyst, c.INDICATOR_KIND_BANK_ACCOUNT, mule, c.RISK_LEVEL_HIGH)

    async def check(value: str, name: str = "王五", payer: str = "") -> gw.CheckPayeeResponse:
        return await suite.payee.CheckPayee(
            gw.CheckPayeeRequest(
                account=c.Indicator(kind=c.INDICATOR_KIND_BANK_ACCOUNT, value=value),
                payee_name=name,
                payer_phone_number=payer,
            ),
            metadata=icbc,
        )

    allowed = await check(clean)
    assert (allowed.action, list(allowed.reasons)) == (idn.PAYEE_ACTION_ALLOW, [])
    assert allowed.match == idn.PAYEE_MATCH_MATCH
    warned = await check(clean, name="李四")
    assert warned.action == idn.PAYEE_ACTION_WARN
    assert list(warned.reasons) == [idn.PAYEE_REASON_NAME_MISMATCH]
    held = await check(corroborated)
    assert held.action == idn.PAYEE_ACTION_HOLD
    assert list(held.reasons) == [idn.PAYEE_REASON_ACCOUNT_MEDIUM_RISK]
    assert held.cooling_off.ToTimedelta() == timedelta(hours=24)
    blocked = await check(mule)
    assert blocked.action == idn.PAYEE_ACTION_BLOCK
    assert idn.PAYEE_REASON_ACCOUNT_HIGH_RISK in blocked.reasons

    # A payer who was just called by a number listed at HIGH: held only once they consent.
    payer = await suite.register()
    fraudster = new_phone()
    await _list(suite, analyst, c.INDICATOR_KIND_PHONE_NUMBER, fraudster, c.RISK_LEVEL_HIGH)
    await suite.warning.RecordContactEvents(
        wn.RecordContactEventsRequest(
            events=[
                wn.ContactEvent(
                    caller=fraudster,
                    callee=payer.phone,
                    time=_ago(3),
                    kind=wn.CONTACT_KIND_CALL,
                    caller_level=c.RISK_LEVEL_HIGH,
                )
            ]
        ),
        metadata=carrier,
    )
    assert (await check(clean, payer=payer.phone)).action == idn.PAYEE_ACTION_ALLOW
    await suite.identity.SetPayeeCheckConsent(
        idn.SetPayeeCheckConsentRequest(user_id=payer.user_id, consent=True),
        metadata=payer.metadata,
    )

    async def contact_held() -> gw.CheckPayeeResponse | None:
        got = await check(clean, payer=payer.phone)
        return got if got.action == idn.PAYEE_ACTION_HOLD else None

    cooled = await eventually(contact_held)
    assert list(cooled.reasons) == [idn.PAYEE_REASON_PAYER_RECENT_RISKY_CONTACT]
    assert cooled.cooling_off.ToTimedelta() == timedelta(minutes=30)

    # The bank says what it did; outcomes are counted.
    ack = await suite.identity.AcknowledgePayeeDecision(
        idn.AcknowledgePayeeDecisionRequest(name=cooled.decision, outcome=idn.PAYEE_OUTCOME_HELD),
        metadata=icbc,
    )
    assert ack.decision.outcome == idn.PAYEE_OUTCOME_HELD
    again = await suite.identity.AcknowledgePayeeDecision(
        idn.AcknowledgePayeeDecisionRequest(name=cooled.decision, outcome=idn.PAYEE_OUTCOME_HELD),
        metadata=icbc,
    )
    assert again.decision.acknowledge_time == ack.decision.acknowledge_time
    await suite.identity.AcknowledgePayeeDecision(
        idn.AcknowledgePayeeDecisionRequest(
            name=warned.decision, outcome=idn.PAYEE_OUTCOME_CANCELLED_BY_PAYER
        ),
        metadata=icbc,
    )
    stats = await suite.identity.GetPayeeDecisionStats(
        idn.GetPayeeDecisionStatsRequest(), metadata=analyst
    )
    counted = {(x.action, x.outcome): x.count for x in stats.counts}
    assert counted[(idn.PAYEE_ACTION_HOLD, idn.PAYEE_OUTCOME_HELD)] >= 1
    assert counted[(idn.PAYEE_ACTION_WARN, idn.PAYEE_OUTCOME_CANCELLED_BY_PAYER)] >= 1
    assert counted[(idn.PAYEE_ACTION_BLOCK, idn.PAYEE_OUTCOME_UNSPECIFIED)] >= 1

    # Hostile callers and bad input.
    ack_other = idn.AcknowledgePayeeDecisionRequest(
        name=blocked.decision, outcome=idn.PAYEE_OUTCOME_BLOCKED
    )
    assert (
        await _code(suite.identity.AcknowledgePayeeDecision(ack_other, metadata=ccb))
        == grpc.StatusCode.NOT_FOUND
    )
    assert (
        await _code(
            suite.identity.AcknowledgePayeeDecision(
                idn.AcknowledgePayeeDecisionRequest(
                    name=cooled.decision, outcome=idn.PAYEE_OUTCOME_PAID
                ),
                metadata=icbc,
            )
        )
        == grpc.StatusCode.FAILED_PRECONDITION
    )
    assert (
        await _code(
            suite.identity.SetPayeeCheckConsent(
                idn.SetPayeeCheckConsentRequest(user_id=payer.user_id, consent=True),
                metadata=(await suite.register()).metadata,
            )
        )
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert (
        await _code(
            suite.identity.GetPayeeDecisionStats(idn.GetPayeeDecisionStatsRequest(), metadata=icbc)
        )
        == grpc.StatusCode.PERMISSION_DENIED
    )
    for bad in (
        suite.identity.AcknowledgePayeeDecision(
            idn.AcknowledgePayeeDecisionRequest(name="payeeDecisions/nope", outcome=1),  # type: ignore[arg-type]
            metadata=icbc,
        ),
        suite.identity.AcknowledgePayeeDecision(
            idn.AcknowledgePayeeDecisionRequest(name=blocked.decision), metadata=icbc
        ),
        suite.payee.CheckPayee(
            gw.CheckPayeeRequest(
                account=c.Indicator(kind=c.INDICATOR_KIND_BANK_ACCOUNT, value=clean),
                payer_phone_number="not a phone",
            ),
            metadata=icbc,
        ),
    ):
        assert await _code(bad) == grpc.StatusCode.INVALID_ARGUMENT
