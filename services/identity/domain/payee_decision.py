"""The pre-payment decision for banks: one action with reasons, from confirmation of payee,
the account's risk level and the payer's recent contact with listed numbers.

The most serious signal decides; signals that only warn on their own make a hold longer
when they come with a risky contact. Nothing here reads or writes anything.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from services.common.fraud_types import RiskLevel
from services.identity.domain.accounts import PayeeMatch


class PayeeAction(enum.IntEnum):
    """Numbers match antifraud.identity.v1.PayeeAction; a larger one is more serious."""

    ALLOW = 1
    WARN = 2
    HOLD = 3
    BLOCK = 4


class PayeeReason(enum.IntEnum):
    """Numbers match antifraud.identity.v1.PayeeReason."""

    NAME_MISMATCH = 1
    NAME_CLOSE_MATCH = 2
    NAME_UNCHECKED = 3
    ACCOUNT_HIGH_RISK = 4
    ACCOUNT_MEDIUM_RISK = 5
    ACCOUNT_LOW_RISK = 6
    ACCOUNT_RISK_UNCHECKED = 7
    PAYER_RECENT_RISKY_CONTACT = 8


class PayeeOutcome(enum.IntEnum):
    """What the bank did; numbers match antifraud.identity.v1.PayeeOutcome."""

    PAID = 1
    CANCELLED_BY_PAYER = 2
    HELD = 3
    BLOCKED = 4


#: How long a payment is held: a corroborated account, and a risky contact with another
#: warning sign, a day; a risky contact on its own, half an hour to think and call 96110.
LONG_COOLING_OFF = timedelta(hours=24)
SHORT_COOLING_OFF = timedelta(minutes=30)

_NAME_REASONS = {
    PayeeMatch.NO_MATCH: PayeeReason.NAME_MISMATCH,
    PayeeMatch.CLOSE_MATCH: PayeeReason.NAME_CLOSE_MATCH,
    PayeeMatch.UNAVAILABLE: PayeeReason.NAME_UNCHECKED,
}
_RISK_REASONS = {
    RiskLevel.HIGH: PayeeReason.ACCOUNT_HIGH_RISK,
    RiskLevel.MEDIUM: PayeeReason.ACCOUNT_MEDIUM_RISK,
    RiskLevel.LOW: PayeeReason.ACCOUNT_LOW_RISK,
}
#: Reasons by seriousness, for the order they are given in.
_ORDER = [
    PayeeReason.ACCOUNT_HIGH_RISK,
    PayeeReason.ACCOUNT_MEDIUM_RISK,
    PayeeReason.PAYER_RECENT_RISKY_CONTACT,
    PayeeReason.NAME_MISMATCH,
    PayeeReason.ACCOUNT_LOW_RISK,
    PayeeReason.NAME_CLOSE_MATCH,
    PayeeReason.ACCOUNT_RISK_UNCHECKED,
    PayeeReason.NAME_UNCHECKED,
]


@dataclass(frozen=True, slots=True)
class Signals:
    """What is known about a payment: ``None`` for a source that could not be asked."""

    name: PayeeMatch | None  # None: no name was given
    risk: RiskLevel | None  # None: the risk list did not answer
    risky_contact: bool  # only ever True for a registered payer who consented


@dataclass(frozen=True, slots=True)
class Decision:
    action: PayeeAction
    reasons: tuple[PayeeReason, ...]
    cooling_off: timedelta | None  # set for HOLD only


def reasons_of(signals: Signals) -> list[PayeeReason]:
    found: set[PayeeReason] = set()
    if signals.name is not None and signals.name in _NAME_REASONS:
        found.add(_NAME_REASONS[signals.name])
    if signals.risk is None:
        found.add(PayeeReason.ACCOUNT_RISK_UNCHECKED)
    elif signals.risk in _RISK_REASONS:
        found.add(_RISK_REASONS[signals.risk])
    if signals.risky_contact:
        found.add(PayeeReason.PAYER_RECENT_RISKY_CONTACT)
    return [r for r in _ORDER if r in found]


def _cooling_off(reasons: Iterable[PayeeReason]) -> timedelta:
    given = set(reasons)
    if PayeeReason.ACCOUNT_MEDIUM_RISK in given:
        return LONG_COOLING_OFF
    # A risky contact with a second warning sign (a wrong name, a low-risk account).
    if given & {PayeeReason.NAME_MISMATCH, PayeeReason.ACCOUNT_LOW_RISK}:
        return LONG_COOLING_OFF
    return SHORT_COOLING_OFF


def decide(signals: Signals) -> Decision:
    """HIGH risk blocks; MEDIUM risk or a recent risky contact holds; anything else that is
    known against the payment (a wrong or close name, LOW risk, a source that could not be
    asked) warns; nothing against it allows."""
    reasons = reasons_of(signals)
    if PayeeReason.ACCOUNT_HIGH_RISK in reasons:
        return Decision(PayeeAction.BLOCK, tuple(reasons), None)
    if {PayeeReason.ACCOUNT_MEDIUM_RISK, PayeeReason.PAYER_RECENT_RISKY_CONTACT} & set(reasons):
        return Decision(PayeeAction.HOLD, tuple(reasons), _cooling_off(reasons))
    if reasons:
        return Decision(PayeeAction.WARN, tuple(reasons), None)
    return Decision(PayeeAction.ALLOW, (), None)
