"""Partner simulators' rules without servers: IDs, behaviour, carriers, banks, face, registry."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.common import resident_id
from services.common.indicators import IndicatorKind, luhn_valid, normalize
from services.partners.bootstrap import behavior_from_env
from services.partners.domain import synthetic
from services.partners.domain.bank import (
    Amount,
    Bank,
    Card,
    Disposition,
    HoldEnded,
    HoldState,
    OrderKind,
    OrderRejectReason,
    OrderRequest,
)
from services.partners.domain.behavior import Behavior
from services.partners.domain.cards import CardType, luhn_check_digit
from services.partners.domain.carrier import (
    Carrier,
    InternetPlatform,
    Line,
    LinkedAccount,
    SmsDeliveryState,
    SmsRejectReason,
    segment_count,
)
from services.partners.domain.face import FaceFailureReason, FaceOutcome, FaceProvider, FaceResult
from services.partners.domain.idempotency import IdempotencyMemo, KeyReused
from services.partners.domain.names import mask_account_name, mask_name
from services.partners.domain.payee import PayeeNameMatch
from services.partners.domain.received import ReceivedLog
from services.partners.domain.registry import IdentityMatch, Registry

NOW = datetime(2025, 3, 15, 8, 0, tzinfo=UTC)
ID_A = "11010519491231002X"  # the GB 11643 example
ID_B = "440524188001010014"


def _card(prefix: str, length: int = 19) -> str:
    body = prefix + "1234567890123456789"[: length - len(prefix) - 1]
    return body + luhn_check_digit(body)


ICBC_CARD = _card("622202")
CCB_CARD = _card("621700")


def test_resident_id_check_character_and_forms() -> None:
    assert resident_id.with_check_character("11010519491231002") == ID_A
    assert resident_id.checksum_valid(ID_A)
    assert resident_id.checksum_valid(ID_B)
    assert not resident_id.checksum_valid("110105194912310021")
    assert resident_id.canonical(" 11010519491231002x ") == ID_A
    assert resident_id.canonical("１１０１０５１９４９１２３１００２Ｘ") == ID_A
    assert resident_id.mask(ID_A) == "110105**********2X"
    assert resident_id.canonical_last_six("31002x") == "31002X"
    for bad in ("1101051949123100", "11010519491231002Y", "A1010519491231002X"):
        with pytest.raises(resident_id.InvalidResidentId):
            resident_id.canonical(bad)
    with pytest.raises(resident_id.InvalidResidentId):
        resident_id.canonical_last_six("X31002")


def test_masks_show_little() -> None:
    assert mask_name("张三丰") == "张**"
    assert mask_name("王芳") == "王*"
    assert mask_account_name("zhangsan88") == "z***8"
    assert mask_account_name("ab") == "a*"


def test_behavior_draws_and_limits() -> None:
    rng = random.Random(7)
    steady = Behavior(latency_ms=100, jitter_ms=0)
    assert steady.draw_latency(rng) == pytest.approx(0.1)
    jittery = Behavior(latency_ms=100, jitter_ms=50)
    draws = [jittery.draw_latency(rng) for _ in range(200)]
    assert min(draws) >= 0.05
    assert max(draws) <= 0.15
    assert all(Behavior(failure_rate=1.0).draw_failure(rng) for _ in range(50))
    assert not any(Behavior(failure_rate=0.0).draw_failure(rng) for _ in range(50))
    # Delivery follows the call behaviour unless set on its own.
    assert Behavior(failure_rate=1.0).draw_delivery_failure(rng)
    assert not Behavior(failure_rate=1.0, delivery_failure_rate=0.0).draw_delivery_failure(rng)
    assert Behavior(latency_ms=30, delivery_delay_ms=900).draw_delivery_delay(rng) == 0.9
    problems = Behavior(
        latency_ms=-1, failure_rate=1.5, delivery_failure_rate=float("nan")
    ).problems()
    assert [field for field, _ in problems] == [
        "latency_ms",
        "failure_rate",
        "delivery_failure_rate",
    ]


def test_behavior_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTIFRAUD_PARTNERS_LATENCY_MS", "5")
    monkeypatch.setenv("ANTIFRAUD_CARRIER_CMCC_FAILURE_RATE", "0.25")
    monkeypatch.setenv("ANTIFRAUD_CARRIER_CMCC_LATENCY_MS", "40")
    cmcc = behavior_from_env("carrier-cmcc")
    assert (cmcc.latency_ms, cmcc.failure_rate, cmcc.jitter_ms) == (40, 0.25, 10)
    assert behavior_from_env("bank-icbc").latency_ms == 5
    monkeypatch.setenv("ANTIFRAUD_BANK_ABC_FAILURE_RATE", "often")
    with pytest.raises(ValueError, match="ANTIFRAUD_BANK_ABC_FAILURE_RATE"):
        behavior_from_env("bank-abc")
    monkeypatch.setenv("ANTIFRAUD_BANK_ABC_FAILURE_RATE", "2")
    with pytest.raises(ValueError, match="from 0 to 1"):
        behavior_from_env("bank-abc")


def test_sms_segments() -> None:
    assert segment_count("a" * 70) == 1
    assert segment_count("a" * 71) == 2
    assert segment_count("a" * 134) == 2
    assert segment_count("a" * 135) == 3


def test_sms_is_queued_until_due_then_delivered() -> None:
    carrier = Carrier("carrier-cmcc")
    sent = carrier.send_sms(
        "+8613800138000", "warning", now=NOW, delivery_delay=2.0, delivery_fails=False
    )
    assert sent.message is not None
    assert sent.reject_reason is None
    message = carrier.message(sent.message.message_id)
    assert message.state_at(NOW + timedelta(seconds=1)) == (SmsDeliveryState.QUEUED, NOW)
    due = NOW + timedelta(seconds=2)
    assert message.state_at(due) == (SmsDeliveryState.DELIVERED, due)


def test_sms_outcomes_failed_expired_and_rejected() -> None:
    carrier = Carrier("carrier-cmcc")
    carrier.seed_subscriber(ID_A, [Line("+8613900139000", ID_A, NOW, switched_off=True)])
    failed = carrier.send_sms("+8613800138000", "x", now=NOW, delivery_delay=0, delivery_fails=True)
    off = carrier.send_sms("+8613900139000", "x", now=NOW, delivery_delay=0, delivery_fails=False)
    assert failed.message is not None
    assert off.message is not None
    assert failed.message.state_at(NOW)[0] is SmsDeliveryState.FAILED
    assert off.message.state_at(NOW)[0] is SmsDeliveryState.EXPIRED
    elsewhere = carrier.send_sms(
        "+8613000130000", "x", now=NOW, delivery_delay=0, delivery_fails=False
    )
    assert elsewhere.message is None
    assert elsewhere.reject_reason is SmsRejectReason.NOT_SUBSCRIBER


def test_phone_cards_seeded_default_and_unknown() -> None:
    carrier = Carrier("carrier-cmcc")
    carrier.seed_subscriber(
        ID_A,
        [
            Line("+8613800138000", ID_A, NOW),
            Line("+8613000130000", ID_A, NOW - timedelta(days=400)),  # ported in from Unicom
        ],
    )
    assert carrier.phone_cards(ID_A) == [
        ("+8613000130000", NOW - timedelta(days=400)),
        ("+8613800138000", NOW),
    ]
    default = carrier.phone_cards(ID_B)
    assert default == Carrier("carrier-cmcc").phone_cards(ID_B)  # deterministic
    assert all(phone[3:6] in carrier.prefixes for phone, _ in default)
    assert carrier.phone_cards("110105194912310021") == []  # check character wrong
    carrier.seed_subscriber(ID_A, [])
    assert carrier.phone_cards(ID_A) == []


def test_linked_accounts_need_the_owners_last_six() -> None:
    carrier = Carrier("carrier-cmcc")
    wechat = LinkedAccount(InternetPlatform.WECHAT, "zhangsan88", NOW)
    carrier.seed_subscriber(ID_A, [Line("+8613800138000", ID_A, NOW, linked_accounts=(wechat,))])
    assert carrier.linked_accounts("+8613800138000", ID_A[-6:]) == [wechat]
    assert carrier.linked_accounts("+8613800138000", "123456") == []
    # Unseeded: the first last-six presented is the owner's, later others get nothing.
    first = carrier.linked_accounts("+8613900139000", "123456")
    assert carrier.linked_accounts("+8613900139000", "123456") == first
    assert carrier.linked_accounts("+8613900139000", "654321") == []
    assert carrier.linked_accounts("+8613000130000", "123456") == []  # not this carrier's


def _order(
    account: str, *, kind: OrderKind = OrderKind.STOP_PAYMENT, currency: str = "CNY"
) -> OrderRequest:
    indicator = normalize(
        IndicatorKind.PAYMENT_ACCOUNT if ":" in account else IndicatorKind.BANK_ACCOUNT, account
    )
    return OrderRequest(
        kind, indicator, "CASE-1", Amount(currency, Decimal("5000")), "fraud", "Beijing ACC"
    )


def test_bank_orders_acknowledged_or_rejected() -> None:
    bank = Bank("bank-icbc")
    number = ICBC_CARD
    held = bank.place_order(_order(number), now=NOW)
    assert held.reject_reason is None
    assert held.reference.startswith("ICBC-SP-")
    assert held.expire_time == NOW + timedelta(hours=48)
    frozen = bank.place_order(_order(number, kind=OrderKind.FREEZE), now=NOW)
    assert frozen.expire_time == NOW + timedelta(days=180)
    assert bank.place_order(_order("alipay:13800138000"), now=NOW).reject_reason is None
    elsewhere = bank.place_order(_order(CCB_CARD), now=NOW)
    assert elsewhere.reject_reason is OrderRejectReason.ACCOUNT_NOT_FOUND
    assert elsewhere.reference == ""
    dollars = bank.place_order(_order(number, currency="USD"), now=NOW)
    assert dollars.reject_reason is OrderRejectReason.CURRENCY_NOT_SUPPORTED
    bank.seed_account(normalize(IndicatorKind.BANK_ACCOUNT, number), "张三", closed=True)
    closed = bank.place_order(_order(number), now=NOW)
    assert closed.reject_reason is OrderRejectReason.ACCOUNT_CLOSED


def test_a_hold_takes_what_the_balance_allows_extends_ends_and_lapses() -> None:
    bank = Bank("bank-icbc")
    account = normalize(IndicatorKind.BANK_ACCOUNT, ICBC_CARD)
    bank.seed_account(account, "张三", closed=False, balance=Decimal("1200.50"))
    placed = bank.place_order(_order(ICBC_CARD), now=NOW)
    assert placed.held == Amount("CNY", Decimal("1200.50"))
    later = NOW + timedelta(hours=47)
    extended = bank.extend_hold(placed.reference, "YQ-1", now=later)
    assert extended.expire_time == later + timedelta(hours=48)
    assert extended.legal_instrument_id == "YQ-1"
    ended = bank.release_hold(placed.reference, Disposition.RETURN_TO_VICTIM, "FH-1", now=later)
    assert ended.state is HoldState.RETURNED
    with pytest.raises(HoldEnded):
        bank.release_hold(placed.reference, Disposition.RELEASE, "JC-1", now=later)
    with pytest.raises(KeyError):
        bank.extend_hold("ICBC-SP-NOPE", "YQ-2", now=later)
    # Not extended in time: the hold lapses and can no longer be extended.
    other = bank.place_order(_order(ICBC_CARD), now=NOW)
    lapsed = bank.hold(other.reference, now=NOW + timedelta(hours=49))
    assert lapsed is not None
    assert lapsed.state is HoldState.EXPIRED
    with pytest.raises(HoldEnded):
        bank.extend_hold(other.reference, "YQ-3", now=NOW + timedelta(hours=49))


def test_bank_cards_by_id_and_name() -> None:
    bank = Bank("bank-icbc")
    cards = [Card(ICBC_CARD, CardType.DEBIT), Card(_card("427020", 16), CardType.CREDIT)]
    bank.seed_customer(ID_A, "张三丰", cards)
    assert bank.cards(ID_A, "张三丰") == sorted(cards, key=lambda c: c.number)
    assert bank.cards(ID_A, "李四") == []
    # Unseeded: the first name given is the customer's; the default cards are their accounts.
    defaults = bank.cards(ID_B, "王芳")
    assert bank.cards(ID_B, "王方") == []
    for card in defaults:
        assert luhn_valid(card.number)
        assert card.number[:6] in {b.prefix for b in bank.bins}
        account = normalize(IndicatorKind.BANK_ACCOUNT, card.number)
        assert bank.check_payee(account, "王芳") == (PayeeNameMatch.MATCH, "王芳")


def test_payee_check_on_held_and_unknown_accounts() -> None:
    bank = Bank("bank-ccb")
    account = normalize(IndicatorKind.BANK_ACCOUNT, CCB_CARD)
    holder = synthetic.holder_name("bank-ccb", account.value)
    assert bank.check_payee(account, holder) == (PayeeNameMatch.MATCH, holder)
    foreign = normalize(IndicatorKind.BANK_ACCOUNT, ICBC_CARD)
    assert bank.check_payee(foreign, "张三") == (PayeeNameMatch.ACCOUNT_NOT_FOUND, "")


def test_registry_binds_the_first_name_unless_seeded() -> None:
    registry = Registry()
    registry.seed_person(ID_A, "张三丰")
    assert registry.verify("张三丰", ID_A) is IdentityMatch.MATCH
    assert registry.verify("张三", ID_A) is IdentityMatch.NAME_MISMATCH
    assert registry.verify("王芳", ID_B) is IdentityMatch.MATCH
    assert registry.verify("王 芳", ID_B) is IdentityMatch.MATCH
    assert registry.verify("李四", ID_B) is IdentityMatch.NAME_MISMATCH
    assert registry.verify("王芳", "110105194912310021") is IdentityMatch.NOT_FOUND


def test_face_outcomes_and_single_use_tokens() -> None:
    face = FaceProvider()
    face.seed_outcome("subject-fail", FaceOutcome.FAIL)
    passed = face.verify("subject-ok", "token-1", "key-1", now=NOW)
    assert passed.result is FaceResult.PASSED
    assert 0.9 <= passed.score < 1.0
    failed = face.verify("subject-fail", "token-2", "key-2", now=NOW)
    assert failed.result is FaceResult.FAILED
    assert failed.failure_reason is FaceFailureReason.FACE_MISMATCH
    assert failed.score < 0.5
    replay = face.verify("subject-ok", "token-1", "key-3", now=NOW)
    assert replay.failure_reason is FaceFailureReason.TOKEN_REUSED


def test_synthetic_data_is_deterministic_and_plausible() -> None:
    assert synthetic.person_name("x", "y") == synthetic.person_name("x", "y")
    assert 2 <= len(synthetic.person_name("x")) <= 3
    counts = {
        len(synthetic.default_cards("bank-abc", str(i), Bank("bank-abc").bins)) for i in range(60)
    }
    assert counts == {0, 1, 2}


def test_received_log_filters_and_pages() -> None:
    log = ReceivedLog("carrier-cmcc")
    for i in range(5):
        log.record("SendSms", f"k{i}", replayed=i == 4, summary={"i": str(i)}, now=NOW)
    log.record("CountPhoneCards", "", replayed=False, summary={}, now=NOW)
    first = log.select(method="SendSms", include_replays=False, after=0, limit=2)
    assert [c.idempotency_key for c in first] == ["k0", "k1"]
    rest = log.select(method="SendSms", include_replays=False, after=first[-1].sequence, limit=9)
    assert [c.idempotency_key for c in rest] == ["k2", "k3"]
    assert len(log.select(method="SendSms", include_replays=True, after=0, limit=9)) == 5
    assert len(log.select(method="", include_replays=False, after=0, limit=9)) == 5


def test_idempotency_memo_recalls_and_refuses_another_body() -> None:
    memo: IdempotencyMemo[str] = IdempotencyMemo(capacity=2)
    memo.remember("SendSms", "k", "print-1", "first", {})
    recalled = memo.recall("SendSms", "k", "print-1")
    assert recalled is not None
    assert recalled.response == "first"
    assert memo.recall("StopPayment", "k", "print-1") is None
    with pytest.raises(KeyReused):
        memo.recall("SendSms", "k", "print-2")
    memo.remember("a", "1", "p", "x", {})
    memo.remember("a", "2", "p", "y", {})
    assert memo.recall("SendSms", "k", "print-1") is None  # the oldest was forgotten
