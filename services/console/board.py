"""The cases board: each case in the column of its status (the report service's case
lifecycle), with where each payee's stop-payment order stands and what the banks hold."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from services.api.antifraud.common.v1 import common_pb2 as c
from services.api.antifraud.report.v1 import report_pb2 as rp
from services.api.antifraud.warning.v1 import warning_pb2 as wn

#: Columns of the board, in the order a case moves through them, by its status.
STATUS_COLUMNS = {
    rp.CASE_STATUS_FILED: "filed",
    rp.CASE_STATUS_ORDERS_SENT: "orders_sent",
    rp.CASE_STATUS_HELD: "held",
    rp.CASE_STATUS_RELEASED: "released",
    rp.CASE_STATUS_TRANSFERRED: "transferred",
    rp.CASE_STATUS_CLOSED: "closed",
}
COLUMNS = tuple(STATUS_COLUMNS.values())
_TROUBLE = {rp.STOP_PAYMENT_STATUS_REJECTED, rp.STOP_PAYMENT_STATUS_FAILED}
_ORDER_STATUS = {
    wn.BANK_ORDER_STATE_QUEUED: rp.STOP_PAYMENT_STATUS_QUEUED,
    wn.BANK_ORDER_STATE_SENT: rp.STOP_PAYMENT_STATUS_SENT,
    wn.BANK_ORDER_STATE_ACKNOWLEDGED: rp.STOP_PAYMENT_STATUS_ACKNOWLEDGED,
    wn.BANK_ORDER_STATE_REJECTED: rp.STOP_PAYMENT_STATUS_REJECTED,
    wn.BANK_ORDER_STATE_FAILED: rp.STOP_PAYMENT_STATUS_FAILED,
}


def yuan(money: c.Money) -> Decimal:
    return Decimal(money.units) + Decimal(money.nanos) / Decimal(1_000_000_000)


@dataclass
class CaseCard:
    case: rp.Case
    #: Bank orders of the case by their resource name.
    orders: dict[str, wn.BankOrder] = field(default_factory=dict)

    def status(self, payee: rp.Payee) -> int:
        """Where the payee's order stands: the warning service's order when it was read (the
        case's copy is the last status the report service heard of)."""
        order = self.order_of(payee)
        if order is not None and order.state in _ORDER_STATUS:
            return _ORDER_STATUS[order.state]
        return int(payee.stop_payment_status)

    @property
    def column(self) -> str:
        """The case's status; a case read before it had one is FILED."""
        return STATUS_COLUMNS.get(self.case.status, "filed")

    @property
    def attention(self) -> bool:
        """A bank refused an order or it failed: an officer follows it up."""
        return any(self.status(p) in _TROUBLE for p in self.case.payees)

    def order_of(self, payee: rp.Payee) -> wn.BankOrder | None:
        """The payee's order: by its name, or (before the case heard the name back) by the
        case and the account it is for."""
        return self.orders.get(payee.bank_order) or self.orders.get(payee.account.value)

    def held(self, payee: rp.Payee) -> Decimal:
        """What the bank holds on this payee: the amount the bank says it holds, else the
        order's amount once acknowledged."""
        order = self.order_of(payee)
        if order is not None and order.HasField("held_amount"):
            return yuan(order.held_amount)
        if order is not None and order.state == wn.BANK_ORDER_STATE_ACKNOWLEDGED:
            return yuan(order.amount)
        if self.status(payee) == rp.STOP_PAYMENT_STATUS_ACKNOWLEDGED:
            return yuan(payee.amount) if payee.HasField("amount") else yuan(self.case.amount_lost)
        return Decimal(0)

    @property
    def held_total(self) -> Decimal:
        return sum((self.held(p) for p in self.case.payees), Decimal(0))


def case_id(name: str) -> str:
    return name.removeprefix("cases/")


def build_board(
    cases: Iterable[rp.Case], orders: Iterable[wn.BankOrder]
) -> dict[str, list[CaseCard]]:
    by_case: dict[str, dict[str, wn.BankOrder]] = {}
    for order in orders:
        # Each order is found by its name and by the account it is for, within its case.
        mine = by_case.setdefault(case_id(order.case_id), {})
        mine[order.name] = order
        mine.setdefault(order.account.value, order)
    board: dict[str, list[CaseCard]] = {column: [] for column in COLUMNS}
    for case in cases:
        card = CaseCard(case, by_case.get(case_id(case.name), {}))
        board[card.column].append(card)
    return board
