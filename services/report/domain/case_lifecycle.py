"""Where a case stands: derived from its stop-payment orders' answers and the officers' acts.

filed -> orders sent -> held (a bank holds funds) -> released or transferred (every hold
ended) -> closed (an officer closed it). Nothing here reads or writes anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from services.report.domain.model import CaseStatus, Money, Payee, StopPaymentStatus

S = StopPaymentStatus


def status_of(payees: Sequence[Payee], closed: bool) -> CaseStatus:
    """The case's status from its orders: any live hold makes it HELD; once every hold ended,
    TRANSFERRED if funds went back to the victim, else RELEASED."""
    if closed:
        return CaseStatus.CLOSED
    statuses = {p.status for p in payees}
    if S.ACKNOWLEDGED in statuses:
        return CaseStatus.HELD
    if S.RETURNED in statuses:
        return CaseStatus.TRANSFERRED
    if statuses & {S.RELEASED, S.EXPIRED}:
        return CaseStatus.RELEASED
    if statuses - {S.PENDING, S.UNSPECIFIED}:
        return CaseStatus.ORDERS_SENT
    return CaseStatus.FILED


def may_close(payees: Sequence[Payee]) -> bool:
    """A case is not closed while a bank still holds funds for it."""
    return all(p.status is not S.ACKNOWLEDGED for p in payees)


def total(amounts: Iterable[Money | None], currency: str = "CNY") -> Money:
    """The sum of amounts in one currency (others are not added), normalised units + nanos."""
    nanos = sum(
        a.units * 1_000_000_000 + a.nanos
        for a in amounts
        if a is not None and a.currency == currency
    )
    return Money(currency, nanos // 1_000_000_000, nanos % 1_000_000_000)


def held_amount(payees: Sequence[Payee]) -> Money:
    """What the banks hold now for the case."""
    return total(p.held_amount for p in payees if p.status is S.ACKNOWLEDGED)


def legal_instrument_id(case_id: str, position: int) -> str:
    """The stop-payment notice number (止付通知书) issued with the case for one payee."""
    return f"ZF-{case_id[:16].upper()}-{position:02d}"
