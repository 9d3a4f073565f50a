"""The warning service on real sockets, with the partner simulators: dispatch through every
channel, the app stream, notifications, bank orders, work queues, contact events, receipts,
statistics and hostile input. ``warning_stack`` is also used by the other warning e2e tests."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.partner.v1 import simulator_pb2 as sim
from services.api.antifraud.warning.v1 import warning_pb2 as pb
from services.api.antifraud.warning.v1 import warning_pb2_grpc
from services.common.config import ServerSettings
from services.common.errors import field_violations
from services.common.server import RunningServer
from services.partners.bootstrap import build_partners
from services.partners.directory import SIMULATORS, PartnerClients
from services.partners.domain.behavior import Behavior
from services.partners.domain.cards import luhn_check_digit
from services.warning.adapters.directory import PartnerDirectory
from services.warning.bootstrap import WarningComponent, build
from services.warning.settings import WarningSettings
from tests import harness
from tests.harness import serving

T = TypeVar("T")
PHONE = common_pb2.INDICATOR_KIND_PHONE_NUMBER
FRAUD_NUMBER = common_pb2.Indicator(kind=PHONE, value="+8613912345678")

FAST = WarningSettings(
    follow_risk=False,
    sms_poll_seconds=0.05,
    stream_poll_seconds=0.2,
    lease=timedelta(seconds=3),
)


@dataclass
class Stack:
    warning: WarningComponent
    running: RunningServer
    stub: warning_pb2_grpc.WarningServiceStub
    partners: PartnerClients
    overrides: dict[str, str]  # partner name -> address


def partner_settings(name: str) -> ServerSettings:
    return ServerSettings(name, "127.0.0.1:0", grace_seconds=0.2)


@asynccontextmanager
async def warning_stack(
    url: str,
    schema: str | None,
    *,
    settings: WarningSettings = FAST,
    behavior: Behavior | None = None,
    risk_target: str | None = None,
) -> AsyncIterator[Stack]:
    """The partner simulators and a warning service wired to them, each on a free port."""
    fleet = build_partners(settings_for=partner_settings, behavior=behavior or Behavior())
    async with serving(fleet) as fleet_running:
        overrides = {name: fleet.address(name) for name in SIMULATORS}
        overrides["partners"] = fleet_running.address
        component = build(
            url=url,
            schema=schema,
            settings=settings,
            directory=PartnerDirectory(overrides),
            risk_target=risk_target,
        )
        async with (
            serving(component) as running,
            PartnerClients(overrides) as partners,
            harness.channel(running.address) as channel,
        ):
            yield Stack(
                component,
                running,
                warning_pb2_grpc.WarningServiceStub(channel),
                partners,
                overrides,
            )


@pytest.fixture
async def stack(db_target: tuple[str, str | None]) -> AsyncIterator[Stack]:
    url, schema = db_target
    async with warning_stack(url, schema) as found:
        yield found


async def eventually(probe: Callable[[], Awaitable[T | None]], timeout: float = 30) -> T:
    """Poll an async probe until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"not reached within {timeout}s; last probe: {last!r}")


def rid() -> str:
    return str(uuid.uuid4())


def number(i: int) -> str:
    return f"+86138{i:08d}"


