"""The pre-payment decision rule: each action, its reasons in order, the cooling-off."""

from __future__ import annotations

from datetime import timedelta

from services.common.fraud_types import RiskLevel
from services.identity.domain.accounts import PayeeMatch
from services.identity.domain.payee_decision import (
    PayeeAction,
    PayeeReason,
    Signals,
    decide,
)


def test_nothing_against_a_payment_allows_it() -> None:
    decided = decide(Signals(PayeeMatch.MATCH, RiskLevel.NONE, risky_contact=False))
    assert (decided.action, decided.reasons, decided.cooling_off) == (PayeeAction.ALLOW, (), None)
    assert decide(Signals(None, RiskLevel.NONE, risky_contact=False)).action is PayeeAction.ALLOW


def test_a_wrong_name_low_risk_or_an_unanswered_source_warns() -> None:
    wrong = decide(Signals(PayeeMatch.NO_MATCH, RiskLevel.LOW, risky_contact=False))
    assert wrong.action is PayeeAction.WARN
    assert wrong.reasons == (PayeeReason.NAME_MISMATCH, PayeeReason.ACCOUNT_LOW_RISK)
    unknown = decide(Signals(PayeeMatch.UNAVAILABLE, None, risky_contact=False))
    assert unknown.action is PayeeAction.WARN
    assert unknown.reasons == (PayeeReason.ACCOUNT_RISK_UNCHECKED, PayeeReason.NAME_UNCHECKED)


def test_medium_risk_or_a_risky_contact_holds_for_a_cooling_off() -> None:
    medium = decide(Signals(PayeeMatch.MATCH, RiskLevel.MEDIUM, risky_contact=False))
    assert (medium.action, medium.cooling_off) == (PayeeAction.HOLD, timedelta(hours=24))
    contact = decide(Signals(PayeeMatch.MATCH, RiskLevel.NONE, risky_contact=True))
    assert (contact.action, contact.cooling_off) == (PayeeAction.HOLD, timedelta(minutes=30))
    assert contact.reasons == (PayeeReason.PAYER_RECENT_RISKY_CONTACT,)
    both = decide(Signals(PayeeMatch.NO_MATCH, RiskLevel.NONE, risky_contact=True))
    assert (both.action, both.cooling_off) == (PayeeAction.HOLD, timedelta(hours=24))


def test_high_risk_blocks_whatever_else_is_known() -> None:
    blocked = decide(Signals(PayeeMatch.MATCH, RiskLevel.HIGH, risky_contact=True))
    assert blocked.action is PayeeAction.BLOCK
    assert blocked.cooling_off is None
    assert blocked.reasons[0] is PayeeReason.ACCOUNT_HIGH_RISK
