"""The outbox handlers: what the relay does with each event the report service wrote.

Each handler reads the row the event points at and calls a peer with a request
id derived from our own keys, so after a crash (ours or the peer's) the repeat
is recognised by the peer and applied once. A handler that raises is retried
with backoff; ``PermanentFailure`` stops the retries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from services.common.db import Database
from services.common.indicators import Indicator, display
from services.common.logs import get_logger
from services.common.outbox import Handler, OutboxEvent, PermanentFailure
from services.report.adapters.repository import ReportRepository
from services.report.domain import case_lifecycle
from services.report.domain.access import victim_user_id
from services.report.domain.corroboration import Rules
from services.report.domain.listing import (
    SOURCE_ID,
    Retire,
    RiskLevel,
    Upsert,
    listing_for,
    payee_reason,
    sync_request_id,
)
from services.report.domain.model import (
    Case,
    FraudCategory,
    Money,
    Payee,
    StopPaymentStatus,
    case_name,
)
from services.report.service_layer import cases, events
from services.report.service_layer.cases import OrderState
from services.report.service_layer.unit_of_work import ReportUnitOfWork

log = get_logger("report")

#: How long one relay may talk to the risk service about one indicator; well above a
#: call's deadline, so a lease lapses only when its holder died.
SYNC_LEASE = timedelta(seconds=15)


class RiskList(Protocol):
    async def upsert(
        self,
        request_id: str,
        indicator: Indicator,
        *,
        case: bool,
        source_id: str,
        level: RiskLevel,
        categories: Sequence[FraudCategory],
        reason: str,
        reporter_count: int = 0,
    ) -> None: ...

    async def retire(
        self, request_id: str, indicator: Indicator, *, source_id: str, reason: str
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class StopPaymentAsk:
    """A stop-payment order for one payee, as the warning service is asked to send it."""

    request_id: str
    account: Indicator
    case_id: str
    amount: Money
    reason: str
    transaction_references: tuple[str, ...]
    legal_instrument_id: str
    #: The victim's app user id: the warning service tells them when funds are held.
    victim_user_id: str
    #: When the case was filed: the stop-payment delay (an SLI) is measured from it.
    filed: datetime | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    """An order the warning service refused for good: the payee's order FAILED."""

    account: Indicator
    detail: str
    name: str = ""
    status: StopPaymentStatus = StopPaymentStatus.FAILED
    held_amount: Money | None = None
    hold_expire_time: datetime | None = None


class BankOrders(Protocol):
    async def stop_payment(self, ask: StopPaymentAsk) -> OrderState: ...


class SyncBusy(Exception):
    """Another relay is talking to the risk service about this indicator; try again later."""


def stop_payment_reason(case: Case) -> str:
    category = case.category.name.lower().replace("_", " ")
    return (
        f"emergency stop-payment for case {case_name(case.id)} ({category} fraud), "
        "filed by the victim"
    )


class Delivery:
    def __init__(
        self,
        db: Database,
        risk: RiskList,
        banks: BankOrders,
        rules: Rules,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = db
        self.risk = risk
        self.banks = banks
        self.rules = rules
        self.clock = clock

    def handlers(self) -> dict[str, Handler]:
        return {
            events.SYNC_INDICATOR: self.sync_indicator,
            events.LIST_PAYEE: self.list_payee,
            events.STOP_PAYMENT: self.stop_payment,
        }

    async def sync_indicator(self, event: OutboxEvent) -> None:
        """Send the indicator's *current* assertion (not the one of the event's version).

        The lease makes one relay at a time speak for an indicator, so an older
        assertion never lands after a newer one; and an event whose version is
        already at the risk service (a later event sent it) does nothing.
        """
        indicator_id = events.decode_indicator_id(event.payload)
        now = self.clock()
        async with ReportUnitOfWork(self.db) as uow:
            leased = await uow.repo.lease_sync(indicator_id, now, now + SYNC_LEASE)
            row = await uow.repo.indicator(indicator_id)
            await uow.commit()
        if row is None:
            raise PermanentFailure(f"indicator {indicator_id} does not exist")
        if not leased:
            raise SyncBusy(f"indicator {indicator_id} is being synced by another relay")
        synced: int | None = None
        try:
            if row.synced_version >= row.version:
                return
            listing = listing_for(
                row.standing, row.reporter_count, row.categories, self.rules.window
            )
            request_id = sync_request_id(row.id, row.version)
            if isinstance(listing, Upsert):
                await self.risk.upsert(
                    request_id,
                    row.indicator,
                    case=False,
                    source_id=SOURCE_ID,
                    level=listing.level,
                    categories=listing.categories,
                    reason=listing.reason,
                    reporter_count=listing.reporter_count,
                )
            elif isinstance(listing, Retire):
                await self.risk.retire(
                    request_id, row.indicator, source_id=SOURCE_ID, reason=listing.reason
                )
            synced = row.version
            log.info(
                "indicator synced",
                indicator=display(row.indicator),
                standing=row.standing.name,
                version=row.version,
            )
        finally:
            async with ReportUnitOfWork(self.db) as uow:
                await uow.repo.release_sync(indicator_id, synced)
                await uow.commit()

    async def _payee(self, event: OutboxEvent) -> tuple[Case, Payee]:
        ref = events.PayeeRef.decode(event.payload)
        async with self.db.read() as conn:
            case = await ReportRepository(conn).get_case(ref.case_id)
        if case is None or ref.position >= len(case.payees):
            raise PermanentFailure(f"no payee {ref.position} in {case_name(ref.case_id)}")
        return case, case.payees[ref.position]

    async def list_payee(self, event: OutboxEvent) -> None:
        """The payee account goes on the risk list at HIGH, as this case's assertion."""
        case, payee = await self._payee(event)
        await self.risk.upsert(
            event.key,
            payee.account,
            case=True,
            source_id=case_name(case.id),
            level=RiskLevel.HIGH,
            categories=[case.category],
            reason=payee_reason(case.id),
        )

    async def stop_payment(self, event: OutboxEvent) -> None:
        """Hand the order to the warning service, which delivers it to the bank reliably."""
        case, payee = await self._payee(event)
        if payee.status.final:
            return  # already answered (a repeat after a crash between call and commit)
        ask = StopPaymentAsk(
            request_id=event.key,
            account=payee.account,
            case_id=case.id,
            amount=payee.amount or case.amount_lost,
            reason=stop_payment_reason(case),
            transaction_references=payee.transaction_references,
            legal_instrument_id=case_lifecycle.legal_instrument_id(case.id, payee.position),
            victim_user_id=victim_user_id(case.filer),
            filed=case.create_time,
        )
        try:
            order = await self.banks.stop_payment(ask)
        except PermanentFailure as exc:
            await self._record(case, payee, Failed(payee.account, str(exc)))
            raise
        await self._record(case, payee, order)
        log.info(
            "stop-payment order created",
            case=case_name(case.id),
            account=display(payee.account),
            order=order.name,
            status=order.status.name,
        )

    async def _record(self, case: Case, payee: Payee, order: OrderState) -> None:
        async with ReportUnitOfWork(self.db) as uow:
            now = self.clock()
            if await cases.record_order(uow.repo, case.id, payee.position, order, now):
                await cases.restate(uow.repo, case.id, now)
            await uow.commit()