async def rpc_error(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def sms_received(
    partners: PartnerClients, *, include_replays: bool = False
) -> list[sim.ReceivedCall]:
    """Every SendSms the carrier simulators took (each effect once unless replays are asked)."""
    found: list[sim.ReceivedCall] = []
    token = ""
    while True:
        page = await partners.control().ListReceived(
            sim.ListReceivedRequest(
                method="SendSms", include_replays=include_replays, page_size=500, page_token=token
            )
        )
        found.extend(page.received_calls)
        token = page.next_page_token
        if not token:
            return found


def states(warning: pb.Warning) -> dict[tuple[int, bool], int]:
    return {(d.channel, d.guardian): d.state for d in warning.deliveries}


async def dispatch(
    stub: warning_pb2_grpc.WarningServiceStub,
    recipient: pb.RecipientRef,
    level: common_pb2.RiskLevel,
    indicator: common_pb2.Indicator = FRAUD_NUMBER,
) -> pb.DispatchWarningResponse:
    reply: pb.DispatchWarningResponse = await stub.DispatchWarning(
        pb.DispatchWarningRequest(
            request_id=rid(),
            recipient=recipient,
            level=level,
            reason=pb.WarningReason(
                indicator=indicator, category=common_pb2.FRAUD_CATEGORY_IMPERSONATING_OFFICIALS
            ),
        )
    )
    return reply


async def register(
    stub: warning_pb2_grpc.WarningServiceStub,
    user_id: str,
    phone: str,
    guardians: tuple[str, ...] = (),
) -> pb.Recipient:
    reply: pb.UpsertRecipientResponse = await stub.UpsertRecipient(
        pb.UpsertRecipientRequest(
            recipient=pb.Recipient(
                user_id=user_id,
                phone_number=phone,
                protected=bool(guardians),
                guardian_phone_numbers=list(guardians),
            )
        )
    )
    return reply.recipient


class TestDispatch:
    async def test_high_warning_to_a_protected_user_reaches_every_channel(
        self, stack: Stack
    ) -> None:
        await register(stack.stub, "elder-1", "138 0013 8000", ("13012345678", "13312345678"))
        sent = await dispatch(
            stack.stub, pb.RecipientRef(user_id="elder-1"), common_pb2.RISK_LEVEL_HIGH
        )
        warning = sent.warning
        assert not sent.suppressed
        assert warning.user_id == "elder-1"
        assert warning.masked_phone_number == "+86138****8000"
        assert "+86139****5678" in warning.text
        assert Counter((d.channel, d.guardian) for d in warning.deliveries) == {
            (pb.CHANNEL_APP_PUSH, False): 1,
            (pb.CHANNEL_FLASH_SMS, False): 1,
            (pb.CHANNEL_CALL_TASK, False): 1,
            (pb.CHANNEL_HOME_VISIT_TASK, False): 1,
            (pb.CHANNEL_SMS, True): 2,
        }

        async def carrier_done() -> pb.Warning | None:
            found = (await stack.stub.GetWarning(pb.GetWarningRequest(name=warning.name))).warning
            carried = [
                d for d in found.deliveries if d.channel in (pb.CHANNEL_SMS, pb.CHANNEL_FLASH_SMS)
            ]
            return found if all(d.state == pb.DELIVERY_STATE_DELIVERED for d in carried) else None

        done = await eventually(carrier_done)
        assert done.state == pb.WARNING_STATE_DELIVERED
        carriers = {d.carrier for d in done.deliveries if d.carrier}
        assert carriers == {"carrier-cmcc", "carrier-cucc", "carrier-ctcc"}
        received = await sms_received(stack.partners)
        keys = Counter(r.idempotency_key for r in received)
        delivery_ids = {d.name.removeprefix("deliveries/") for d in done.deliveries if d.carrier}
        assert keys == Counter(delivery_ids)  # each SMS sent once, under its delivery id
        by_number = {(r.summary["masked_phone_number"], r.summary["flash"]) for r in received}
        assert by_number == {
            ("+86138****8000", "true"),  # the person: flash
            ("+86130****5678", "false"),  # the guardians: SMS
            ("+86133****5678", "false"),
        }
        assert {r.summary["sender_id"] for r in received} == {"12381"}

    async def test_a_repeat_is_suppressed_and_a_request_id_replays(self, stack: Stack) -> None:
        ref = pb.RecipientRef(phone_number="13800000001")
        first = await dispatch(stack.stub, ref, common_pb2.RISK_LEVEL_MEDIUM)
        second = await dispatch(stack.stub, ref, common_pb2.RISK_LEVEL_LOW)
        assert second.suppressed
        assert second.warning.name == first.warning.name
        request = pb.DispatchWarningRequest(
            request_id=rid(),
            recipient=pb.RecipientRef(phone_number="13800000002"),
            level=common_pb2.RISK_LEVEL_LOW,
            reason=pb.WarningReason(case_id="case-7"),
            text="请勿向陌生账户转账。",
        )
        one = await stack.stub.DispatchWarning(request)
        two = await stack.stub.DispatchWarning(request)
        assert one == two
        assert one.warning.text == "请勿向陌生账户转账。"
        request.text = "another text"
        error = await rpc_error(stack.stub.DispatchWarning(request))
        assert error.code() == grpc.StatusCode.ABORTED

    async def test_lists_filter_and_page(self, stack: Stack) -> None:
        for i in range(5):
            await dispatch(
                stack.stub, pb.RecipientRef(phone_number=number(100 + i)), common_pb2.RISK_LEVEL_LOW
            )
        names: list[str] = []
        token = ""
        while True:
            page = await stack.stub.ListWarnings(
                pb.ListWarningsRequest(indicator=FRAUD_NUMBER, page_size=2, page_token=token)
            )
            names.extend(w.name for w in page.warnings)
            token = page.next_page_token
            if not token:
                break
        assert len(names) == len(set(names)) == 5
        mine = await stack.stub.ListWarnings(pb.ListWarningsRequest(phone_number=number(102)))
        assert [w.masked_phone_number for w in mine.warnings] == ["+86138****0102"]


class TestAppStream:
    async def test_online_user_gets_it_live_and_offline_user_on_reconnect(
        self, stack: Stack
    ) -> None:
        await register(stack.stub, "online", number(201))
        await register(stack.stub, "offline", number(202))
        stream = stack.stub.StreamWarnings(pb.StreamWarningsRequest(user_id="online"))
        try:
            await asyncio.sleep(0.3)  # connected with nothing pending
            sent = await dispatch(
                stack.stub, pb.RecipientRef(phone_number=number(201)), common_pb2.RISK_LEVEL_LOW
            )
            got = await asyncio.wait_for(stream.read(), 10)
            assert got.warning.name == sent.warning.name
            assert got.warning.user_id == "online"
        finally:
            stream.cancel()

        offline = await dispatch(
            stack.stub, pb.RecipientRef(user_id="offline"), common_pb2.RISK_LEVEL_MEDIUM
        )
        reconnect = stack.stub.StreamWarnings(pb.StreamWarningsRequest(user_id="offline"))
        try:
            got = await asyncio.wait_for(reconnect.read(), 10)
            assert got.warning.name == offline.warning.name
        finally:
            reconnect.cancel()

        async def pushed() -> bool:
            w = (
                await stack.stub.GetWarning(pb.GetWarningRequest(name=offline.warning.name))
            ).warning
            return states(w)[(pb.CHANNEL_APP_PUSH, False)] == pb.DELIVERY_STATE_DELIVERED

        await eventually(pushed)
        acked = await stack.stub.AcknowledgeWarning(
            pb.AcknowledgeWarningRequest(name=offline.warning.name, user_id="offline")
        )
        assert acked.warning.state == pb.WARNING_STATE_ACKNOWLEDGED
        assert states(acked.warning)[(pb.CHANNEL_APP_PUSH, False)] == pb.DELIVERY_STATE_ACKNOWLEDGED
        error = await rpc_error(
            stack.stub.AcknowledgeWarning(
                pb.AcknowledgeWarningRequest(name=offline.warning.name, user_id="online")
            )
        )
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED

        # An acknowledged warning is not offered again; an unregistered user has no stream.
        again = stack.stub.StreamWarnings(pb.StreamWarningsRequest(user_id="offline"))
        try:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(again.read(), 0.6)
        finally:
            again.cancel()
        error = await rpc_error(
            stack.stub.StreamWarnings(pb.StreamWarningsRequest(user_id="nobody")).read()
        )
        assert error.code() == grpc.StatusCode.NOT_FOUND

    async def test_notifications_push_to_users_and_text_the_others(self, stack: Stack) -> None:
        await register(stack.stub, "b-user", number(301))
        pushed = await stack.stub.SendNotification(
            pb.SendNotificationRequest(
                request_id=rid(),
                recipient=pb.RecipientRef(phone_number=number(301)),
                text="有人请求核验您的身份，请在应用内完成人脸核验。",
                purpose=pb.NOTIFICATION_PURPOSE_VERIFICATION_REQUEST,
            )
        )
        texted = await stack.stub.SendNotification(
            pb.SendNotificationRequest(
                request_id=rid(),
                recipient=pb.RecipientRef(phone_number=number(302)),
                text="有人请求核验您的身份。",
                purpose=pb.NOTIFICATION_PURPOSE_VERIFICATION_REQUEST,
            )
        )
        assert pushed.notification.delivery.channel == pb.CHANNEL_APP_PUSH
        assert pushed.notification.user_id == "b-user"
        assert texted.notification.delivery.channel == pb.CHANNEL_SMS
        stream = stack.stub.StreamWarnings(pb.StreamWarningsRequest(user_id="b-user"))
        try:
            got = await asyncio.wait_for(stream.read(), 10)
        finally:
            stream.cancel()
        assert got.notification.name == pushed.notification.name
        assert got.notification.purpose == pb.NOTIFICATION_PURPOSE_VERIFICATION_REQUEST

        async def texted_state() -> bool:
            found: pb.GetNotificationResponse = await stack.stub.GetNotification(
                pb.GetNotificationRequest(name=texted.notification.name)
            )
            return found.notification.delivery.state == pb.DELIVERY_STATE_DELIVERED

        await eventually(texted_state)


class TestPartnersMisbehave:
    async def test_a_carrier_failing_half_its_calls_still_delivers_every_sms_once(
        self, stack: Stack
    ) -> None:
        await stack.partners.control().SetBehavior(
            sim.SetBehaviorRequest(
                simulator="carrier-cmcc",
                behavior=sim.Behavior(
                    failure_rate=0.5, delivery_delay_ms=20, delivery_failure_rate=0
                ),
            )
        )
        sent = [
            await dispatch(
                stack.stub, pb.RecipientRef(phone_number=number(400 + i)), common_pb2.RISK_LEVEL_LOW
            )
            for i in range(40)
        ]

        async def all_delivered() -> bool:
            stats: pb.GetWarningStatsResponse = await stack.stub.GetWarningStats(
                pb.GetWarningStatsRequest()
            )
            by_state = {c.state: c.count for c in stats.warnings}
            return by_state.get(pb.WARNING_STATE_DELIVERED, 0) == len(sent)

        await eventually(all_delivered, timeout=90)
        received = await sms_received(stack.partners)
        with_replays = await sms_received(stack.partners, include_replays=True)
        assert len(received) == len(sent)
        assert Counter(r.summary["masked_phone_number"] for r in received) == Counter(
            w.warning.masked_phone_number for w in sent
        )
        assert len(with_replays) >= len(received)  # repeats are answered, never re-sent

    async def test_bank_orders_are_acknowledged_rejected_or_routed(self, stack: Stack) -> None:
        body = "622202" + "1234567890123"[:12]
        icbc_card = body + luhn_check_digit(body)
        unknown = "6288001234567890"
        orders = {}
        for label, account, kind in (
            ("icbc", icbc_card, common_pb2.INDICATOR_KIND_BANK_ACCOUNT),
            ("alipay", "alipay:fraud@example.com", common_pb2.INDICATOR_KIND_PAYMENT_ACCOUNT),
            ("unknown", unknown, common_pb2.INDICATOR_KIND_BANK_ACCOUNT),
        ):
            reply = await stack.stub.CreateBankOrder(
                pb.CreateBankOrderRequest(
                    request_id=rid(),
                    order_type=pb.BANK_ORDER_TYPE_STOP_PAYMENT,
                    account=common_pb2.Indicator(kind=kind, value=account),
                    case_id="case-42",
                    amount=common_pb2.Money(units=5000),
                    reason="受害人报案，紧急止付",
                )
            )
            orders[label] = reply.bank_order
        assert orders["icbc"].bank == "bank-icbc"
        assert orders["unknown"].bank == ""

        async def answered() -> list[pb.BankOrder] | None:
            page = await stack.stub.ListBankOrders(pb.ListBankOrdersRequest(case_id="case-42"))
            found = list(page.bank_orders)
            pending = (pb.BANK_ORDER_STATE_QUEUED, pb.BANK_ORDER_STATE_SENT)
            return found if all(o.state not in pending for o in found) else None

        found = {o.name: o for o in await eventually(answered)}
        icbc = found[orders["icbc"].name]
        assert icbc.state == pb.BANK_ORDER_STATE_ACKNOWLEDGED
        assert icbc.bank_reference
        assert icbc.HasField("answer_time")
        assert found[orders["alipay"].name].state == pb.BANK_ORDER_STATE_ACKNOWLEDGED
        lost = found[orders["unknown"].name]
        assert lost.state == pb.BANK_ORDER_STATE_REJECTED
        assert "no partner bank" in lost.failure_reason
        freeze = await rpc_error(
            stack.stub.CreateBankOrder(
                pb.CreateBankOrderRequest(
                    request_id=rid(),
                    order_type=pb.BANK_ORDER_TYPE_STOP_PAYMENT,
                    account=common_pb2.Indicator(kind=PHONE, value="13800138000"),
                    case_id="case-42",
                    reason="x",
                )
            )
        )
        assert {"account.kind", "amount"} <= {f for f, _ in field_violations(freeze)}


class TestWorkQueues:
    async def test_operators_claim_and_complete_tasks(self, stack: Stack) -> None:
        sent = await dispatch(
            stack.stub, pb.RecipientRef(phone_number=number(500)), common_pb2.RISK_LEVEL_HIGH
        )
        listed = await stack.stub.ListTasks(
            pb.ListTasksRequest(type=pb.TASK_TYPE_HOME_VISIT, state=pb.TASK_STATE_OPEN)
        )
        assert [t.warning for t in listed.tasks] == [sent.warning.name]
        assert listed.tasks[0].phone_number == number(500)
        claimed = await stack.stub.ClaimTask(
            pb.ClaimTaskRequest(operator_id="op-7", type=pb.TASK_TYPE_CALL)
        )
        task = claimed.task
        assert (task.state, task.operator_id) == (pb.TASK_STATE_CLAIMED, "op-7")
        assert task.HasField("lease_expire_time")
        other = await rpc_error(
            stack.stub.CompleteTask(
                pb.CompleteTaskRequest(
                    name=task.name, operator_id="op-8", outcome=pb.TASK_OUTCOME_DISSUADED
                )
            )
        )
        assert other.code() == grpc.StatusCode.FAILED_PRECONDITION
        done = await stack.stub.CompleteTask(
            pb.CompleteTaskRequest(
                name=task.name,
                operator_id="op-7",
                outcome=pb.TASK_OUTCOME_UNREACHABLE,
                notes="无人接听",
            )
        )
        assert (done.task.state, done.task.outcome) == (
            pb.TASK_STATE_COMPLETED,
            pb.TASK_OUTCOME_UNREACHABLE,
        )
        warning = (
            await stack.stub.GetWarning(pb.GetWarningRequest(name=sent.warning.name))
        ).warning
        assert states(warning)[(pb.CHANNEL_CALL_TASK, False)] == pb.DELIVERY_STATE_FAILED
        nothing = await rpc_error(
            stack.stub.ClaimTask(pb.ClaimTaskRequest(operator_id="op-7", type=pb.TASK_TYPE_CALL))
        )
        assert nothing.code() == grpc.StatusCode.NOT_FOUND


MEDIUM = common_pb2.RISK_LEVEL_MEDIUM


class TestCarrierInput:
    async def test_contact_events_are_checked_one_by_one(self, stack: Stack) -> None:
        now = datetime.now(UTC)

        def stamp(t: datetime) -> Timestamp:
            found = Timestamp()
            found.FromDatetime(t)
            return found

        events = [
            pb.ContactEvent(
                caller=number(1),
                callee="13912345678",
                time=stamp(now),
                kind=pb.CONTACT_KIND_CALL,
                caller_level=MEDIUM,
            ),
            pb.ContactEvent(
                caller="not a number", callee=number(2), time=stamp(now), kind=pb.CONTACT_KIND_SMS
            ),
            pb.ContactEvent(
                caller=number(3), callee=number(3), time=stamp(now), kind=pb.CONTACT_KIND_SMS
            ),
            pb.ContactEvent(
                caller=number(4),
                callee=number(5),
                time=stamp(now + timedelta(hours=1)),
                kind=pb.CONTACT_KIND_SMS,
            ),
            pb.ContactEvent(caller=number(4), callee=number(5), kind=pb.CONTACT_KIND_SMS),
            pb.ContactEvent(
                caller=number(4),
                callee=number(5),
                time=stamp(now - timedelta(days=45)),
                kind=pb.CONTACT_KIND_CALL,
                caller_level=MEDIUM,
            ),
            pb.ContactEvent(
                caller=number(4), callee=number(5), time=stamp(now), caller_level=MEDIUM
            ),
        ]
        # A valid contact between numbers of no known risk is not kept.
        events.append(
            pb.ContactEvent(
                caller=number(7), callee=number(8), time=stamp(now), kind=pb.CONTACT_KIND_CALL
            )
        )
        reply = await stack.stub.RecordContactEvents(pb.RecordContactEventsRequest(events=events))
        assert (reply.accepted_count, reply.rejected_count, reply.expired_count) == (1, 5, 1)
        assert reply.ignored_count == 1
        assert [(e.index, e.field) for e in reply.errors] == [
            (1, "events[1].caller"),
            (2, "events[2].callee"),
            (3, "events[3].time"),
            (4, "events[4].time"),
            (6, "events[6].kind"),
        ]

        async def batches() -> AsyncIterator[pb.StreamContactEventsRequest]:
            for i in range(3):
                yield pb.StreamContactEventsRequest(
                    events=[
                        pb.ContactEvent(
                            caller=number(10 + i),
                            callee="13912345678",
                            time=stamp(now),
                            kind=pb.CONTACT_KIND_SMS,
                            caller_level=MEDIUM,
                        ),
                        pb.ContactEvent(
                            caller="",
                            callee="13912345678",
                            time=stamp(now),
                            kind=pb.CONTACT_KIND_SMS,
                        ),
                    ]
                )

        streamed = await stack.stub.StreamContactEvents(batches())
        assert (streamed.accepted_count, streamed.rejected_count) == (3, 3)
        assert [e.index for e in streamed.errors] == [1, 3, 5]
        too_many = await rpc_error(stack.stub.RecordContactEvents(pb.RecordContactEventsRequest()))
        assert field_violations(too_many)[0][0] == "events"

    async def test_receipts_move_deliveries_forward_only(self, stack: Stack) -> None:
        await stack.partners.control().SetBehavior(
            sim.SetBehaviorRequest(behavior=sim.Behavior(delivery_delay_ms=3_600_000))
        )
        sent = await dispatch(
            stack.stub, pb.RecipientRef(phone_number=number(600)), common_pb2.RISK_LEVEL_LOW
        )

        async def accepted() -> pb.Delivery | None:
            w = (await stack.stub.GetWarning(pb.GetWarningRequest(name=sent.warning.name))).warning
            d = w.deliveries[0]
            return d if d.state == pb.DELIVERY_STATE_SENT else None

        delivery = await eventually(accepted)
        receipt = pb.RecordDeliveryReceiptRequest(
            carrier=delivery.carrier,
            carrier_message_id=delivery.carrier_message_id,
            state=pb.DELIVERY_STATE_DELIVERED,
        )
        first = await stack.stub.RecordDeliveryReceipt(receipt)
        assert first.delivery.state == pb.DELIVERY_STATE_DELIVERED
        receipt.state = pb.DELIVERY_STATE_FAILED
        late = await stack.stub.RecordDeliveryReceipt(receipt)
        assert late.delivery.state == pb.DELIVERY_STATE_DELIVERED
        receipt.carrier_message_id = "nope"
        missing = await rpc_error(stack.stub.RecordDeliveryReceipt(receipt))
        assert missing.code() == grpc.StatusCode.NOT_FOUND
        receipt.state = pb.DELIVERY_STATE_SENT
        bad = await rpc_error(stack.stub.RecordDeliveryReceipt(receipt))
        assert field_violations(bad) == [("state", "must be DELIVERED or FAILED")]

        stats = await stack.stub.GetWarningStats(pb.GetWarningStatsRequest())
        assert {(c.channel, c.state): c.count for c in stats.deliveries} == {
            (pb.CHANNEL_SMS, pb.DELIVERY_STATE_DELIVERED): 1
        }


class TestHostileInput:
    async def test_bad_requests_name_their_fields(self, stack: Stack) -> None:
        cases: list[tuple[Awaitable[object], set[str]]] = [
            (
                stack.stub.DispatchWarning(pb.DispatchWarningRequest()),
                {"request_id", "recipient", "level", "reason"},
            ),
            (
                stack.stub.DispatchWarning(
                    pb.DispatchWarningRequest(
                        request_id="not-a-uuid",
                        recipient=pb.RecipientRef(phone_number="call me maybe"),
                        level=common_pb2.RISK_LEVEL_NONE,
                        reason=pb.WarningReason(
                            indicator=common_pb2.Indicator(kind=PHONE, value="x")
                        ),
                        text="\x00" * 3,
                    )
                ),
                {"request_id", "recipient.phone_number", "level", "reason.indicator.value", "text"},
            ),
            (
                stack.stub.DispatchWarning(
                    pb.DispatchWarningRequest(
                        request_id=rid(),
                        recipient=pb.RecipientRef(user_id="u"),
                        level=99,  # type: ignore[arg-type]
                        reason=pb.WarningReason(),
                    )
                ),
                {"level", "reason"},
            ),
            (stack.stub.GetWarning(pb.GetWarningRequest(name="warnings/../../etc")), {"name"}),
            (
                stack.stub.ListWarnings(pb.ListWarningsRequest(page_token="garbage", page_size=-1)),
                {"page_token", "page_size"},
            ),
            (
                stack.stub.UpsertRecipient(
                    pb.UpsertRecipientRequest(
                        recipient=pb.Recipient(
                            user_id="u 1",
                            phone_number="12",
                            guardian_phone_numbers=["x", *(number(i) for i in range(5))],
                        )
                    )
                ),
                {
                    "recipient.user_id",
                    "recipient.phone_number",
                    "recipient.guardian_phone_numbers",
                    "recipient.guardian_phone_numbers[0]",
                },
            ),
            (stack.stub.ClaimTask(pb.ClaimTaskRequest()), {"operator_id", "type"}),
            (
                stack.stub.CompleteTask(
                    pb.CompleteTaskRequest(name="tasks/x", operator_id="o", outcome=42)  # type: ignore[arg-type]
                ),
                {"outcome"},
            ),
            (
                stack.stub.SendNotification(pb.SendNotificationRequest(request_id=rid())),
                {"recipient", "text", "purpose"},
            ),
            (stack.stub.ListBankOrders(pb.ListBankOrdersRequest(state=77)), {"state"}),  # type: ignore[arg-type]
        ]
        for call, fields in cases:
            error = await rpc_error(call)
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
            assert {f for f, _ in field_violations(error)} == fields, error.details()

    async def test_unknown_things_are_not_found(self, stack: Stack) -> None:
        calls: list[Awaitable[object]] = [
            stack.stub.GetWarning(pb.GetWarningRequest(name=f"warnings/{uuid.uuid4()}")),
            stack.stub.GetTask(pb.GetTaskRequest(name=f"tasks/{uuid.uuid4()}")),
            stack.stub.GetBankOrder(pb.GetBankOrderRequest(name=f"bankOrders/{uuid.uuid4()}")),
            stack.stub.GetNotification(
                pb.GetNotificationRequest(name=f"notifications/{uuid.uuid4()}")
            ),
            stack.stub.GetRecipient(pb.GetRecipientRequest(user_id="ghost")),
            dispatch(stack.stub, pb.RecipientRef(user_id="ghost"), common_pb2.RISK_LEVEL_LOW),
        ]
        for call in calls:
            assert (await rpc_error(call)).code() == grpc.StatusCode.NOT_FOUND

    async def test_a_number_belongs_to_one_user(self, stack: Stack) -> None:
        await register(stack.stub, "first", number(700))
        error = await rpc_error(register(stack.stub, "second", number(700)))
        assert error.code() == grpc.StatusCode.ALREADY_EXISTS
        moved = await register(stack.stub, "first", number(701), (number(702),))
        assert (moved.phone_number, moved.protected, list(moved.guardian_phone_numbers)) == (
            number(701),
            True,
            [number(702)],
        )
        assert (await register(stack.stub, "second", number(700))).user_id == "second"


async def test_a_citizen_reaching_the_service_directly_sees_only_their_own(stack: Stack) -> None:
    """The gateway checks ownership first; the service checks again on its own."""
    await register(stack.stub, "u-alice", number(901))
    await register(stack.stub, "u-bob", number(902))
    bob = (("x-principal", "citizen:u-bob"),)
    own = await stack.stub.GetRecipient(pb.GetRecipientRequest(user_id="u-bob"), metadata=bob)
    assert own.recipient.user_id == "u-bob"
    refused = [
        stack.stub.GetRecipient(pb.GetRecipientRequest(user_id="u-alice"), metadata=bob),
        stack.stub.ListWarnings(pb.ListWarningsRequest(user_id="u-alice"), metadata=bob),
        stack.stub.ListWarnings(pb.ListWarningsRequest(), metadata=bob),
        stack.stub.GetRecipient(
            pb.GetRecipientRequest(user_id="u-bob"), metadata=(("x-principal", "carrier:c1"),)
        ),
    ]
    for call in refused:
        assert (await rpc_error(call)).code() == grpc.StatusCode.PERMISSION_DENIED
    stream = stack.stub.StreamWarnings(pb.StreamWarningsRequest(user_id="u-alice"), metadata=bob)
    assert (await rpc_error(stream.read())).code() == grpc.StatusCode.PERMISSION_DENIED
    staff = await stack.stub.GetRecipient(
        pb.GetRecipientRequest(user_id="u-alice"), metadata=(("x-principal", "analyst:a1"),)
    )
    assert staff.recipient.user_id == "u-alice"
