"""Deliveries on their way: notifications, SMS sends and polls, receipts, app pushes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common import metrics
from services.common.outbox import OutboxItem, enqueue_many
from services.common.vault import of_connection
from services.warning.adapters import fanouts_repo
from services.warning.adapters.sms_jobs import SmsJob
from services.warning.adapters.sql import chunks, for_update
from services.warning.adapters.tables import deliveries, outbox, warnings
from services.warning.adapters.warnings_repo import SMS_TOPIC, delivery_of, delivery_row
from services.warning.domain.model import (
    CARRIER_CHANNELS,
    Channel,
    Delivery,
    DeliveryState,
    WarningState,
)
from services.warning.domain.rules import moves_forward


async def insert_notification(conn: AsyncConnection, delivery: Delivery) -> None:
    await conn.execute(sa.insert(deliveries).values(**delivery_row(delivery)))
    if delivery.channel in CARRIER_CHANNELS:
        job = SmsJob.of(delivery, None, None)
        await enqueue_many(
            conn, outbox, [OutboxItem(SMS_TOPIC, delivery.id, job.encode(of_connection(conn)))]
        )


async def get(conn: AsyncConnection, delivery_id: str) -> Delivery | None:
    row = (await conn.execute(sa.select(deliveries).where(deliveries.c.id == delivery_id))).first()
    return delivery_of(row) if row is not None else None


async def by_message(conn: AsyncConnection, carrier: str, message_id: str) -> Delivery | None:
    row = (
        await conn.execute(
            sa.select(deliveries).where(
                deliveries.c.carrier == carrier, deliveries.c.carrier_message_id == message_id
            )
        )
    ).first()
    return delivery_of(row) if row is not None else None


@dataclass(frozen=True)
class SendOutcome:
    """What became of one attempt to hand an SMS to its carrier."""

    delivery_id: str
    warning_id: str | None
    state: DeliveryState  # SENT, FAILED, or QUEUED for a failed attempt to be retried
    attempts: int
    time: datetime
    carrier: str | None = None
    message_id: str | None = None
    error: str | None = None
    first_poll: datetime | None = None


async def record_send_outcomes(conn: AsyncConnection, outcomes: Sequence[SendOutcome]) -> set[str]:
    """Record many send outcomes with a statement per kind; returns the warnings whose state
    may have changed. Only a QUEUED delivery takes an outcome (SENT one may still fail)."""
    d = deliveries.c
    sent = [o for o in outcomes if o.state == DeliveryState.SENT]
    failed = [o for o in outcomes if o.state == DeliveryState.FAILED]
    retried = [o for o in outcomes if o.state == DeliveryState.QUEUED]
    if sent:
        await conn.execute(
            sa.update(deliveries)
            .where(d.id == sa.bindparam("b_id"), d.state == DeliveryState.QUEUED.name)
            .values(
                state=DeliveryState.SENT.name,
                carrier=sa.bindparam("b_carrier"),
                carrier_message_id=sa.bindparam("b_message"),
                attempts=sa.bindparam("b_attempts"),
                last_error=None,
                next_poll_time=sa.bindparam("b_poll"),
                update_time=sa.bindparam("b_time"),
            ),
            [
                {
                    "b_id": o.delivery_id,
                    "b_carrier": o.carrier,
                    "b_message": o.message_id,
                    "b_attempts": o.attempts,
                    "b_poll": o.first_poll,
                    "b_time": o.time,
                }
                for o in sent
            ],
        )
    if failed:
        await conn.execute(
            sa.update(deliveries)
            .where(
                d.id == sa.bindparam("b_id"),
                d.state.in_([DeliveryState.QUEUED.name, DeliveryState.SENT.name]),
            )
            .values(
                state=DeliveryState.FAILED.name,
                carrier=sa.func.coalesce(sa.bindparam("b_carrier"), d.carrier),
                attempts=sa.bindparam("b_attempts"),
                last_error=sa.bindparam("b_error"),
                next_poll_time=None,
                update_time=sa.bindparam("b_time"),
            ),
            [
                {
                    "b_id": o.delivery_id,
                    "b_carrier": o.carrier,
                    "b_attempts": o.attempts,
                    "b_error": (o.error or "")[:500],
                    "b_time": o.time,
                }
                for o in failed
            ],
        )
    if retried:
        await conn.execute(
            sa.update(deliveries)
            .where(d.id == sa.bindparam("b_id"))
            .values(
                attempts=sa.bindparam("b_attempts"),
                last_error=sa.bindparam("b_error"),
                update_time=sa.bindparam("b_time"),
            ),
            [
                {
                    "b_id": o.delivery_id,
                    "b_attempts": o.attempts,
                    "b_error": (o.error or "")[:500],
                    "b_time": o.time,
                }
                for o in retried
            ],
        )
    # SENT does not change a warning's state; only a failure can.
    return {o.warning_id for o in failed if o.warning_id is not None}


@dataclass(frozen=True)
class Poll:
    delivery_id: str
    carrier: str
    message_id: str
    sent_time: datetime


async def claim_polls(
    conn: AsyncConnection, now: datetime, limit: int, hold: timedelta
) -> list[Poll]:
    """SENT SMS due for a delivery check; pushed ``hold`` into the future so that another
    replica does not ask the carrier about the same messages meanwhile."""
    d = deliveries.c
    query = (
        sa.select(d.id, d.carrier, d.carrier_message_id, d.update_time)
        .where(d.state == DeliveryState.SENT.name, d.next_poll_time <= now)
        .order_by(d.next_poll_time)
        .limit(limit)
    )
    rows = (await conn.execute(for_update(conn, query))).all()
    if not rows:
        return []
    await conn.execute(
        sa.update(deliveries)
        .where(d.id.in_([r.id for r in rows]))
        .values(next_poll_time=now + hold)
    )
    return [Poll(r.id, r.carrier, r.carrier_message_id, r.update_time) for r in rows]


async def reschedule_polls(conn: AsyncConnection, due: dict[str, datetime]) -> None:
    if due:
        await conn.execute(
            sa.update(deliveries)
            .where(deliveries.c.id == sa.bindparam("b_id"))
            .values(next_poll_time=sa.bindparam("b_due")),
            [{"b_id": i, "b_due": t} for i, t in due.items()],
        )


async def advance(
    conn: AsyncConnection,
    changes: dict[str, tuple[DeliveryState, str | None]],
    now: datetime,
) -> set[str]:
    """Move deliveries forward (receipts, polls, pushes, tasks); returns the warnings touched.

    A change that would move a delivery backwards or out of a final state is ignored, so a
    late or repeated report is harmless.
    """
    touched: set[str] = set()
    delivered: set[str] = set()
    for chunk in chunks(sorted(changes)):
        rows = (
            await conn.execute(
                sa.select(
                    deliveries.c.id,
                    deliveries.c.state,
                    deliveries.c.warning_id,
                    deliveries.c.channel,
                    warnings.c.fanout_id,
                )
                .select_from(
                    deliveries.outerjoin(warnings, warnings.c.id == deliveries.c.warning_id)
                )
                .where(deliveries.c.id.in_(chunk))
            )
        ).all()
        updates = []
        for r in rows:
            new, error = changes[r.id]
            if not moves_forward(DeliveryState[r.state], new):
                continue
            updates.append(
                {
                    "b_id": r.id,
                    "b_state": new.name,
                    "b_poll": None,
                    "b_error": error[:500] if error else None,
                }
            )
            if r.warning_id is not None:
                touched.add(r.warning_id)
                if new == DeliveryState.DELIVERED and r.fanout_id is not None:
                    delivered.add(r.warning_id)  # only a fan-out's warning has a first to mark
            metrics.DELIVERIES.labels(r.channel.lower(), new.name.lower()).inc()
        if updates:
            await conn.execute(
                sa.update(deliveries)
                .where(deliveries.c.id == sa.bindparam("b_id"))
                .values(
                    state=sa.bindparam("b_state"),
                    next_poll_time=sa.bindparam("b_poll"),
                    last_error=sa.func.coalesce(sa.bindparam("b_error"), deliveries.c.last_error),
                    update_time=now,
                ),
                updates,
            )
    # The indicator "a number became high risk -> its first warning delivered".
    for high_time in await fanouts_repo.first_deliveries(conn, sorted(delivered), now):
        metrics.SLI_HIGH_TO_WARNED.observe(max(0.0, (now - high_time).total_seconds()))
    return touched


async def mark_pushes_delivered(
    conn: AsyncConnection, delivery_ids: Sequence[str], now: datetime
) -> tuple[set[str], set[str]]:
    """App pushes a stream sent: QUEUED ones become DELIVERED, and so do their warnings
    unless acknowledged (``advance`` then ``refresh_states`` would decide the same: a
    delivered channel makes a warning DELIVERED). Two statements for any number of pushes
    (per chunk; a third when a fan-out's warning is delivered first), not six; returns the
    pushes that moved and the warnings whose state changed (both with ``now`` as update
    time)."""
    d, w = deliveries.c, warnings.c
    moved: set[str] = set()
    warned: set[str] = set()
    for chunk in chunks(sorted(delivery_ids)):
        for r in await conn.execute(
            sa.update(deliveries)
            .where(
                d.id.in_(chunk),
                d.channel == Channel.APP_PUSH.name,
                d.state == DeliveryState.QUEUED.name,
            )
            .values(state=DeliveryState.DELIVERED.name, next_poll_time=None, update_time=now)
            .returning(d.id, d.warning_id)
        ):
            moved.add(r.id)
            if r.warning_id is not None:
                warned.add(r.warning_id)
    metrics.DELIVERIES.labels(Channel.APP_PUSH.name.lower(), "delivered").inc(len(moved))
    changed: set[str] = set()
    of_fanouts: set[str] = set()
    for chunk in chunks(sorted(warned)):
        for r in await conn.execute(
            sa.update(warnings)
            .where(
                w.id.in_(chunk),
                w.state.in_([WarningState.PENDING.name, WarningState.FAILED.name]),
            )
            .values(state=WarningState.DELIVERED.name, update_time=now)
            .returning(w.id, w.fanout_id)
        ):
            changed.add(r.id)
            if r.fanout_id is not None:
                of_fanouts.add(r.id)
    # A fan-out's first delivery can only be a warning delivered for the first time now (one
    # already DELIVERED had it counted then); a screening's warning has no fan-out at all.
    for high_time in await fanouts_repo.first_deliveries(conn, sorted(of_fanouts), now):
        metrics.SLI_HIGH_TO_WARNED.observe(max(0.0, (now - high_time).total_seconds()))
    return moved, changed


def _pending_push(notifications_since: datetime) -> sa.ColumnElement[bool]:
    """App pushes a user should see: warnings not yet acknowledged (even if streamed before,
    they are shown again after a reconnect) and notifications not yet streamed."""
    d = deliveries.c
    return sa.and_(
        d.channel == Channel.APP_PUSH.name,
        sa.or_(
            sa.and_(
                d.warning_id.is_not(None),
                d.state.in_([DeliveryState.QUEUED.name, DeliveryState.DELIVERED.name]),
            ),
            sa.and_(
                d.warning_id.is_(None),
                d.state == DeliveryState.QUEUED.name,
                d.create_time >= notifications_since,
            ),
        ),
    )


@dataclass(frozen=True)
class PendingPush:
    """A push pending for a user; ``version`` changes whenever what it shows may have."""

    id: str
    user_id: str
    warning_id: str | None
    create_time: datetime
    version: tuple[datetime, datetime | None]


async def pending_push_versions(
    conn: AsyncConnection, user_ids: Sequence[str], notifications_since: datetime, per_user: int
) -> list[PendingPush]:
    """The first ``per_user`` pending pushes of each user (oldest first), ids and versions
    only: one query for many users, cheap enough to repeat every second."""
    d = deliveries.c
    ranked = (
        sa.select(
            d.id,
            d.user_id,
            d.warning_id,
            d.create_time,
            d.update_time,
            sa.func.row_number()
            .over(partition_by=d.user_id, order_by=(d.create_time, d.id))
            .label("position"),
        )
        .where(d.user_id.in_(user_ids), _pending_push(notifications_since))
        .subquery()
    )
    w = warnings.c
    rows = await conn.execute(
        sa.select(
            ranked.c.id,
            ranked.c.user_id,
            ranked.c.warning_id,
            ranked.c.create_time,
            ranked.c.update_time,
            w.update_time.label("warning_time"),
        )
        .select_from(ranked.outerjoin(warnings, w.id == ranked.c.warning_id))
        .where(ranked.c.position <= per_user)
        .order_by(ranked.c.user_id, ranked.c.create_time, ranked.c.id)
    )
    return [
        PendingPush(r.id, r.user_id, r.warning_id, r.create_time, (r.update_time, r.warning_time))
        for r in rows
    ]


async def get_many(conn: AsyncConnection, delivery_ids: Sequence[str]) -> list[Delivery]:
    if not delivery_ids:
        return []
    rows = await conn.execute(sa.select(deliveries).where(deliveries.c.id.in_(delivery_ids)))
    return [delivery_of(r) for r in rows]


async def resubmit(conn: AsyncConnection, delivery_ids: Sequence[str], now: datetime) -> None:
    """Queue SENT SMS again that the carrier no longer knows: the delivery back to QUEUED and
    its outbox event due again, with the same key (the delivery id, the carrier's idempotency
    key)."""
    if not delivery_ids:
        return
    d = deliveries.c
    for chunk in chunks(sorted(delivery_ids)):
        await conn.execute(
            sa.update(deliveries)
            .where(d.id.in_(chunk), d.state == DeliveryState.SENT.name)
            .values(
                state=DeliveryState.QUEUED.name,
                carrier_message_id=None,
                next_poll_time=None,
                last_error="the carrier lost the message; re-submitted",
                update_time=now,
            )
        )
        await conn.execute(
            sa.update(outbox)
            .where(outbox.c.key.in_(chunk))
            .values(
                deliver_time=None,
                fail_time=None,
                lease_until=None,
                attempts=0,
                next_attempt_time=now,
                last_error=None,
            )
        )
