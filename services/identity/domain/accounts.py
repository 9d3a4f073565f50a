"""Accounts a verified person binds to their identity, and what a look-up may say about them."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from services.common.indicators import IndicatorKind

#: The kinds of account a person can bind: QQ, WeChat, Alipay / WeChat Pay, bank accounts.
BINDABLE_KINDS = frozenset(
    {
        IndicatorKind.QQ_NUMBER,
        IndicatorKind.WECHAT_ID,
        IndicatorKind.PAYMENT_ACCOUNT,
        IndicatorKind.BANK_ACCOUNT,
    }
)


class Confirmation(enum.IntEnum):
    """How a binding was established; numbers match the proto's AccountConfirmation."""

    SELF_DECLARED = 1  # the holder said so; no partner can confirm internet accounts yet
    BANK_CONFIRMED = 2  # the bank confirmed the account holder's name is the user's


def confirmation_for(kind: IndicatorKind) -> Confirmation:
    """Bank accounts must be confirmed by the bank before they are bound; others are declared."""
    if kind is IndicatorKind.BANK_ACCOUNT:
        return Confirmation.BANK_CONFIRMED
    return Confirmation.SELF_DECLARED


@dataclass(frozen=True, slots=True)
class BoundAccount:
    id: str
    user_id: str
    kind: IndicatorKind
    masked_account: str
    confirmation: Confirmation
    create_time: datetime


class PayeeMatch(enum.IntEnum):
    """The answer to a confirmation of payee; numbers match the proto's PayeeMatch."""

    MATCH = 1
    CLOSE_MATCH = 2
    NO_MATCH = 3
    UNAVAILABLE = 4


class PayeeSource(enum.IntEnum):
    """Numbers match the proto's PayeeSource."""

    BOUND_ACCOUNT = 1
    BANK = 2


#: The accounts a confirmation of payee is about.
PAYEE_KINDS = frozenset({IndicatorKind.BANK_ACCOUNT, IndicatorKind.PAYMENT_ACCOUNT})
