"""Payee decisions and the consents they rest on, on the unit of work's connection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.identity.adapters.tables import payee_check_consents, payee_decisions
from services.identity.domain.payee_decision import PayeeAction, PayeeOutcome, PayeeReason

d = payee_decisions.c
k = payee_check_consents.c


@dataclass(frozen=True, slots=True)
class StoredDecision:
    id: str
    bank: str
    action: PayeeAction
    reasons: tuple[PayeeReason, ...]
    outcome: PayeeOutcome | None
    create_time: datetime
    acknowledge_time: datetime | None


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _decision(row: Any) -> StoredDecision:
    created = _utc(row.create_time)
    assert created is not None
    return StoredDecision(
        id=row.id,
        bank=row.bank,
        action=PayeeAction(row.action),
        reasons=tuple(PayeeReason(r) for r in row.reasons),
        outcome=None if row.outcome is None else PayeeOutcome(row.outcome),
        create_time=created,
        acknowledge_time=_utc(row.acknowledge_time),
    )


async def insert(conn: AsyncConnection, decision: StoredDecision) -> None:
    await conn.execute(
        sa.insert(payee_decisions).values(
            id=decision.id,
            bank=decision.bank,
            action=int(decision.action),
            reasons=[int(r) for r in decision.reasons],
            outcome=None,
            create_time=decision.create_time,
            acknowledge_time=None,
        )
    )


async def get(conn: AsyncConnection, decision_id: str) -> StoredDecision | None:
    row = (await conn.execute(sa.select(payee_decisions).where(d.id == decision_id))).first()
    return None if row is None else _decision(row)


async def set_outcome(
    conn: AsyncConnection, decision_id: str, outcome: PayeeOutcome, now: datetime
) -> None:
    """The first outcome stands (a repeat of it changes nothing)."""
    await conn.execute(
        sa.update(payee_decisions)
        .where(d.id == decision_id, d.outcome.is_(None))
        .values(outcome=int(outcome), acknowledge_time=now)
    )


async def counts(
    conn: AsyncConnection, start: datetime | None, end: datetime | None
) -> list[tuple[PayeeAction, PayeeOutcome | None, int]]:
    query = sa.select(d.action, d.outcome, sa.func.count().label("n")).group_by(d.action, d.outcome)
    if start is not None:
        query = query.where(d.create_time >= start)
    if end is not None:
        query = query.where(d.create_time < end)
    return [
        (PayeeAction(r.action), None if r.outcome is None else PayeeOutcome(r.outcome), int(r.n))
        for r in await conn.execute(query.order_by(d.action, d.outcome))
    ]


async def consented(conn: AsyncConnection, user_id: str) -> bool:
    return bool(await conn.scalar(sa.select(k.consent).where(k.user_id == user_id)))


async def set_consent(conn: AsyncConnection, user_id: str, consent: bool, now: datetime) -> None:
    await conn.execute(sa.delete(payee_check_consents).where(k.user_id == user_id))
    await conn.execute(
        sa.insert(payee_check_consents).values(user_id=user_id, consent=consent, update_time=now)
    )
