"""Personal data in the warning service: export, erasure, retention and re-sealing.

- Export: a user's profile, guardians and warnings with numbers in clear, audited.
- Erasure: the profile, guardians, warnings to the user or their number (deliveries,
  tasks and once-per-window claims with them), and every contact of their number.
- Retention (``retention_jobs``, run by the shared retention loop with the contacts and
  claims of ``contacts.retention_jobs``): fan-out targets of fan-outs done and numbers
  the feed shows at no risk past ``contact_retention`` (30 days), warnings (with their
  deliveries and tasks) and notifications past ``warning_retention`` (180 days). See
  docs/data.md.
- Re-sealing: numbers a version before revision warning_0002 stored in clear are sealed
  at start, before the service serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common import audit
from services.common.db import Database, UnitOfWork
from services.common.logs import get_logger
from services.common.retention import RetentionJob, delete_batch
from services.common.sealed import FixedSealed, reseal_clear
from services.warning.adapters import recipients_repo, tables, warnings_repo
from services.warning.adapters.tables import (
    contact_pairs,
    deliveries,
    fanout_targets,
    fanouts,
    followed_numbers,
    tasks,
    warning_dedup,
    warnings,
)
from services.warning.domain.model import Recipient, RiskLevel, Warning
from services.warning.settings import WarningSettings

log = get_logger("warning.privacy")


def sealed_columns() -> list[sa.Column[Any]]:
    """Every phone column, sealed with the service's keys."""
    return [
        column
        for table in tables.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, FixedSealed)
    ]


async def reseal_all(db: Database) -> int:
    """Seal the numbers an older version stored in clear; returns how many rows moved."""
    total = 0
    async with UnitOfWork(db) as uow:
        for column in sealed_columns():
            total += await reseal_clear(uow.conn, column)
        await uow.commit()
    if total:
        log.info("phone numbers sealed", rows=total)
    return total


@dataclass(frozen=True)
class Export:
    recipient: Recipient | None
    warnings: list[Warning]
    contact_count: int


async def _phone_of(conn: AsyncConnection, user_id: str) -> str | None:
    found = await recipients_repo.get(conn, user_id)
    return None if found is None else found.phone_number


def _of_person(user_id: str, phone: str | None) -> Any:
    w = warnings.c
    return sa.or_(w.user_id == user_id, w.phone_number == phone) if phone else w.user_id == user_id


async def export(uow: UnitOfWork, user_id: str, now: datetime) -> Export:
    conn = uow.conn
    recipient = await recipients_repo.get(conn, user_id)
    phone = None if recipient is None else recipient.phone_number
    ids = list(
        (
            await conn.execute(
                sa.select(warnings.c.id)
                .where(_of_person(user_id, phone))
                .order_by(warnings.c.create_time, warnings.c.id)
            )
        ).scalars()
    )
    found = await warnings_repo.get_many(conn, ids)
    contacts = 0
    if phone is not None:
        c = contact_pairs.c
        contacts = int(
            await conn.scalar(
                sa.select(sa.func.count()).where(sa.or_(c.number_a == phone, c.number_b == phone))
            )
            or 0
        )
    await audit.record(
        conn,
        tables.audit_events,
        actor=f"citizen:{user_id}",
        record=f"recipients/{user_id}",
        fields=("phone_number", "guardian_phone_numbers", "warnings"),
        purpose="export requested by the person",
        now=now,
    )
    return Export(recipient, found, contacts)


async def _delete_warnings(conn: AsyncConnection, condition: Any) -> int:
    """Delete the warnings matching ``condition`` with their tasks and deliveries."""
    ids = sa.select(warnings.c.id).where(condition).scalar_subquery()
    delivery_ids = sa.select(deliveries.c.id).where(deliveries.c.warning_id.in_(ids))
    done = 0
    for statement in (
        sa.delete(tasks).where(tasks.c.id.in_(delivery_ids)),
        sa.delete(deliveries).where(deliveries.c.warning_id.in_(ids)),
        sa.delete(warning_dedup).where(warning_dedup.c.warning_id.in_(ids)),
        sa.delete(warnings).where(condition),
    ):
        done += int((await conn.execute(statement)).rowcount)
    return done


