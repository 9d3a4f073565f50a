"""Stop-payment and freeze orders: written with their outbox event, sent by the relay.

The order id is the bank's idempotency key: a crash between the bank's answer
and our recording it repeats the call, and the bank answers it from its record
without a second hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from services.common import metrics
from services.common.db import Database, UnitOfWork
from services.common.errors import NotFound
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
    Money,
)
from services.warning.service_layer.warnings import new_id

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
                await self._record(order, BankOrderState.ACKNOWLEDGED, bank, answer.reference, None)
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
    ) -> None:
        async with UnitOfWork(self.db) as uow:
            await bank_orders_repo.record_answer(
                uow.conn, order.id, state, bank, reference, failure, _now()
            )
            await uow.commit()
        log.info("bank order answered", order_id=order.id, bank=bank, state=state.name)


def _now() -> datetime:
    return datetime.now(UTC)
