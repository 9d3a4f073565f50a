"""A bank's state and rules: stop-payment and freeze orders, card holders, payee names.

An account is held by this bank when it was seeded here, or when its BIN (cards) or
provider (payment accounts) routes to this bank (see ``routing``). Unseeded accounts
have a deterministic holder name; unseeded persons are bound to the first name given
for their ID number, as the registry does.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

from services.common import resident_id
from services.common.indicators import Indicator, IndicatorKind
from services.partners.domain import synthetic
from services.partners.domain.cards import CardType, bins_of
from services.partners.domain.names import same_name
from services.partners.domain.payee import PayeeNameMatch, compare_payee_name
from services.partners.domain.routing import bank_for_account

#: Emergency stop-payment holds funds for 48 hours; a freeze lasts six months.
STOP_PAYMENT_HOLD = timedelta(hours=48)
FREEZE_PERIOD = timedelta(days=180)
HELD_CURRENCY = "CNY"


class OrderKind(enum.Enum):
    STOP_PAYMENT = "SP"
    FREEZE = "FZ"


class OrderRejectReason(enum.IntEnum):
    """Numbers match antifraud.partner.v1.PaymentOrderRejectReason."""

    ACCOUNT_NOT_FOUND = 1
    ACCOUNT_CLOSED = 2
    CURRENCY_NOT_SUPPORTED = 3


class HoldState(enum.IntEnum):
    """Numbers match antifraud.partner.v1.HoldState."""

    HELD = 1
    RELEASED = 2
    RETURNED = 3
    EXPIRED = 4


class Disposition(enum.IntEnum):
    """Numbers match antifraud.partner.v1.HoldDisposition."""

    RELEASE = 1
    RETURN_TO_VICTIM = 2


_ENDS = {Disposition.RELEASE: HoldState.RELEASED, Disposition.RETURN_TO_VICTIM: HoldState.RETURNED}


class HoldEnded(Exception):
    """The hold is no longer in force: it cannot be extended or ended again."""


@dataclass(frozen=True, slots=True)
class Amount:
    currency: str
    value: Decimal


@dataclass(frozen=True, slots=True)
class OrderRequest:
    kind: OrderKind
    account: Indicator
    case_reference: str
    amount: Amount | None  # None: a freeze of the whole balance
    reason: str
    requesting_authority: str
    transaction_references: tuple[str, ...] = ()
    legal_instrument_id: str = ""


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    reference: str  # empty when rejected
    reject_reason: OrderRejectReason | None
    reject_detail: str
    answer_time: datetime
    expire_time: datetime | None
    held: Amount | None = None


@dataclass(frozen=True, slots=True)
class Hold:
    """An acknowledged order's hold as the bank keeps it."""

    reference: str
    kind: OrderKind
    state: HoldState
    held: Amount | None  # None: a freeze of the whole balance
    expire_time: datetime
    legal_instrument_id: str
    update_time: datetime


@dataclass(frozen=True, slots=True)
class Card:
    number: str
    card_type: CardType


@dataclass(frozen=True, slots=True)
class AccountRecord:
    holder_name: str
    closed: bool = False
    holder_id: str = ""  # the holder's resident ID number, when seeded
    balance: Decimal | None = None  # None: any amount asked for is there to hold


@dataclass(frozen=True, slots=True)
class Customer:
    name: str
    cards: tuple[Card, ...]


