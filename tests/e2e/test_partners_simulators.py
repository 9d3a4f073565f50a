"""The partner simulators on real sockets: the ``partners`` component with every simulator
on its own free port, called through the directory's client factory."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import grpc
import pytest

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.partner.v1 import bank_pb2, carrier_pb2, face_pb2, registry_pb2
from services.api.antifraud.partner.v1 import simulator_pb2 as sim
from services.common.config import ServerSettings
from services.common.errors import field_violations
from services.common.resident_id import with_check_character
from services.common.server import RunningServer
from services.partners.bootstrap import build_partners
from services.partners.directory import SIMULATORS, PartnerClients
from services.partners.domain.behavior import Behavior
from services.partners.domain.cards import luhn_check_digit
from services.partners.fleet import PartnersComponent
from tests.harness import serving

ID_A = with_check_character("11010519900307123")
ID_B = with_check_character("31010419851120456")
PHONE_CMCC = "+8613800138000"
PHONE_CUCC = "+8613012345678"
BANK = common_pb2.INDICATOR_KIND_BANK_ACCOUNT


def card(prefix: str, length: int = 19) -> str:
    body = prefix + "7301928374650192837"[: length - len(prefix) - 1]
    return body + luhn_check_digit(body)


ICBC_DEBIT, ICBC_CREDIT, CCB_DEBIT, ABC_DEBIT = (
    card("622202"),
    card("427020", 16),
    card("621700"),
    card("622848"),
)


@dataclass
class Fleet:
    component: PartnersComponent
    running: RunningServer
    clients: PartnerClients


@pytest.fixture(scope="module")
async def fleet() -> AsyncIterator[Fleet]:
    component = build_partners(
        settings_for=lambda name: ServerSettings(name, "127.0.0.1:0", grace_seconds=0.2),
        behavior=Behavior(),  # no latency, no failures until a test sets them
    )
    async with serving(component) as running:
        overrides = {name: component.address(name) for name in SIMULATORS}
        overrides["partners"] = running.address
        async with PartnerClients(overrides) as clients:
            yield Fleet(component, running, clients)


@pytest.fixture(autouse=True)
async def reset(fleet: Fleet) -> None:
    await fleet.clients.control().Reset(sim.ResetRequest())


async def rpc_error(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


def violated(error: grpc.aio.AioRpcError) -> set[str]:
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    return {field for field, _ in field_violations(error)}


async def poll(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def sms(
    phone: str = PHONE_CMCC, *, key: str = "", text: str = "【12381】警惕冒充客服退款诈骗"
) -> carrier_pb2.SendSmsRequest:
    return carrier_pb2.SendSmsRequest(
        idempotency_key=key or str(uuid.uuid4()),
        phone_number=phone,
        text=text,
        flash=True,
        sender_id="12381",
    )


def stop_payment(
    account: str, *, key: str = "", case: str = "BJ-2025-0042"
) -> bank_pb2.StopPaymentRequest:
    return bank_pb2.StopPaymentRequest(
        idempotency_key=key or str(uuid.uuid4()),
        account=common_pb2.Indicator(kind=BANK, value=account),
        case_reference=case,
        amount=common_pb2.Money(currency_code="CNY", units=52_000, nanos=500_000_000),
        reason="payee account named in a filed fraud case",
        requesting_authority="北京市反诈中心",
    )


async def received(
    fleet: Fleet, simulator: str = "", method: str = "", *, replays: bool = False
) -> list[sim.ReceivedCall]:
    reply = await fleet.clients.control().ListReceived(
        sim.ListReceivedRequest(simulator=simulator, method=method, include_replays=replays)
    )
    return list(reply.received_calls)


# -- the fleet ---------------------------------------------------------------------------------


async def test_the_fleet_lists_every_simulator_where_it_listens(fleet: Fleet) -> None:
    reply = await fleet.clients.control().ListSimulators(sim.ListSimulatorsRequest())
    assert [s.name for s in reply.simulators] == sorted(SIMULATORS)
    for info in reply.simulators:
        assert info.address == fleet.component.address(info.name)
        assert info.address.startswith("127.0.0.1:")
    kinds = {s.name: s.kind for s in reply.simulators}
    assert kinds["carrier-mvno"] == sim.SIMULATOR_KIND_CARRIER
    assert kinds["bank-abc"] == sim.SIMULATOR_KIND_BANK
    assert kinds["face"] == sim.SIMULATOR_KIND_FACE
    assert kinds["registry"] == sim.SIMULATOR_KIND_REGISTRY
    own = await fleet.clients.control("bank-ccb").ListSimulators(sim.ListSimulatorsRequest())
    assert [(s.name, s.display_name) for s in own.simulators] == [("bank-ccb", "中国建设银行")]


# -- SMS ---------------------------------------------------------------------------------------


async def test_sms_is_queued_then_delivered_after_the_simulated_delay(fleet: Fleet) -> None:
    await fleet.clients.control("carrier-cmcc").SetBehavior(
        sim.SetBehaviorRequest(behavior=sim.Behavior(delivery_delay_ms=1500))
    )
    carrier = fleet.clients.carrier("carrier-cmcc")
    sent = await carrier.SendSms(sms())
    assert sent.state == carrier_pb2.SMS_SUBMIT_STATE_ACCEPTED
    assert sent.message_id
    assert sent.segment_count == 1
    lookup = carrier_pb2.GetSmsDeliveryRequest(message_id=sent.message_id)
    first = await carrier.GetSmsDelivery(lookup)
    assert first.state == carrier_pb2.SMS_DELIVERY_STATE_QUEUED
    assert not first.HasField("delivered_time")

    async def delivered() -> bool:
        reply: carrier_pb2.GetSmsDeliveryResponse = await carrier.GetSmsDelivery(lookup)
        return reply.state != carrier_pb2.SMS_DELIVERY_STATE_QUEUED

    await poll(delivered)
    final = await carrier.GetSmsDelivery(lookup)
    assert final.state == carrier_pb2.SMS_DELIVERY_STATE_DELIVERED
    assert final.delivered_time.ToDatetime() - final.submit_time.ToDatetime() == timedelta(
        milliseconds=1500
    )
    assert final.submit_time == sent.submit_time


async def test_sms_delivery_can_fail_or_expire(fleet: Fleet) -> None:
    await fleet.clients.control().SeedSubscribers(
        sim.SeedSubscribersRequest(
            subscribers=[
                carrier_pb2.Subscriber(
                    resident_id_number=ID_A,
                    lines=[carrier_pb2.SubscriberLine(phone_number=PHONE_CUCC, switched_off=True)],
                )
            ]
        )
    )
    cucc = fleet.clients.carrier("carrier-cucc")
    expired = await cucc.SendSms(sms(PHONE_CUCC))
    await fleet.clients.control("carrier-cucc").SetBehavior(
        sim.SetBehaviorRequest(behavior=sim.Behavior(delivery_failure_rate=1.0))
    )
    failed = await cucc.SendSms(sms("+8613112345678"))
    states = {}
    for name, sent in (("expired", expired), ("failed", failed)):
        reply = await cucc.GetSmsDelivery(
            carrier_pb2.GetSmsDeliveryRequest(message_id=sent.message_id)
        )
        states[name] = reply.state
    assert states == {
        "expired": carrier_pb2.SMS_DELIVERY_STATE_EXPIRED,
        "failed": carrier_pb2.SMS_DELIVERY_STATE_FAILED,
    }


async def test_a_number_of_another_carrier_is_rejected(fleet: Fleet) -> None:
    sent = await fleet.clients.carrier("carrier-cmcc").SendSms(sms(PHONE_CUCC))
    assert sent.state == carrier_pb2.SMS_SUBMIT_STATE_REJECTED
    assert sent.reject_reason == carrier_pb2.SMS_REJECT_REASON_NOT_SUBSCRIBER
    assert sent.message_id == ""
    error = await rpc_error(
        fleet.clients.carrier("carrier-cmcc").GetSmsDelivery(
            carrier_pb2.GetSmsDeliveryRequest(message_id="CMCC-no-such-message")
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


# -- idempotency and failures ------------------------------------------------------------------


async def test_a_repeated_idempotency_key_has_no_second_effect(fleet: Fleet) -> None:
    carrier = fleet.clients.carrier("carrier-cmcc")
    request = sms(key="warning-7f3a-sms-1")
    first = await carrier.SendSms(request)
    again = await carrier.SendSms(request)
    assert again == first
    effects = await received(fleet, "carrier-cmcc", "SendSms")
    assert len(effects) == 1
    call = effects[0]
    assert (call.simulator, call.method, call.idempotency_key) == (
        "carrier-cmcc",
        "SendSms",
        "warning-7f3a-sms-1",
    )
    assert not call.replayed
    assert call.summary["message_id"] == first.message_id
    assert call.summary["masked_phone_number"] == "+86138****8000"
    assert call.summary["state"] == "SMS_SUBMIT_STATE_ACCEPTED"
    assert all("13800138000" not in value for value in call.summary.values())
    everything = await received(fleet, "carrier-cmcc", "SendSms", replays=True)
    assert [c.replayed for c in everything] == [False, True]

    other_body = sms(key="warning-7f3a-sms-1", text="另一条短信")
    error = await rpc_error(carrier.SendSms(other_body))
    assert error.code() == grpc.StatusCode.ABORTED
    assert len(await received(fleet, "carrier-cmcc", "SendSms", replays=True)) == 2


async def test_a_repeated_stop_payment_is_one_order(fleet: Fleet) -> None:
    bank = fleet.clients.bank("bank-icbc")
    request = stop_payment(ICBC_DEBIT, key="case-42-payee-1")
    first = await bank.StopPayment(request)
    again = await bank.StopPayment(request)
    assert first.state == bank_pb2.PAYMENT_ORDER_STATE_ACKNOWLEDGED
    assert first.order_reference.startswith("ICBC-SP-")
    assert again.order_reference == first.order_reference
    assert first.expire_time.ToDatetime() - first.acknowledge_time.ToDatetime() == timedelta(
        hours=48
    )
    orders = await received(fleet, "bank-icbc", "StopPayment")
    assert len(orders) == 1
    summary = orders[0].summary
    assert summary["case_reference"] == "BJ-2025-0042"
    assert summary["amount"] == "52000.50 CNY"
    assert summary["order_reference"] == first.order_reference
    assert summary["masked_account"] == ICBC_DEBIT[:4] + "*" * 11 + ICBC_DEBIT[-4:]


async def test_failure_rate_one_answers_unavailable_and_records_nothing(fleet: Fleet) -> None:
    control = fleet.clients.control()
    await control.SetBehavior(
        sim.SetBehaviorRequest(simulator="bank-icbc", behavior=sim.Behavior(failure_rate=1.0))
    )
    bank = fleet.clients.bank("bank-icbc")
    request = stop_payment(ICBC_DEBIT, key="case-43-payee-1")
    error = await rpc_error(bank.StopPayment(request))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    error = await rpc_error(
        bank.ListCards(bank_pb2.ListCardsRequest(resident_id_number=ID_A, name="张三丰"))
    )
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert await received(fleet, "bank-icbc", replays=True) == []

    # The outage had no effect, so the retry with the same key is the first real order.
    await control.SetBehavior(
        sim.SetBehaviorRequest(simulator="bank-icbc", behavior=sim.Behavior(failure_rate=0.0))
    )
    retried = await bank.StopPayment(request)
    assert retried.state == bank_pb2.PAYMENT_ORDER_STATE_ACKNOWLEDGED
    orders = await received(fleet, "bank-icbc", replays=True)
    assert [(c.method, c.replayed) for c in orders] == [("StopPayment", False)]


async def test_behavior_is_reported_and_reset(fleet: Fleet) -> None:
    control = fleet.clients.control()
    changed = await control.SetBehavior(
        sim.SetBehaviorRequest(
            behavior=sim.Behavior(latency_ms=5, jitter_ms=2, failure_rate=0.1, delivery_delay_ms=9)
        )
    )
    assert len(changed.simulators) == len(SIMULATORS)
    assert all(s.behavior.latency_ms == 5 for s in changed.simulators)
    assert all(s.behavior.HasField("delivery_delay_ms") for s in changed.simulators)
    reset = await control.Reset(sim.ResetRequest(simulator="face"))
    assert [s.name for s in reset.simulators] == ["face"]
    assert reset.simulators[0].behavior == sim.Behavior()


# -- carriers ----------------------------------------------------------------------------------


async def test_seeded_subscribers_are_routed_and_answered_masked(fleet: Fleet) -> None:
    seeded = await fleet.clients.control().SeedSubscribers(
        sim.SeedSubscribersRequest(
            subscribers=[
                carrier_pb2.Subscriber(
                    resident_id_number=ID_A,
                    lines=[
                        carrier_pb2.SubscriberLine(
                            phone_number="138 0013 8000",
                            linked_accounts=[
                                carrier_pb2.SeededLinkedAccount(
                                    platform=carrier_pb2.INTERNET_PLATFORM_WECHAT,
                                    account_name="zhangsan88",
                                ),
                                carrier_pb2.SeededLinkedAccount(
                                    platform=carrier_pb2.INTERNET_PLATFORM_ALIPAY,
                                    account_name="zs@example.com",
                                ),
                            ],
                        ),
                        carrier_pb2.SubscriberLine(phone_number=PHONE_CUCC),
                    ],
                )
            ]
        )
    )
    assert seeded.line_count == 2
    counts = {}
    for name in ("carrier-cmcc", "carrier-cucc", "carrier-ctcc", "carrier-mvno"):
        reply = await fleet.clients.carrier(name).CountPhoneCards(
            carrier_pb2.CountPhoneCardsRequest(resident_id_number=ID_A)
        )
        counts[name] = [c.masked_phone_number for c in reply.phone_cards]
        assert reply.card_count == len(reply.phone_cards)
    assert counts == {
        "carrier-cmcc": ["+86138****8000"],
        "carrier-cucc": ["+86130****5678"],
        "carrier-ctcc": [],
        "carrier-mvno": [],
    }
    cmcc = fleet.clients.carrier("carrier-cmcc")
    linked = await cmcc.ListLinkedAccounts(
        carrier_pb2.ListLinkedAccountsRequest(
            phone_number=PHONE_CMCC, resident_id_last_six=ID_A[-6:], page_size=1
        )
    )
    assert [(a.platform, a.masked_account_name) for a in linked.linked_accounts] == [
        (carrier_pb2.INTERNET_PLATFORM_WECHAT, "z***8")
    ]
    rest = await cmcc.ListLinkedAccounts(
        carrier_pb2.ListLinkedAccountsRequest(
            phone_number=PHONE_CMCC,
            resident_id_last_six=ID_A[-6:],
            page_token=linked.next_page_token,
        )
    )
    assert [a.masked_account_name for a in rest.linked_accounts] == ["z***m"]
    assert rest.next_page_token == ""
    wrong_owner = await cmcc.ListLinkedAccounts(
        carrier_pb2.ListLinkedAccountsRequest(
            phone_number=PHONE_CMCC, resident_id_last_six=ID_B[-6:]
        )
    )
    assert list(wrong_owner.linked_accounts) == []


async def test_unseeded_look_ups_are_deterministic(fleet: Fleet) -> None:
    cmcc = fleet.clients.carrier("carrier-cmcc")
    request = carrier_pb2.CountPhoneCardsRequest(resident_id_number=ID_B)
    first = await cmcc.CountPhoneCards(request)
    await fleet.clients.control().Reset(sim.ResetRequest())
    assert await cmcc.CountPhoneCards(request) == first
    for phone_card in first.phone_cards:
        assert "****" in phone_card.masked_phone_number


# -- banks -------------------------------------------------------------------------------------


async def test_seeded_cards_are_listed_masked_at_their_banks(fleet: Fleet) -> None:
    seeded = await fleet.clients.control().SeedCards(
        sim.SeedCardsRequest(
            card_holders=[
                bank_pb2.CardHolder(
                    resident_id_number=ID_A,
                    name="张三丰",
                    cards=[
                        bank_pb2.SeededCard(
                            card_number=ICBC_DEBIT, card_type=bank_pb2.CARD_TYPE_DEBIT
                        ),
                        bank_pb2.SeededCard(
                            card_number=ICBC_CREDIT, card_type=bank_pb2.CARD_TYPE_CREDIT
                        ),
                        bank_pb2.SeededCard(
                            card_number=CCB_DEBIT, card_type=bank_pb2.CARD_TYPE_DEBIT
                        ),
                    ],
                )
            ]
        )
    )
    assert (seeded.card_count, seeded.account_count) == (3, 0)
    listed = {}
    for name in ("bank-icbc", "bank-ccb", "bank-abc"):
        reply = await fleet.clients.bank(name).ListCards(
            bank_pb2.ListCardsRequest(resident_id_number=ID_A, name="张三丰")
        )
        listed[name] = [(c.bank_name, c.card_type, c.masked_card_number) for c in reply.cards]
    assert listed == {
        "bank-icbc": sorted(
            [
                ("中国工商银行", bank_pb2.CARD_TYPE_CREDIT, "4270********" + ICBC_CREDIT[-4:]),
                ("中国工商银行", bank_pb2.CARD_TYPE_DEBIT, "6222***********" + ICBC_DEBIT[-4:]),
            ],
            key=lambda c: c[2],
        ),
        "bank-ccb": [
            ("中国建设银行", bank_pb2.CARD_TYPE_DEBIT, "6217***********" + CCB_DEBIT[-4:])
        ],
        "bank-abc": [],  # the fleet seeded the person there too, with no cards
    }
    other_name = await fleet.clients.bank("bank-icbc").ListCards(
        bank_pb2.ListCardsRequest(resident_id_number=ID_A, name="张三")
    )
    assert list(other_name.cards) == []
    paged = await fleet.clients.bank("bank-icbc").ListCards(
        bank_pb2.ListCardsRequest(resident_id_number=ID_A, name="张三丰", page_size=1)
    )
    assert len(paged.cards) == 1
    assert paged.next_page_token


async def test_stop_payment_at_the_wrong_bank_is_rejected(fleet: Fleet) -> None:
    reply = await fleet.clients.bank("bank-abc").StopPayment(stop_payment(ICBC_DEBIT))
    assert reply.state == bank_pb2.PAYMENT_ORDER_STATE_REJECTED
    assert reply.reject_reason == bank_pb2.PAYMENT_ORDER_REJECT_REASON_ACCOUNT_NOT_FOUND
    assert reply.order_reference == ""
    frozen = await fleet.clients.bank("bank-ccb").FreezeAccount(
        bank_pb2.FreezeAccountRequest(
            idempotency_key=str(uuid.uuid4()),
            account=common_pb2.Indicator(
                kind=common_pb2.INDICATOR_KIND_PAYMENT_ACCOUNT, value="wechat_pay:wxid_mule01"
            ),
            case_reference="SH-2025-7",
            reason="mule account",
            requesting_authority="上海市反诈中心",
        )
    )
    assert frozen.state == bank_pb2.PAYMENT_ORDER_STATE_ACKNOWLEDGED
    assert frozen.order_reference.startswith("CCB-FZ-")
    (order,) = await received(fleet, "bank-ccb", "FreezeAccount")
    assert order.summary["amount"] == "whole balance"


async def test_payee_names_are_confirmed(fleet: Fleet) -> None:
    account = common_pb2.Indicator(kind=BANK, value=ABC_DEBIT)
    await fleet.clients.control().SeedCards(
        sim.SeedCardsRequest(
            account_holders=[bank_pb2.AccountHolder(account=account, holder_name="欧阳娜娜")]
        )
    )
    abc = fleet.clients.bank("bank-abc")
    answers = {}
    for typed in ("欧阳娜娜", "欧阳娜", "欧阳那娜", "李四"):
        reply = await abc.CheckPayeeName(
            bank_pb2.CheckPayeeNameRequest(account=account, payee_name=typed)
        )
        answers[typed] = (reply.match, reply.masked_account_name)
    assert answers == {
        "欧阳娜娜": (bank_pb2.PAYEE_NAME_MATCH_MATCH, "欧***"),
        "欧阳娜": (bank_pb2.PAYEE_NAME_MATCH_CLOSE_MATCH, "欧***"),
        "欧阳那娜": (bank_pb2.PAYEE_NAME_MATCH_CLOSE_MATCH, "欧***"),
        "李四": (bank_pb2.PAYEE_NAME_MATCH_NO_MATCH, ""),
    }
    elsewhere = await fleet.clients.bank("bank-icbc").CheckPayeeName(
        bank_pb2.CheckPayeeNameRequest(account=account, payee_name="欧阳娜娜")
    )
    assert elsewhere.match == bank_pb2.PAYEE_NAME_MATCH_ACCOUNT_NOT_FOUND


# -- registry and face -------------------------------------------------------------------------


async def test_registry_matches_names(fleet: Fleet) -> None:
    await fleet.clients.control().SeedPersons(
        sim.SeedPersonsRequest(
            persons=[registry_pb2.Person(resident_id_number=ID_A, name="张三丰")]
        )
    )
    registry = fleet.clients.registry()

    async def verify(name: str, id_number: str) -> int:
        reply: registry_pb2.VerifyIdentityResponse = await registry.VerifyIdentity(
            registry_pb2.VerifyIdentityRequest(name=name, resident_id_number=id_number)
        )
        return reply.match

    assert await verify("张三丰", ID_A) == registry_pb2.IDENTITY_MATCH_MATCH
    assert await verify("张三", ID_A) == registry_pb2.IDENTITY_MATCH_NAME_MISMATCH
    wrong_check = ID_A[:-1] + ("0" if ID_A[-1] != "0" else "1")
    assert await verify("张三丰", wrong_check) == registry_pb2.IDENTITY_MATCH_NOT_FOUND
    # Unseeded: the first name verified with a valid number is the registered one.
    assert await verify("王芳", ID_B) == registry_pb2.IDENTITY_MATCH_MATCH
    assert await verify("李四", ID_B) == registry_pb2.IDENTITY_MATCH_NAME_MISMATCH


async def test_face_outcomes_follow_the_seed(fleet: Fleet) -> None:
    await fleet.clients.control().SeedFaceOutcomes(
        sim.SeedFaceOutcomesRequest(
            outcomes=[
                face_pb2.FaceOutcomeSeed(
                    subject_reference="subj-b", outcome=face_pb2.FACE_OUTCOME_FAIL
                )
            ]
        )
    )
    face = fleet.clients.face()

    async def verify(subject: str, token: str) -> face_pb2.VerifyFaceResponse:
        reply: face_pb2.VerifyFaceResponse = await face.VerifyFace(
            face_pb2.VerifyFaceRequest(
                idempotency_key=str(uuid.uuid4()), subject_reference=subject, face_token=token
            )
        )
        return reply

    passed = await verify("subj-a", "liveness-token-1")
    assert passed.result == face_pb2.FACE_VERIFICATION_RESULT_PASSED
    assert passed.score >= 0.9
    assert passed.provider_reference
    failed = await verify("subj-b", "liveness-token-2")
    assert failed.result == face_pb2.FACE_VERIFICATION_RESULT_FAILED
    assert failed.failure_reason == face_pb2.FACE_FAILURE_REASON_FACE_MISMATCH
    replayed_token = await verify("subj-a", "liveness-token-1")
    assert replayed_token.failure_reason == face_pb2.FACE_FAILURE_REASON_TOKEN_REUSED
    calls = await received(fleet, "face")
    assert [c.summary["result"] for c in calls] == [
        "FACE_VERIFICATION_RESULT_PASSED",
        "FACE_VERIFICATION_RESULT_FAILED",
        "FACE_VERIFICATION_RESULT_FAILED",
    ]
    assert all("liveness-token" not in v for c in calls for v in c.summary.values())


async def test_the_fleet_record_merges_simulators_in_order(fleet: Fleet) -> None:
    await fleet.clients.carrier("carrier-mvno").SendSms(sms("+8617012345678"))
    await fleet.clients.registry().VerifyIdentity(
        registry_pb2.VerifyIdentityRequest(name="王芳", resident_id_number=ID_B)
    )
    await fleet.clients.carrier("carrier-mvno").CountPhoneCards(
        carrier_pb2.CountPhoneCardsRequest(resident_id_number=ID_B)
    )
    control = fleet.clients.control()
    first = await control.ListReceived(sim.ListReceivedRequest(page_size=2))
    assert [(c.simulator, c.method) for c in first.received_calls] == [
        ("carrier-mvno", "SendSms"),
        ("registry", "VerifyIdentity"),
    ]
    rest = await control.ListReceived(sim.ListReceivedRequest(page_token=first.next_page_token))
    assert [(c.simulator, c.method) for c in rest.received_calls] == [
        ("carrier-mvno", "CountPhoneCards")
    ]
    assert rest.next_page_token == ""
    assert (
        rest.received_calls[0].summary["masked_resident_id_number"]
        == ID_B[:6] + "*" * 10 + ID_B[-2:]
    )


# -- bad input ---------------------------------------------------------------------------------


async def test_missing_fields_are_named(fleet: Fleet) -> None:
    cmcc = fleet.clients.carrier("carrier-cmcc")
    error = await rpc_error(cmcc.SendSms(carrier_pb2.SendSmsRequest()))
    assert violated(error) == {"idempotency_key", "phone_number", "text", "sender_id"}
    long_flash = sms(text="诈" * 71)
    assert violated(await rpc_error(cmcc.SendSms(long_flash))) == {"text"}
    not_a_phone = sms("96110")
    assert violated(await rpc_error(cmcc.SendSms(not_a_phone))) == {"phone_number"}
    error = await rpc_error(cmcc.CountPhoneCards(carrier_pb2.CountPhoneCardsRequest()))
    assert violated(error) == {"resident_id_number"}
    error = await rpc_error(
        cmcc.ListLinkedAccounts(
            carrier_pb2.ListLinkedAccountsRequest(
                phone_number=PHONE_CMCC, resident_id_last_six="12345", page_size=-1
            )
        )
    )
    assert violated(error) == {"resident_id_last_six", "page_size"}
    bank = fleet.clients.bank("bank-icbc")
    error = await rpc_error(bank.StopPayment(bank_pb2.StopPaymentRequest()))
    assert violated(error) == {
        "idempotency_key",
        "account",
        "case_reference",
        "amount",
        "reason",
        "requesting_authority",
    }
    error = await rpc_error(bank.CheckPayeeName(bank_pb2.CheckPayeeNameRequest()))
    assert violated(error) == {"account", "payee_name"}
    error = await rpc_error(
        fleet.clients.registry().VerifyIdentity(
            registry_pb2.VerifyIdentityRequest(resident_id_number="12345")
        )
    )
    assert violated(error) == {"name", "resident_id_number"}
    error = await rpc_error(fleet.clients.face().VerifyFace(face_pb2.VerifyFaceRequest()))
    assert violated(error) == {"idempotency_key", "subject_reference", "face_token"}
    assert await received(fleet, replays=True) == []


async def test_unknown_enum_values_and_wrong_kinds_are_named(fleet: Fleet) -> None:
    bank = fleet.clients.bank("bank-icbc")
    phone_as_account = stop_payment(ICBC_DEBIT)
    phone_as_account.account.kind = common_pb2.INDICATOR_KIND_PHONE_NUMBER
    phone_as_account.amount.units = -5
    phone_as_account.amount.nanos = 0
    error = await rpc_error(bank.StopPayment(phone_as_account))
    assert violated(error) == {"account.kind", "amount"}
    unknown_kind = stop_payment(ICBC_DEBIT)
    unknown_kind.account.kind = 99  # type: ignore[assignment]
    assert violated(await rpc_error(bank.StopPayment(unknown_kind))) == {"account.kind"}
    control = fleet.clients.control()
    error = await rpc_error(
        control.SeedCards(
            sim.SeedCardsRequest(
                card_holders=[
                    bank_pb2.CardHolder(
                        resident_id_number=ID_A,
                        name="张三丰",
                        cards=[
                            bank_pb2.SeededCard(card_number=ICBC_DEBIT, card_type=99),  # type: ignore[arg-type]
                            bank_pb2.SeededCard(card_number=ICBC_CREDIT),
                        ],
                    )
                ]
            )
        )
    )
    assert violated(error) == {
        "card_holders[0].cards[0].card_type",
        "card_holders[0].cards[1].card_type",
    }
    error = await rpc_error(
        control.SeedSubscribers(
            sim.SeedSubscribersRequest(
                subscribers=[
                    carrier_pb2.Subscriber(
                        resident_id_number=ID_A,
                        lines=[
                            carrier_pb2.SubscriberLine(
                                phone_number=PHONE_CMCC,
                                linked_accounts=[
                                    carrier_pb2.SeededLinkedAccount(platform=42, account_name="x")  # type: ignore[arg-type]
                                ],
                            ),
                            carrier_pb2.SubscriberLine(phone_number="+8619012345678"),
                        ],
                    )
                ]
            )
        )
    )
    assert violated(error) == {
        "subscribers[0].lines[0].linked_accounts[0].platform",
        "subscribers[0].lines[1].phone_number",  # no simulated carrier has 190
    }
    error = await rpc_error(
        control.SeedFaceOutcomes(
            sim.SeedFaceOutcomesRequest(outcomes=[face_pb2.FaceOutcomeSeed(subject_reference="s")])
        )
    )
    assert violated(error) == {"outcomes[0].outcome"}
    error = await rpc_error(
        control.SetBehavior(sim.SetBehaviorRequest(behavior=sim.Behavior(failure_rate=1.5)))
    )
    assert violated(error) == {"behavior.failure_rate"}
    error = await rpc_error(control.ListReceived(sim.ListReceivedRequest(method="DropTables")))
    assert violated(error) == {"method"}
    error = await rpc_error(control.Reset(sim.ResetRequest(simulator="bank-hsbc")))
    assert violated(error) == {"simulator"}
    own_port = fleet.clients.control("bank-icbc")
    error = await rpc_error(own_port.Reset(sim.ResetRequest(simulator="bank-ccb")))
    assert violated(error) == {"simulator"}
    error = await rpc_error(
        own_port.SeedPersons(
            sim.SeedPersonsRequest(persons=[registry_pb2.Person(resident_id_number=ID_A, name="x")])
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_carrier_proves_a_number_by_code_and_matches_its_real_name(fleet: Fleet) -> None:
    cmcc = fleet.clients.carrier("carrier-cmcc")
    await fleet.clients.control().SeedSubscribers(
        sim.SeedSubscribersRequest(
            subscribers=[
                carrier_pb2.Subscriber(
                    resident_id_number=ID_A,
                    lines=[carrier_pb2.SubscriberLine(phone_number=PHONE_CMCC)],
                )
            ]
        )
    )
    sent = await cmcc.SendOneTimeCode(
        carrier_pb2.SendOneTimeCodeRequest(
            idempotency_key="otp-1",
            phone_number=PHONE_CMCC,
            message="验证码{{code}}，5分钟内有效",
            sender_id="12381",
            consent_reference="phoneChallenges/1",
        )
    )
    assert sent.state == carrier_pb2.SMS_SUBMIT_STATE_ACCEPTED
    inbox = await fleet.clients.control().ListHandsetMessages(
        sim.ListHandsetMessagesRequest(phone_number=PHONE_CMCC)
    )
    code = inbox.messages[0].text.removeprefix("验证码")[:6]
    assert code.isdigit()

    async def validate(key: str, given: str) -> int:
        reply = await cmcc.ValidateOneTimeCode(
            carrier_pb2.ValidateOneTimeCodeRequest(
                idempotency_key=key, authentication_id=sent.authentication_id, code=given
            )
        )
        return int(reply.result)

    wrong = f"{(int(code) + 1) % 10**6:06d}"
    assert await validate("v-1", wrong) == carrier_pb2.ONE_TIME_CODE_RESULT_INVALID
    assert await validate("v-2", code) == carrier_pb2.ONE_TIME_CODE_RESULT_VALID
    # A repeat of a key answers as before; the code is used up for new tries.
    assert await validate("v-2", code) == carrier_pb2.ONE_TIME_CODE_RESULT_VALID
    assert await validate("v-3", code) == carrier_pb2.ONE_TIME_CODE_RESULT_INVALID
    bad = await rpc_error(validate("v-4", "12ab"))
    assert violated(bad) == {"code"}

    for id_number, expected in (
        (ID_A, carrier_pb2.SUBSCRIBER_MATCH_MATCH),
        (ID_B, carrier_pb2.SUBSCRIBER_MATCH_NO_MATCH),
    ):
        matched = await cmcc.MatchSubscriberIdentity(
            carrier_pb2.MatchSubscriberIdentityRequest(
                phone_number=PHONE_CMCC, resident_id_number=id_number
            )
        )
        assert matched.id_number_match == expected
    elsewhere = await cmcc.MatchSubscriberIdentity(
        carrier_pb2.MatchSubscriberIdentityRequest(phone_number=PHONE_CUCC, resident_id_number=ID_A)
    )
    assert elsewhere.id_number_match == carrier_pb2.SUBSCRIBER_MATCH_NOT_SUBSCRIBER

    # Recorded, with no value in clear: no code, no full number, no ID number.
    record = await fleet.clients.control().ListReceived(
        sim.ListReceivedRequest(simulator="carrier-cmcc", page_size=500)
    )
    methods = [c.method for c in record.received_calls]
    assert {"SendOneTimeCode", "ValidateOneTimeCode", "MatchSubscriberIdentity"} <= set(methods)
    text = str([dict(c.summary) for c in record.received_calls])
    for value in (code, PHONE_CMCC, ID_A):
        assert value not in text


async def test_a_platform_confirms_who_holds_an_account(fleet: Fleet) -> None:
    wechat = common_pb2.Indicator(kind=common_pb2.INDICATOR_KIND_WECHAT_ID, value="wxid_abc123")
    await fleet.clients.control().SeedCards(
        sim.SeedCardsRequest(
            account_holders=[
                bank_pb2.AccountHolder(account=wechat, holder_name="王芳", resident_id_number=ID_A)
            ]
        )
    )
    # Tencent's accounts are answered by the simulator standing for WeChat Pay.
    tencent = fleet.clients.bank("bank-ccb")

    async def confirm(account: common_pb2.Indicator, id_number: str, name: str) -> int:
        reply = await tencent.ConfirmAccountHolder(
            bank_pb2.ConfirmAccountHolderRequest(
                account=account, resident_id_number=id_number, name=name
            )
        )
        return int(reply.holder_match)

    assert await confirm(wechat, ID_A, "王芳") == bank_pb2.HOLDER_MATCH_MATCH
    assert await confirm(wechat, ID_B, "王芳") == bank_pb2.HOLDER_MATCH_NO_MATCH
    assert await confirm(wechat, ID_A, "李芳") == bank_pb2.HOLDER_MATCH_NO_MATCH
    unknown = common_pb2.Indicator(kind=common_pb2.INDICATOR_KIND_QQ_NUMBER, value="123456789")
    assert await confirm(unknown, ID_A, "王芳") == bank_pb2.HOLDER_MATCH_ACCOUNT_NOT_FOUND
