"""Fan-outs to the contacts of a number: jobs with a lease, worked in chunks that resume."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.indicators import Indicator, IndicatorKind
from services.warning.adapters.sql import for_update
from services.warning.adapters.tables import deliveries, fanout_targets, fanouts, warnings
from services.warning.domain.model import (
    Channel,
    DeliveryState,
    Fanout,
    FanoutState,
    FraudCategory,
)

f = fanouts.c


async def create(conn: AsyncConnection, fanout: Fanout, now: datetime) -> None:
    await conn.execute(
        sa.insert(fanouts).values(
            id=fanout.id,
            indicator_kind=int(fanout.indicator.kind),
            indicator_value=fanout.indicator.value,
            category=int(fanout.category) if fanout.category is not None else None,
            change_cursor=fanout.change_cursor,
            state=FanoutState.RUNNING.name,
            snapshot_taken=False,
            contact_count=0,
            processed_count=0,
            warned_count=0,
            suppressed_count=0,
            progress=None,
            call_task_cap=fanout.call_task_cap,
            home_visit_task_cap=fanout.home_visit_task_cap,
            call_tasks=0,
            home_visit_tasks=0,
            capped=0,
            holder=None,
            lease_until=None,
            create_time=now,
            update_time=now,
            done_time=None,
            high_time=fanout.high_time,
            trace_context=fanout.trace_context,
        )
    )


async def claim(conn: AsyncConnection, holder: str, now: datetime, lease: timedelta) -> str | None:
    """Take the oldest running fan-out that nobody holds (or whose holder's lease ended)."""
    query = (
        sa.select(f.id)
        .where(
            f.state == FanoutState.RUNNING.name,
            sa.or_(f.holder.is_(None), f.holder == holder, f.lease_until < now),
        )
        .order_by(f.create_time, f.id)
        .limit(1)
    )
    fanout_id: str | None = (await conn.execute(for_update(conn, query))).scalar()
    if fanout_id is None:
        return None
    await conn.execute(
        sa.update(fanouts).where(f.id == fanout_id).values(holder=holder, lease_until=now + lease)
    )
    return fanout_id


@dataclass(frozen=True)
class Progress:
    fanout: Fanout
    snapshot_taken: bool
    after: str | None  # the last target processed


async def hold(
    conn: AsyncConnection, fanout_id: str, holder: str, now: datetime, lease: timedelta
) -> Progress | None:
    """Extend the lease and read where the fan-out stands; None when another worker holds it.

    The first statement of a chunk's transaction written alone: the row lock (PostgreSQL) or
    the write lock (SQLite) makes a worker that lost its lease unable to commit a chunk
    (``hold_at`` does the same for chunks written side by side).
    """
    result = await conn.execute(
        sa.update(fanouts)
        .where(f.id == fanout_id, f.holder == holder, f.state == FanoutState.RUNNING.name)
        .values(lease_until=now + lease)
    )
    if not result.rowcount:
        return None
    row = (await conn.execute(sa.select(fanouts).where(f.id == fanout_id))).one()
    return Progress(_fanout_of(row), row.snapshot_taken, row.progress)


async def hold_at(
    conn: AsyncConnection,
    fanout: Fanout,
    holder: str,
    after: str | None,
    now: datetime,
    lease: timedelta,
) -> bool:
    """Extend the lease if this holder still holds the fan-out, its progress is ``after``
    and its task caps are still ``fanout``'s; False otherwise (the lease was lost, an
    earlier chunk did not commit, or an analyst changed the caps).

    For a chunk written while the one before it commits (PostgreSQL): its last statement
    before its progress, so the two transactions do not wait for each other's row lock
    until then, and a chunk never commits past one that failed.
    """
    result = await conn.execute(
        sa.update(fanouts)
        .where(
            f.id == fanout.id,
            f.holder == holder,
            f.state == FanoutState.RUNNING.name,
            f.progress.is_(None) if after is None else f.progress == after,
            f.call_task_cap.is_not_distinct_from(fanout.call_task_cap),
            f.home_visit_task_cap.is_not_distinct_from(fanout.home_visit_task_cap),
        )
        .values(lease_until=now + lease)
    )
    return bool(result.rowcount)


async def snapshot_taken(
    conn: AsyncConnection, fanout_id: str, contacts: int, now: datetime
) -> None:
    await conn.execute(
        sa.update(fanouts)
        .where(f.id == fanout_id)
        .values(snapshot_taken=True, contact_count=contacts, update_time=now)
    )


@dataclass(frozen=True)
class Target:
    phone_number: str
    contact_count: int
    last_time: datetime


async def targets(
    conn: AsyncConnection, fanout_id: str, after: str | None, limit: int
) -> list[Target]:
    t = fanout_targets.c
    query = sa.select(t.phone_number, t.contact_count, t.last_time).where(t.fanout_id == fanout_id)
    if after is not None:
        query = query.where(t.phone_number > after)
    query = query.order_by(t.phone_number).limit(limit)
    return [Target(r.phone_number, r.contact_count, r.last_time) for r in await conn.execute(query)]


@dataclass(frozen=True)
class ChunkDone:
    last: str
    processed: int
    warned: int
    call_tasks: int = 0
    home_visit_tasks: int = 0
    capped: int = 0


async def record_chunk(
    conn: AsyncConnection, fanout_id: str, done: ChunkDone, now: datetime
) -> None:
    await conn.execute(
        sa.update(fanouts)
        .where(f.id == fanout_id)
        .values(
            progress=done.last,
            processed_count=f.processed_count + done.processed,
            warned_count=f.warned_count + done.warned,
            suppressed_count=f.suppressed_count + (done.processed - done.warned),
            call_tasks=f.call_tasks + done.call_tasks,
            home_visit_tasks=f.home_visit_tasks + done.home_visit_tasks,
            capped=f.capped + done.capped,
            update_time=now,
        )
    )


async def set_caps(
    conn: AsyncConnection, fanout_id: str, caps: dict[str, int | None], now: datetime
) -> bool:
    """Change ``call_task_cap`` and/or ``home_visit_task_cap``; False when no such fan-out."""
    result = await conn.execute(
        sa.update(fanouts).where(f.id == fanout_id).values(**caps, update_time=now)
    )
    return bool(result.rowcount)


async def delivery_counts(
    conn: AsyncConnection, fanout_ids: Sequence[str]
) -> dict[str, dict[tuple[Channel, DeliveryState], int]]:
    """The fan-outs' warnings' deliveries by channel and state."""
    found: dict[str, dict[tuple[Channel, DeliveryState], int]] = {i: {} for i in fanout_ids}
    if not fanout_ids:
        return found
    w, d = warnings.c, deliveries.c
    query = (
        sa.select(w.fanout_id, d.channel, d.state, sa.func.count())
        .select_from(deliveries.join(warnings, d.warning_id == w.id))
        .where(w.fanout_id.in_(list(fanout_ids)))
        .group_by(w.fanout_id, d.channel, d.state)
    )
    for r in await conn.execute(query):
        found[r[0]][(Channel[r[1]], DeliveryState[r[2]])] = int(r[3])
    return found


async def finish(conn: AsyncConnection, fanout_id: str, now: datetime) -> None:
    await conn.execute(
        sa.update(fanouts)
        .where(f.id == fanout_id)
        .values(
            state=FanoutState.DONE.name,
            holder=None,
            lease_until=None,
            done_time=now,
            update_time=now,
        )
    )
    await conn.execute(sa.delete(fanout_targets).where(fanout_targets.c.fanout_id == fanout_id))


async def trace_context(conn: AsyncConnection, fanout_id: str) -> str | None:
    """The trace a fan-out continues, when it has one."""
    found: str | None = await conn.scalar(sa.select(f.trace_context).where(f.id == fanout_id))
    return found


async def first_deliveries(
    conn: AsyncConnection, warning_ids: Sequence[str], now: datetime
) -> list[datetime]:
    """Mark the fan-outs of these warnings (just delivered) as having delivered a first
    warning, where none had; returns when each such fan-out's number became high risk."""
    ids = sorted(set(warning_ids))
    if not ids:
        return []
    of_warnings = sa.select(warnings.c.fanout_id).where(
        warnings.c.id.in_(ids), warnings.c.fanout_id.is_not(None)
    )
    rows = await conn.execute(
        sa.update(fanouts)
        .where(f.id.in_(of_warnings), f.first_delivery_time.is_(None))
        .values(first_delivery_time=now)
        .returning(f.high_time, f.create_time)
    )
    return [r.high_time or r.create_time for r in rows]


async def pending_targets(conn: AsyncConnection) -> int:
    """Contacts running fan-outs have still to go through."""
    left = await conn.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(f.contact_count - f.processed_count), 0)).where(
            f.state == FanoutState.RUNNING.name
        )
    )
    return int(left or 0)