async def erase(uow: UnitOfWork, user_id: str, now: datetime) -> int:
    conn = uow.conn
    phone = await _phone_of(conn, user_id)
    done = await _delete_warnings(conn, _of_person(user_id, phone))
    # Notifications to the user (not warnings) and what is queued for them.
    d = deliveries.c
    notes = sa.or_(d.user_id == user_id, d.phone_number == phone) if phone else d.user_id == user_id
    done += int(
        (await conn.execute(sa.delete(deliveries).where(d.warning_id.is_(None), notes))).rowcount
    )
    if phone is not None:
        c = contact_pairs.c
        done += int(
            (
                await conn.execute(
                    sa.delete(contact_pairs).where(sa.or_(c.number_a == phone, c.number_b == phone))
                )
            ).rowcount
        )
        done += int(
            (
                await conn.execute(
                    sa.delete(fanout_targets).where(fanout_targets.c.phone_number == phone)
                )
            ).rowcount
        )
        done += int(
            (
                await conn.execute(
                    sa.delete(warning_dedup).where(warning_dedup.c.phone_number == phone)
                )
            ).rowcount
        )
    # Stop-payment orders are evidence and stay; they no longer name whom to tell.
    await conn.execute(
        sa.update(tables.bank_orders)
        .where(tables.bank_orders.c.victim_user_id == user_id)
        .values(victim_user_id=None)
    )
    done += int(
        (
            await conn.execute(
                sa.delete(tables.guardians).where(tables.guardians.c.user_id == user_id)
            )
        ).rowcount
    )
    done += int(
        (
            await conn.execute(
                sa.delete(tables.recipients).where(tables.recipients.c.user_id == user_id)
            )
        ).rowcount
    )
    await audit.record(
        conn,
        tables.audit_events,
        actor=f"citizen:{user_id}",
        record=f"recipients/{user_id}",
        fields=("profile", "guardians", "warnings", "contacts"),
        purpose=f"erasure requested by the person; {done} rows deleted",
        now=now,
    )
    return done


def retention_jobs(settings: WarningSettings) -> list[RetentionJob]:
    """What docs/data.md says the warning service keeps no longer, besides contacts and
    once-per-window claims (``contacts.retention_jobs``): run by the shared retention loop,
    in batches, like every other retention of the suite."""
    return [
        RetentionJob("fanout_targets", settings.contact_retention, _prune_fanout_targets),
        RetentionJob("warning_rows", settings.warning_retention, _prune_warnings),
        RetentionJob("notifications", settings.warning_retention, _prune_notifications),
        RetentionJob("followed_numbers", settings.contact_retention, _prune_followed_numbers),
    ]


async def _prune_fanout_targets(conn: AsyncConnection, cutoff: datetime, limit: int) -> int:
    """The targets of fan-outs done before the cutoff."""
    done = sa.select(fanouts.c.id).where(
        fanouts.c.done_time.is_not(None), fanouts.c.done_time < cutoff
    )
    return await delete_batch(conn, fanout_targets, fanout_targets.c.fanout_id.in_(done), limit)


async def _prune_warnings(conn: AsyncConnection, cutoff: datetime, limit: int) -> int:
    """Up to ``limit`` warnings made before the cutoff, with their deliveries and tasks."""
    ids = list(
        (
            await conn.execute(
                sa.select(warnings.c.id).where(warnings.c.create_time < cutoff).limit(limit)
            )
        ).scalars()
    )
    if not ids:
        return 0
    await _delete_warnings(conn, warnings.c.id.in_(ids))
    return len(ids)


async def _prune_notifications(conn: AsyncConnection, cutoff: datetime, limit: int) -> int:
    """Notifications (deliveries of no warning) made before the cutoff."""
    d = deliveries.c
    return await delete_batch(
        conn, deliveries, sa.and_(d.warning_id.is_(None), d.create_time < cutoff), limit
    )


async def _prune_followed_numbers(conn: AsyncConnection, cutoff: datetime, limit: int) -> int:
    """A number the feed last showed at no risk before the cutoff is not worth remembering."""
    f = followed_numbers.c
    return await delete_batch(
        conn,
        followed_numbers,
        sa.and_(f.level <= int(RiskLevel.NONE), f.update_time < cutoff),
        limit,
    )
