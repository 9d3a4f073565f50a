"""Stop-payment and freeze orders, and their way to the bank."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.indicators import Indicator, IndicatorKind
from services.common.outbox import OutboxItem, enqueue_many
from services.warning.adapters.tables import bank_orders, outbox
from services.warning.domain.model import BankOrder, BankOrderState, BankOrderType, Hold, Money

#: The outbox topic of bank orders; the payload is the order id.
BANK_ORDER_TOPIC = "bank_order"

b = bank_orders.c


async def insert(conn: AsyncConnection, order: BankOrder) -> None:
    """Write the order, and its outbox event when it is to be sent."""
    amount = order.amount
    await conn.execute(
        sa.insert(bank_orders).values(
            id=order.id,
            order_type=order.order_type.name,
            account_kind=int(order.account.kind),
            account_value=order.account.value,
            bank=order.bank,
            case_id=order.case_id,
            currency_code=amount.currency_code if amount else None,
            amount_units=amount.units if amount else None,
            amount_nanos=amount.nanos if amount else None,
            reason=order.reason,
            state=order.state.name,
            bank_reference=None,
            failure_reason=order.failure_reason,
            attempts=0,
            create_time=order.create_time,
            send_time=None,
            answer_time=None,
            update_time=order.create_time,
            case_file_time=order.case_file_time,
            transaction_references=list(order.transaction_references),
            legal_instrument_id=order.legal_instrument_id or None,
            victim_user_id=order.victim_user_id or None,
        )
    )
    if order.state == BankOrderState.QUEUED:
        await enqueue_many(
            conn, outbox, [OutboxItem(BANK_ORDER_TOPIC, order.id, order.id.encode())]
        )


async def get(conn: AsyncConnection, order_id: str) -> BankOrder | None:
    row = (await conn.execute(sa.select(bank_orders).where(b.id == order_id))).first()
    return _order_of(row) if row is not None else None


async def list_page(
    conn: AsyncConnection,
    case_id: str | None,
    state: BankOrderState | None,
    page_size: int,
    after: tuple[datetime, str] | None,
    *,
    bank: str | None = None,
) -> list[BankOrder]:
    """Up to ``page_size + 1`` orders, oldest first; only ``bank``'s when given."""
    query = sa.select(bank_orders)
    if bank is not None:
        query = query.where(b.bank == bank)
    if case_id is not None:
        query = query.where(b.case_id == case_id)
    if state is not None:
        query = query.where(b.state == state.name)
    if after is not None:
        created, last_id = after
        query = query.where(
            sa.or_(b.create_time > created, sa.and_(b.create_time == created, b.id > last_id))
        )
    query = query.order_by(b.create_time, b.id).limit(page_size + 1)
    return [_order_of(r) for r in await conn.execute(query)]


async def mark_sending(conn: AsyncConnection, order_id: str, attempts: int, now: datetime) -> None:
    """An attempt is about to be made: QUEUED -> SENT (first time), attempts counted."""
    await conn.execute(
        sa.update(bank_orders)
        .where(
            b.id == order_id, b.state.in_([BankOrderState.QUEUED.name, BankOrderState.SENT.name])
        )
        .values(
            state=BankOrderState.SENT.name,
            send_time=sa.func.coalesce(b.send_time, now),
            attempts=attempts,
            update_time=now,
        )
    )


async def record_answer(
    conn: AsyncConnection,
    order_id: str,
    state: BankOrderState,
    bank: str | None,
    reference: str | None,
    failure: str | None,
    now: datetime,
    hold: Hold | None = None,
) -> bool:
    """The bank's answer, or our giving up; only an order still in flight takes it. Returns
    whether it did (False: another relay recorded the answer first)."""
    result = await conn.execute(
        sa.update(bank_orders)
        .where(
            b.id == order_id, b.state.in_([BankOrderState.QUEUED.name, BankOrderState.SENT.name])
        )
        .values(
            state=state.name,
            bank=sa.func.coalesce(bank, b.bank),
            bank_reference=reference,
            failure_reason=failure[:500] if failure else None,
            answer_time=now if state != BankOrderState.FAILED else None,
            update_time=now,
            **(_hold_values(hold) if hold is not None else {}),
        )
    )
    return bool(result.rowcount)


def _hold_values(hold: Hold) -> dict[str, Any]:
    values: dict[str, Any] = {"hold_expire_time": hold.expire_time}
    if hold.held_amount is not None:
        values |= {
            "held_currency": hold.held_amount.currency_code,
            "held_units": hold.held_amount.units,
            "held_nanos": hold.held_amount.nanos,
        }
    if hold.legal_instrument_id:
        values["legal_instrument_id"] = hold.legal_instrument_id
    return values


async def record_hold(conn: AsyncConnection, order_id: str, hold: Hold, now: datetime) -> None:
    """What the bank now says of an acknowledged order's hold (extended, ended, lapsed)."""
    await conn.execute(
        sa.update(bank_orders)
        .where(b.id == order_id, b.state == BankOrderState.ACKNOWLEDGED.name)
        .values(state=hold.state.name, update_time=now, **_hold_values(hold))
    )


async def note_failed_attempt(
    conn: AsyncConnection, order_id: str, error: str, now: datetime
) -> None:
    await conn.execute(
        sa.update(bank_orders)
        .where(b.id == order_id)
        .values(failure_reason=error[:500], update_time=now)
    )


def _order_of(r: Any) -> BankOrder:
    amount = (
        Money(r.currency_code or "CNY", r.amount_units, r.amount_nanos or 0)
        if r.amount_units is not None
        else None
    )
    return BankOrder(
        id=r.id,
        order_type=BankOrderType[r.order_type],
        account=Indicator(IndicatorKind(r.account_kind), r.account_value),
        bank=r.bank,
        case_id=r.case_id,
        amount=amount,
        reason=r.reason,
        state=BankOrderState[r.state],
        bank_reference=r.bank_reference,
        failure_reason=r.failure_reason,
        attempts=r.attempts,
        create_time=r.create_time,
        send_time=r.send_time,
        answer_time=r.answer_time,
        update_time=r.update_time,
        case_file_time=r.case_file_time,
        held_amount=(
            Money(r.held_currency, r.held_units, r.held_nanos or 0)
            if r.held_units is not None
            else None
        ),
        hold_expire_time=r.hold_expire_time,
        transaction_references=tuple(r.transaction_references or ()),
        legal_instrument_id=r.legal_instrument_id or "",
        victim_user_id=r.victim_user_id or "",
    )