class Bank:
    def __init__(self, name: str) -> None:
        self.name = name
        self.bins = bins_of(name)
        self._code = name.rpartition("-")[2].upper()
        self._customers: dict[str, Customer] = {}
        self._accounts: dict[str, AccountRecord] = {}
        self._orders: dict[str, OrderRequest] = {}
        self._holds: dict[str, Hold] = {}

    def reset(self) -> None:
        self._customers.clear()
        self._accounts.clear()
        self._orders.clear()
        self._holds.clear()

    # -- seeding ---------------------------------------------------------------------------

    def seed_customer(self, id_number: str, name: str, cards: list[Card]) -> None:
        """Sets a customer's cards here, replacing earlier ones; each card is their account."""
        self._customers[id_number] = Customer(name, tuple(cards))
        for card in cards:
            self._accounts[card.number] = AccountRecord(name)

    def seed_account(
        self,
        account: Indicator,
        holder_name: str,
        *,
        closed: bool,
        holder_id: str = "",
        balance: Decimal | None = None,
    ) -> None:
        self._accounts[_account_key(account)] = AccountRecord(
            holder_name, closed, holder_id, balance
        )

    # -- accounts --------------------------------------------------------------------------

    def account(self, account: Indicator) -> AccountRecord | None:
        """The record of an account this bank holds, or None."""
        seeded = self._accounts.get(_account_key(account))
        if seeded is not None:
            return seeded
        if account.kind in (IndicatorKind.WECHAT_ID, IndicatorKind.QQ_NUMBER):
            return None  # platform accounts exist only as seeded
        if bank_for_account(account) != self.name:
            return None
        return AccountRecord(synthetic.holder_name(self.name, account.value))

    def place_order(self, order: OrderRequest, *, now: datetime) -> OrderOutcome:
        record = self.account(order.account)
        if record is None:
            return self._reject(OrderRejectReason.ACCOUNT_NOT_FOUND, "no such account", now)
        if record.closed:
            return self._reject(OrderRejectReason.ACCOUNT_CLOSED, "the account is closed", now)
        if order.amount is not None and order.amount.currency != HELD_CURRENCY:
            return self._reject(
                OrderRejectReason.CURRENCY_NOT_SUPPORTED,
                f"only {HELD_CURRENCY} is held for this account",
                now,
            )
        reference = f"{self._code}-{order.kind.value}-{now:%Y%m%d}-{uuid.uuid4().hex[:12].upper()}"
        held = order.amount
        if held is not None and record.balance is not None:
            # Only what is still in the account can be held.
            held = Amount(held.currency, max(Decimal(0), min(held.value, record.balance)))
        self._orders[reference] = order
        expire = now + _period(order.kind)
        self._holds[reference] = Hold(
            reference, order.kind, HoldState.HELD, held, expire, order.legal_instrument_id, now
        )
        return OrderOutcome(reference, None, "", now, expire, held)

    @staticmethod
    def _reject(reason: OrderRejectReason, detail: str, now: datetime) -> OrderOutcome:
        return OrderOutcome("", reason, detail, now, None)

    def order(self, reference: str) -> OrderRequest | None:
        return self._orders.get(reference)

    def hold(self, reference: str, *, now: datetime) -> Hold | None:
        """An order's hold as it stands now (a hold past its expiry has lapsed)."""
        found = self._holds.get(reference)
        if found is not None and found.state is HoldState.HELD and now >= found.expire_time:
            found = self._holds[reference] = replace(
                found, state=HoldState.EXPIRED, update_time=now
            )
        return found

    def _held(self, reference: str, now: datetime) -> Hold:
        found = self.hold(reference, now=now)
        if found is None:
            raise KeyError(reference)
        if found.state is not HoldState.HELD:
            raise HoldEnded(f"the hold is {found.state.name.lower()}")
        return found

    def extend_hold(self, reference: str, instrument: str, *, now: datetime) -> Hold:
        """Another period from now under a new instrument. KeyError for an unknown reference,
        HoldEnded for a hold no longer in force."""
        found = self._held(reference, now)
        extended = replace(
            found,
            expire_time=now + _period(found.kind),
            legal_instrument_id=instrument,
            update_time=now,
        )
        self._holds[reference] = extended
        return extended

    def release_hold(
        self, reference: str, disposition: Disposition, instrument: str, *, now: datetime
    ) -> Hold:
        """End a hold: to the holder, or back to the victim."""
        found = self._held(reference, now)
        ended = replace(
            found, state=_ENDS[disposition], legal_instrument_id=instrument, update_time=now
        )
        self._holds[reference] = ended
        return ended

    # -- look-ups --------------------------------------------------------------------------

    def cards(self, id_number: str, name: str) -> list[Card]:
        """The cards a person holds here, by number; none when the name is not the customer's."""
        customer = self._customers.get(id_number)
        if customer is None:
            if not resident_id.checksum_valid(id_number):
                return []  # no such person
            cards = [
                Card(number, card_type)
                for number, card_type in synthetic.default_cards(self.name, id_number, self.bins)
            ]
            self.seed_customer(id_number, name, cards)
            customer = self._customers[id_number]
        if not same_name(customer.name, name):
            return []
        return sorted(customer.cards, key=lambda card: card.number)

    def confirm_holder(self, account: Indicator, id_number: str, name: str) -> HolderMatch:
        """Whether the account is held here by this ID number and name; nothing else."""
        record = self.account(account)
        if record is None:
            return HolderMatch.ACCOUNT_NOT_FOUND
        if record.holder_id and record.holder_id != id_number:
            return HolderMatch.NO_MATCH
        if not record.holder_id:
            # A card of a seeded customer: the customer's ID is on file. Else the name only.
            owner = next(
                (
                    holder
                    for holder, customer in self._customers.items()
                    if any(card.number == account.value for card in customer.cards)
                ),
                None,
            )
            if owner is not None and owner != id_number:
                return HolderMatch.NO_MATCH
        return HolderMatch.MATCH if same_name(record.holder_name, name) else HolderMatch.NO_MATCH

    def check_payee(self, account: Indicator, typed_name: str) -> tuple[PayeeNameMatch, str]:
        """How the typed name compares with the holder's, and the holder's name (empty when
        the account is not found)."""
        record = self.account(account)
        if record is None:
            return PayeeNameMatch.ACCOUNT_NOT_FOUND, ""
        return compare_payee_name(typed_name, record.holder_name), record.holder_name


class HolderMatch(enum.IntEnum):
    """Numbers match antifraud.partner.v1.HolderMatch."""

    MATCH = 1
    NO_MATCH = 2
    ACCOUNT_NOT_FOUND = 3


def _period(kind: OrderKind) -> timedelta:
    return STOP_PAYMENT_HOLD if kind is OrderKind.STOP_PAYMENT else FREEZE_PERIOD


def _account_key(account: Indicator) -> str:
    # Bank and payment accounts keep their plain value (the card number is the key the
    # customer seeding uses); platform accounts are prefixed so a QQ number is no card.
    if account.kind in (IndicatorKind.WECHAT_ID, IndicatorKind.QQ_NUMBER):
        return f"{account.kind.name}:{account.value}"
    return account.value


def is_order_account(account: Indicator) -> bool:
    """Stop-payment, freeze and payee checks take bank and payment accounts only."""
    return account.kind in (IndicatorKind.BANK_ACCOUNT, IndicatorKind.PAYMENT_ACCOUNT)
