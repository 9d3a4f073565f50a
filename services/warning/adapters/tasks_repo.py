"""The call and home-visit queues.

A claim is a lease: a CLAIMED row whose lease has ended is open again. That is
decided in every query from the time, so no sweeper has to run for a task to
return to its queue.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common import regions
from services.common.redaction import mask_identifiers
from services.warning.adapters.sql import for_update
from services.warning.adapters.tables import tasks, warnings
from services.warning.domain.model import RiskLevel, Task, TaskOutcome, TaskState, TaskType

t = tasks.c


def _open(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(
        t.state == TaskState.OPEN.name,
        sa.and_(t.state == TaskState.CLAIMED.name, t.lease_until < now),
    )


def _claimed(now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(t.state == TaskState.CLAIMED.name, t.lease_until >= now)


def _in_region(region: str) -> sa.ColumnElement[bool]:
    """Tasks of ``region`` and the regions in it (an unknown region is in none)."""
    return t.region.startswith(regions.prefix(region))


_SELECT = sa.select(tasks, warnings.c.text).join(warnings, warnings.c.id == t.warning_id)


async def get(conn: AsyncConnection, task_id: str, now: datetime) -> Task | None:
    row = (await conn.execute(_SELECT.where(t.id == task_id))).first()
    return _task_of(row, now) if row is not None else None


async def list_page(
    conn: AsyncConnection,
    now: datetime,
    type_: TaskType | None,
    state: TaskState | None,
    operator_id: str | None,
    page_size: int,
    after: tuple[int, datetime, str] | None,
    region: str | None = None,
) -> list[Task]:
    """Up to ``page_size + 1`` tasks, highest level first, then oldest first; only those of
    ``region`` when given."""
    query = _SELECT if region is None else _SELECT.where(_in_region(region))
    if type_ is not None:
        query = query.where(t.type == type_.name)
    if state == TaskState.OPEN:
        query = query.where(_open(now))
    elif state == TaskState.CLAIMED:
        query = query.where(_claimed(now))
    elif state == TaskState.COMPLETED:
        query = query.where(t.state == TaskState.COMPLETED.name)
    if operator_id is not None:
        query = query.where(t.operator_id == operator_id)
    if after is not None:
        level, created, last_id = after
        query = query.where(
            sa.or_(
                t.level < level,
                sa.and_(t.level == level, t.create_time > created),
                sa.and_(t.level == level, t.create_time == created, t.id > last_id),
            )
        )
    query = query.order_by(t.level.desc(), t.create_time, t.id).limit(page_size + 1)
    return [_task_of(r, now) for r in await conn.execute(query)]


async def next_open(
    conn: AsyncConnection, type_: TaskType, now: datetime, limit: int, region: str | None = None
) -> list[str]:
    """The most urgent open tasks of a queue, of ``region`` when given (PostgreSQL: locked,
    and skipped by other replicas)."""
    query = sa.select(t.id).where(t.type == type_.name, _open(now))
    if region is not None:
        query = query.where(_in_region(region))
    query = query.order_by(t.level.desc(), t.create_time, t.id).limit(limit)
    return list((await conn.execute(for_update(conn, query))).scalars())


async def claim(
    conn: AsyncConnection, task_id: str, operator_id: str, now: datetime, lease: timedelta
) -> bool:
    """Claim an open task, or extend one's own claim; False when that is not possible."""
    result = await conn.execute(
        sa.update(tasks)
        .where(
            t.id == task_id,
            sa.or_(_open(now), sa.and_(_claimed(now), t.operator_id == operator_id)),
        )
        .values(
            state=TaskState.CLAIMED.name,
            operator_id=operator_id,
            lease_until=now + lease,
            claim_count=t.claim_count + 1,
            update_time=now,
        )
    )
    return bool(result.rowcount)


async def complete(
    conn: AsyncConnection,
    task_id: str,
    operator_id: str,
    outcome: TaskOutcome,
    notes: str | None,
    now: datetime,
) -> bool:
    """Complete a task the operator holds within its lease; False otherwise."""
    result = await conn.execute(
        sa.update(tasks)
        .where(t.id == task_id, _claimed(now), t.operator_id == operator_id)
        .values(
            state=TaskState.COMPLETED.name,
            outcome=outcome.name,
            # An operator's notes: identifiers masked on the way in (docs/data.md).
            notes=None if notes is None else mask_identifiers(notes).text,
            lease_until=None,
            complete_time=now,
            update_time=now,
        )
    )
    return bool(result.rowcount)


def _task_of(r: Any, now: datetime) -> Task:
    state = TaskState[r.state]
    if state == TaskState.CLAIMED and r.lease_until is not None and r.lease_until < now:
        state = TaskState.OPEN
    return Task(
        id=r.id,
        type=TaskType[r.type],
        state=state,
        warning_id=r.warning_id,
        level=RiskLevel(r.level),
        phone_number=r.phone_number,
        user_id=r.user_id,
        text=r.text,
        operator_id=r.operator_id,
        lease_until=r.lease_until if state == TaskState.CLAIMED else None,
        outcome=TaskOutcome[r.outcome] if r.outcome else None,
        notes=r.notes,
        claim_count=r.claim_count,
        create_time=r.create_time,
        complete_time=r.complete_time,
        region=r.region or "",
    )
