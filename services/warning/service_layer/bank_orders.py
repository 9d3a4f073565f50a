"""Stop-payment and freeze orders: written with their outbox event, sent by the relay.

The order id is the bank's idempotency key: a crash between the bank's answer
and our recording it repeats the call, and the bank answers it from its record
without a second hold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from services.common import metrics
from services.common.db import Database, UnitOfWork
from services.common.errors import FailedPrecondition, NotFound
from services.common.indicators import Indicator, display
from services.common.logs import get_logger
from services.common.outbox import OutboxEvent, PermanentFailure
from services.warning.adapters import bank_orders_repo
from services.warning.adapters.banks import BankClient
from services.warning.adapters.directory import PartnerDirectory
from services.warning.adapters.partner_errors import PartnerError
from services.warning.domain.model import (
    FINAL_BANK_ORDER_STATES,
    BankOrder,
    BankOrderState,
    BankOrderType,
    Hold,
    HoldDisposition,
    Money,
    NotificationPurpose,
)
from services.warning.service_layer import notifications
from services.warning.service_layer.warnings import new_id, resolve_user

log = get_logger("warning.bank_orders")

NO_BANK = "no partner bank holds the account"


async def create(
    uow: UnitOfWork,
    directory: PartnerDirectory,
    order_type: BankOrderType,
    account: Indicator,
    case_id: str,
    amount: Money | None,
    reason: str,
    now: datetime,
    *,
    transaction_references: tuple[str, ...] = (),
    legal_instrument_id: str = "",
    victim_user_id: str = "",
    case_file_time: datetime | None = None,
) -> BankOrder:
    """Write the order with its outbox event. The bank is the one the directory names; when
    it names none, every partner bank is asked in turn when the order is sent."""
    bank = directory.bank_for(account)
    order = BankOrder(
        id=new_id(),
        order_type=order_type,
        account=account,
        bank=bank,
        case_id=case_id,
        amount=amount,
        reason=reason,
        state=BankOrderState.QUEUED,
        bank_reference=None,
        failure_reason=None,
        attempts=0,
        create_time=now,
        send_time=None,
        answer_time=None,
        update_time=now,
        case_file_time=min(case_file_time, now) if case_file_time is not None else None,
        transaction_references=transaction_references,
        legal_instrument_id=legal_instrument_id,
        victim_user_id=victim_user_id,
    )
    await bank_orders_repo.insert(uow.conn, order)
    log.info(
        "bank order created",
        order_id=order.id,
        order_type=order_type.name,
        account=display(account),
        bank=bank,
    )
    return order


async def get(conn: AsyncConnection, order_id: str) -> BankOrder:
    found = await bank_orders_repo.get(conn, order_id)
    if found is None:
        raise NotFound(f"bankOrders/{order_id} not found")
    return found


@dataclass
class BankOrderSender:
    """The outbox handler of topic ``bank_order``."""

    db: Database
    banks: BankClient
    directory: PartnerDirectory
    max_attempts: int
    #: Tells the push hub and the relay that a notification was written for these users.
    notified: Callable[[list[str | None]], None] = lambda users: None

    async def __call__(self, event: OutboxEvent) -> None:
        order_id = event.payload.decode()
        async with UnitOfWork(self.db) as uow:
            order = await bank_orders_repo.get(uow.conn, order_id)
            if order is None:
                raise PermanentFailure(f"bank order {order_id} does not exist")
            if order.state in FINAL_BANK_ORDER_STATES:
                return  # answered before a crash: nothing to repeat
            await bank_orders_repo.mark_sending(uow.conn, order_id, event.attempts, _now())
            await uow.commit()
        # Each bank keeps its own idempotency record, so offering the same key to several
        # banks is safe; a repeat after a crash is answered from each bank's record.
        candidates = [order.bank] if order.bank is not None else list(self.directory.banks)
        for bank in candidates:
            try:
                answer = await self.banks.send(bank, order)
            except PartnerError as exc:
                if exc.permanent or event.attempts >= self.max_attempts:
                    await self._record(order, BankOrderState.FAILED, None, None, str(exc))
                    raise PermanentFailure(str(exc)) from None
                async with UnitOfWork(self.db) as uow:
                    await bank_orders_repo.note_failed_attempt(uow.conn, order_id, str(exc), _now())
                    await uow.commit()
                raise
            if answer.acknowledged:
                await self._record(
                    order, BankOrderState.ACKNOWLEDGED, bank, answer.reference, None, answer.hold
                )
                if order.order_type == BankOrderType.STOP_PAYMENT:
                    since = order.case_file_time or order.create_time
                    metrics.SLI_STOP_PAYMENT.observe(max(0.0, (_now() - since).total_seconds()))
                return
            if not (answer.not_held and order.bank is None):
                await self._record(order, BankOrderState.REJECTED, bank, None, answer.detail)
                return
        await self._record(order, BankOrderState.REJECTED, None, None, NO_BANK)

    async def _record(
        self,
        order: BankOrder,
        state: BankOrderState,
        bank: str | None,
        reference: str | None,
        failure: str | None,
        hold: Hold | None = None,
    ) -> None:
        told: str | None = None
        async with UnitOfWork(self.db) as uow:
            now = _now()
            recorded = await bank_orders_repo.record_answer(
                uow.conn, order.id, state, bank, reference, failure, now, hold
            )
            if recorded and hold is not None and hold.held_amount is not None:
                # The victim learns of the hold with the answer: one transaction, one notice.
                told = await _tell_victim(uow, order, hold.held_amount, now)
            await uow.commit()
        if told is not None:
            self.notified([told])
        log.info("bank order answered", order_id=order.id, bank=bank, state=state.name)


def held_notice(order: BankOrder, held: Money) -> str:
    """The victim's push when a bank holds funds: the case and the amount, nothing personal."""
    amount = f"{held.units}.{held.nanos // 10_000_000:02d} {held.currency_code}"
    return (
        f"【反诈中心】您的案件 cases/{order.case_id} 有进展：银行已止付 {amount}。"
        f" Your case cases/{order.case_id}: a bank holds {amount}."
    )