async def get(conn: AsyncConnection, fanout_id: str) -> Fanout | None:
    row = (await conn.execute(sa.select(fanouts).where(f.id == fanout_id))).first()
    return _fanout_of(row) if row is not None else None


async def list_page(
    conn: AsyncConnection,
    indicator: Indicator | None,
    page_size: int,
    after: tuple[datetime, str] | None,
) -> list[Fanout]:
    """Up to ``page_size + 1`` fan-outs, newest first."""
    query = sa.select(fanouts)
    if indicator is not None:
        query = query.where(
            f.indicator_kind == int(indicator.kind), f.indicator_value == indicator.value
        )
    if after is not None:
        created, last_id = after
        query = query.where(
            sa.or_(f.create_time < created, sa.and_(f.create_time == created, f.id < last_id))
        )
    query = query.order_by(f.create_time.desc(), f.id.desc()).limit(page_size + 1)
    return [_fanout_of(r) for r in await conn.execute(query)]


def _fanout_of(r: Any) -> Fanout:
    return Fanout(
        id=r.id,
        indicator=Indicator(IndicatorKind(r.indicator_kind), r.indicator_value),
        category=FraudCategory(r.category) if r.category is not None else None,
        state=FanoutState[r.state],
        contact_count=r.contact_count,
        processed_count=r.processed_count,
        warned_count=r.warned_count,
        suppressed_count=r.suppressed_count,
        change_cursor=r.change_cursor,
        create_time=r.create_time,
        done_time=r.done_time,
        high_time=r.high_time,
        trace_context=r.trace_context,
        call_task_cap=r.call_task_cap,
        home_visit_task_cap=r.home_visit_task_cap,
        call_tasks=r.call_tasks,
        home_visit_tasks=r.home_visit_tasks,
        capped=r.capped,
    )
