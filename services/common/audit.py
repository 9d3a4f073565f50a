"""The audit log of personal values read in clear, exported or erased: one shape for every
service (identity's ``audit_events`` is the same table).

An event names who (the principal), which record, which fields, why and the request id;
never a value. It is written in the transaction that reads the value, and committed
before the value is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common import context


def audit_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "audit_events",
        metadata,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(160), nullable=False),
        sa.Column("record", sa.String(160), nullable=False),
        sa.Column("fields", sa.String(200), nullable=False),
        sa.Column("purpose", sa.String(200), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Index("ix_audit_events_record", "record", "id"),
        sa.Index("ix_audit_events_actor", "actor", "id"),
    )


async def record(
    conn: AsyncConnection,
    table: sa.Table,
    *,
    actor: str,
    record: str,
    fields: Sequence[str],
    purpose: str,
    now: datetime,
) -> None:
    await conn.execute(
        sa.insert(table).values(
            event_time=now,
            actor=actor[:160],
            record=record[:160],
            fields=",".join(fields)[:200],
            purpose=purpose[:200],
            request_id=context.current_request_id()[:64],
        )
    )


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One event as read back."""

    id: int
    event_time: datetime
    actor: str
    record: str
    fields: tuple[str, ...]
    purpose: str
    request_id: str


async def list_page(
    conn: AsyncConnection,
    table: sa.Table,
    *,
    record: str | None,
    actor: str | None,
    before_id: int | None,
    limit: int,
) -> list[AuditEntry]:
    """Events newest first, by record and actor when given, older than ``before_id``."""
    query = sa.select(table)
    if record:
        query = query.where(table.c.record == record)
    if actor:
        query = query.where(table.c.actor == actor)
    if before_id is not None:
        query = query.where(table.c.id < before_id)
    rows = await conn.execute(query.order_by(table.c.id.desc()).limit(limit))
    return [
        AuditEntry(
            id=row.id,
            event_time=row.event_time
            if row.event_time.tzinfo is not None
            else row.event_time.replace(tzinfo=UTC),
            actor=row.actor,
            record=row.record,
            fields=tuple(f for f in row.fields.split(",") if f),
            purpose=row.purpose,
            request_id=row.request_id,
        )
        for row in rows
    ]