async def _tell_victim(uow: UnitOfWork, order: BankOrder, held: Money, now: datetime) -> str | None:
    """A CASE_UPDATE notification for the order's victim; None when there is no one to tell
    (no victim named, or no app profile: filed at a police counter)."""
    if not order.victim_user_id:
        return None
    try:
        person = await resolve_user(uow.conn, order.victim_user_id)
    except NotFound:
        log.info("hold not pushed: victim has no app profile", order_id=order.id)
        return None
    await notifications.send(
        uow, person, held_notice(order, held), NotificationPurpose.CASE_UPDATE, now
    )
    return person.user_id


# --- officers' acts on a hold -----------------------------------------------------------------


def _held(order: BankOrder) -> tuple[str, str]:
    """The bank and reference of an order that holds funds; FAILED_PRECONDITION otherwise."""
    if (
        order.state is not BankOrderState.ACKNOWLEDGED
        or order.bank is None
        or not order.bank_reference
    ):
        raise FailedPrecondition(
            f"bankOrders/{order.id} holds nothing ({order.state.name}): only an acknowledged "
            "order's hold can be extended or ended"
        )
    return order.bank, order.bank_reference


async def _apply(db: Database, order: BankOrder, hold: Hold) -> BankOrder:
    async with UnitOfWork(db) as uow:
        await bank_orders_repo.record_hold(uow.conn, order.id, hold, _now())
        await uow.commit()
        found = await bank_orders_repo.get(uow.conn, order.id)
    assert found is not None
    log.info("bank hold moved", order_id=order.id, state=found.state.name)
    return found


async def extend(
    db: Database, banks: BankClient, order_id: str, request_id: str, instrument: str
) -> BankOrder:
    async with db.read() as conn:
        order = await get(conn, order_id)
    bank, reference = _held(order)
    # The request id is the bank's idempotency key: a repeat is answered from its record.
    hold = await banks.extend(bank, request_id, reference, instrument)
    return await _apply(db, order, hold)


#: The state a disposition ends a hold in.
ENDED = {
    HoldDisposition.RELEASE: BankOrderState.RELEASED,
    HoldDisposition.RETURN_TO_VICTIM: BankOrderState.RETURNED,
}


async def release(
    db: Database,
    banks: BankClient,
    order_id: str,
    request_id: str,
    disposition: HoldDisposition,
    instrument: str,
    reason: str,
) -> BankOrder:
    async with db.read() as conn:
        order = await get(conn, order_id)
    if order.state is ENDED[disposition]:
        return order  # a repeat of the release that ended it
    bank, reference = _held(order)
    hold = await banks.release(bank, request_id, reference, disposition, instrument, reason)
    return await _apply(db, order, hold)


async def refresh(db: Database, banks: BankClient, order_id: str) -> BankOrder:
    """The status query: an acknowledged hold as the bank has it now; others as they are."""
    async with db.read() as conn:
        order = await get(conn, order_id)
    if order.state is not BankOrderState.ACKNOWLEDGED or order.bank is None:
        return order
    bank, reference = _held(order)
    return await _apply(db, order, await banks.get_order(bank, reference))


def _now() -> datetime:
    return datetime.now(UTC)
