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

    SELF_DECLARED = 1  # the holder said so (bindings made before partners confirmed them)
    BANK_CONFIRMED = 2  # the bank confirmed the account is held by the user's ID and name
    PLATFORM_CONFIRMED = 3  # the platform (WeChat, QQ, Alipay, WeChat Pay) confirmed it

    @property
    def vouched(self) -> bool:
        """Whether a partner confirmed the binding, so that we may vouch for it."""
        return self is not Confirmation.SELF_DECLARED


def confirmation_for(kind: IndicatorKind) -> Confirmation:
    """Every account is confirmed by its partner before it is bound: a bank account by its
    bank, a payment, WeChat or QQ account by its platform."""
    if kind is IndicatorKind.BANK_ACCOUNT:
        return Confirmation.BANK_CONFIRMED
    return Confirmation.PLATFORM_CONFIRMED


class HolderAnswer(enum.IntEnum):
    """A partner's answer to "is this account this person's"; numbers match
    antifraud.partner.v1.HolderMatch."""

    MATCH = 1
    NO_MATCH = 2
    ACCOUNT_NOT_FOUND = 3


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
