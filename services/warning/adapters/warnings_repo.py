"""Warnings and their deliveries: the once-per-window claim, bulk inserts, reads, states."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.bulk import driver_columns, driver_rows, insert_values
from services.common.indicators import Indicator, IndicatorKind
from services.common.outbox import OutboxItem, enqueue_many
from services.common.retention import delete_batch
from services.common.vault import Vault, of_dialect
from services.warning.adapters.sms_jobs import SmsJob
from services.warning.adapters.sql import chunks
from services.warning.adapters.tables import deliveries, outbox, tasks, warning_dedup, warnings
from services.warning.domain.model import (
    CARRIER_CHANNELS,
    TASK_CHANNELS,
    TASK_TYPE_OF_CHANNEL,
    Channel,
    Delivery,
    DeliveryState,
    FraudCategory,
    NotificationPurpose,
    Reason,
    RiskLevel,
    TaskState,
    Warning,
    WarningState,
)
from services.warning.domain.rules import warning_state

#: The outbox topic of SMS and flash SMS deliveries; the payload is an encoded SmsJob.
SMS_TOPIC = "sms"
#: The same for an SMS that falls back from the app push: due later, and cancelled
#: (``fallbacks_repo``) when the push reaches the person first.
SMS_FALLBACK_TOPIC = "sms_fallback"
#: The same two for a fan-out's warnings: the same payload and handler, but their own
#: topics, so the relay claims a single warning's SMS (a screened call's callee, a guardian)
#: ahead of a fan-out's 100,000 (``bootstrap.URGENT_TOPICS``).
SMS_BULK_TOPIC = "sms_bulk"
SMS_BULK_FALLBACK_TOPIC = "sms_bulk_fallback"
#: Every SMS topic (one handler sends them all), and those of fallbacks.
SMS_TOPICS = (SMS_TOPIC, SMS_FALLBACK_TOPIC, SMS_BULK_TOPIC, SMS_BULK_FALLBACK_TOPIC)
FALLBACK_TOPICS = (SMS_FALLBACK_TOPIC, SMS_BULK_FALLBACK_TOPIC)


@dataclass(frozen=True)
class DedupClaim:
    """A warning that wants to be the one for (person, reason) within the window."""

    phone_number: str
    reason_key: str
    warning_id: str
    level: RiskLevel


async def claim_dedup(
    conn: AsyncConnection, claims: Sequence[DedupClaim], cutoff: datetime, now: datetime
) -> set[str]:
    """Record each claim unless the person was warned about the same thing at the same or a
    higher level since ``cutoff``; returns the ids of the warnings that won.

    One statement per chunk (INSERT ... ON CONFLICT DO UPDATE ... WHERE ... RETURNING), so
    two replicas racing for the same person serialise on the row and exactly one wins. The
    rows go to the driver as values (``services.common.bulk.driver_rows``): SQLAlchemy's
    executemany processed each row's parameters one by one, a tenth of a fan-out's CPU.
    """
    if not claims:
        return set()
    return await claim_rows(conn, dedup_rows(conn.dialect, claims, now), cutoff)


def dedup_rows(
    dialect: sa.Dialect, claims: Sequence[DedupClaim], now: datetime
) -> list[tuple[Any, ...]]:
    """The claims as the driver takes them (``claim_rows``), made beforehand if need be."""
    return driver_columns(
        warning_dedup,
        _DEDUP_COLUMNS,
        [
            [c.phone_number for c in claims],
            [c.reason_key for c in claims],
            [c.warning_id for c in claims],
            [int(c.level) for c in claims],
            [now] * len(claims),
        ],
        dialect,
    )


async def claim_rows(
    conn: AsyncConnection, rows: Sequence[tuple[Any, ...]], cutoff: datetime
) -> set[str]:
    """``claim_dedup`` of claims already made into rows (``dedup_rows``)."""
    if not rows:
        return set()
    [bound_cutoff] = driver_rows(
        warning_dedup, ["create_time"], [{"create_time": cutoff}], conn.dialect
    )[0]
    won: set[str] = set()
    if conn.dialect.name == "postgresql":
        columns = list(zip(*rows, strict=True))
        result = await conn.exec_driver_sql(_DEDUP_PG, (*(list(c) for c in columns), bound_cutoff))
        won.update(r[0] for r in result)
        return won
    for part in chunks(rows):
        values = ", ".join(["(?, ?, ?, ?, ?)"] * len(part))
        flat = [value for row in part for value in row]
        result = await conn.exec_driver_sql(
            _DEDUP_SQLITE.format(values=values), (*flat, bound_cutoff)
        )
        won.update(r[0] for r in result)
    return won


_DEDUP_COLUMNS = ["phone_number", "reason_key", "warning_id", "level", "create_time"]
_DEDUP_INSERT = (
    "INSERT INTO warning_dedup (phone_number, reason_key, warning_id, level, create_time)"
)
_DEDUP_UPDATE = (
    "ON CONFLICT (phone_number, reason_key) DO UPDATE SET warning_id = excluded.warning_id, "
    "level = excluded.level, create_time = excluded.create_time "
    "WHERE warning_dedup.create_time < {cutoff} OR warning_dedup.level < excluded.level "
    "RETURNING warning_id"
)
#: PostgreSQL: the claims as five arrays, one row each (``unnest``), and the cutoff.
_DEDUP_PG = " ".join(
    (
        _DEDUP_INSERT,
        "SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::smallint[], "
        "$5::timestamptz[])",
        _DEDUP_UPDATE.format(cutoff="$6"),
    )
)
#: SQLite: a multi-row VALUES per chunk of claims, and the cutoff.
_DEDUP_SQLITE = " ".join((_DEDUP_INSERT, "VALUES {values}", _DEDUP_UPDATE.format(cutoff="?")))


async def prune_dedup(conn: AsyncConnection, cutoff: datetime, limit: int) -> int:
    """Forget up to ``limit`` claims older than the window: they no longer suppress anything."""
    return await delete_batch(conn, warning_dedup, warning_dedup.c.create_time < cutoff, limit)


async def current_for(conn: AsyncConnection, phone_number: str, reason_key: str) -> str | None:
    """The warning that holds (person, reason) now."""
    found: str | None = await conn.scalar(
        sa.select(warning_dedup.c.warning_id).where(
            warning_dedup.c.phone_number == phone_number, warning_dedup.c.reason_key == reason_key
        )
    )
    return found


async def current_for_many(
    conn: AsyncConnection, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """The warning that holds each (person, reason) now, in a query per chunk."""
    found: dict[tuple[str, str], str] = {}
    dedup = warning_dedup.c
    for chunk in chunks(sorted(set(keys))):
        rows = await conn.execute(
            sa.select(dedup.phone_number, dedup.reason_key, dedup.warning_id).where(
                sa.tuple_(dedup.phone_number, dedup.reason_key).in_(chunk)
            )
        )
        found.update(((r.phone_number, r.reason_key), r.warning_id) for r in rows)
    return found


@dataclass(frozen=True)
class PreparedDelivery:
    delivery: Delivery  # the object the rows were made of
    row: tuple[Any, ...]
    event: OutboxItem | None  # an SMS's outbox event (its payload sealed)
    task: tuple[Any, ...] | None  # a call or home-visit task's row


@dataclass(frozen=True)
class Prepared:
    """Warnings' rows as the driver takes them, made before their transaction (a fan-out on
    SQLite makes the next chunk's while the database writes the one before): the claims,
    each warning's row, and each delivery's row, SMS event and task. ``insert`` takes the
    prepared rows of what it writes and makes the rest, such as a delivery a task cap
    changed (a new object: rows are only taken for the very object they were made of)."""

    claims: list[tuple[Any, ...]] = field(default_factory=list)  # in the order built
    warnings: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # by warning id
    deliveries: dict[str, PreparedDelivery] = field(default_factory=dict)  # by delivery id


def prepare(
    dialect: sa.Dialect, built: Sequence[Warning], claims: Sequence[DedupClaim], now: datetime
) -> Prepared:
    """The rows of ``built`` and its ``claims`` (``create_time`` ``now``)."""
    made = _prepare(dialect, built, [(w, d) for w in built for d in w.deliveries])
    return Prepared(dedup_rows(dialect, claims, now), made.warnings, made.deliveries)


def _prepare(
    dialect: sa.Dialect, new: Sequence[Warning], parts: Sequence[tuple[Warning, Delivery]]
) -> Prepared:
    vault = of_dialect(dialect)
    warning_values = driver_rows(
        warnings, _WARNING_COLUMNS, [_warning_row(w) for w in new], dialect
    )
    delivery_values = driver_rows(
        deliveries, _DELIVERY_COLUMNS, [delivery_row(d) for _, d in parts], dialect
    )
    events: dict[str, OutboxItem] = {}
    task_ids: list[str] = []
    task_rows: list[dict[str, Any]] = []
    for warning, d in parts:
        if d.channel in CARRIER_CHANNELS:
            events[d.id] = _sms_event(warning, d, vault)
        elif d.channel in TASK_CHANNELS:
            task_ids.append(d.id)
            task_rows.append(_task_row(warning, d))
    task_values = dict(
        zip(task_ids, driver_rows(tasks, _TASK_COLUMNS, task_rows, dialect), strict=True)
    )
    return Prepared(
        warnings={w.id: v for w, v in zip(new, warning_values, strict=True)},
        deliveries={
            d.id: PreparedDelivery(d, v, events.get(d.id), task_values.get(d.id))
            for (_, d), v in zip(parts, delivery_values, strict=True)
        },
    )


def _sms_event(warning: Warning, d: Delivery, vault: Vault) -> OutboxItem:
    payload = SmsJob.of(d, warning.text, warning.phone_number).encode(vault)
    bulk = warning.fanout_id is not None
    if d.fallback_seconds is None:
        return OutboxItem(SMS_BULK_TOPIC if bulk else SMS_TOPIC, d.id, payload)
    topic = SMS_BULK_FALLBACK_TOPIC if bulk else SMS_FALLBACK_TOPIC
    return OutboxItem(topic, d.id, payload, d.fallback_seconds)


async def insert(
    conn: AsyncConnection, new: Sequence[Warning], prepared: Prepared | None = None
) -> None:
    """Write warnings with their deliveries, tasks and outbox events: a bulk insert per table
    (COPY on PostgreSQL), the outbox last; with the rows ``prepared`` beforehand where they
    were."""
    if not new:
        return
    ready = prepared if prepared is not None else Prepared()
    missing = [w for w in new if w.id not in ready.warnings]
    changed = [
        (w, d)
        for w in new
        for d in w.deliveries
        if (p := ready.deliveries.get(d.id)) is None or p.delivery is not d
    ]
    made = _prepare(conn.dialect, missing, changed) if missing or changed else Prepared()
    warning_values = [made.warnings.get(w.id) or ready.warnings[w.id] for w in new]
    delivery_values: list[tuple[Any, ...]] = []
    task_values: list[tuple[Any, ...]] = []
    events: list[OutboxItem] = []
    for warning in new:
        for d in warning.deliveries:
            part = made.deliveries.get(d.id) or ready.deliveries[d.id]
            delivery_values.append(part.row)
            if part.event is not None:
                events.append(part.event)
            if part.task is not None:
                task_values.append(part.task)
    await insert_values(conn, warnings, _WARNING_COLUMNS, warning_values)
    await insert_values(conn, deliveries, _DELIVERY_COLUMNS, delivery_values)
    await insert_values(conn, tasks, _TASK_COLUMNS, task_values)
    await enqueue_many(conn, outbox, events)


async def get(conn: AsyncConnection, warning_id: str) -> Warning | None:
    found = await get_many(conn, [warning_id])
    return found[0] if found else None


def _delivery_order(d: Delivery) -> tuple[bool, Channel, str]:
    return (d.guardian, d.channel, d.phone_number or "")  # the person first


def as_read(w: Warning) -> Warning:
    """A warning just inserted, as ``get_many`` would read it back: deliveries in the same
    order, no region (not stored with the warning). The push hub publishes this one from
    memory."""
    return replace(w, deliveries=tuple(sorted(w.deliveries, key=_delivery_order)), region="")


def inserted_update_time(w: Warning) -> datetime:
    """The update time a warning is inserted with (the push hub compares it)."""
    return w.create_time


async def get_many(conn: AsyncConnection, warning_ids: Sequence[str]) -> list[Warning]:
    """Warnings with their deliveries, in the order of ``warning_ids`` (missing ones left out)."""
    if not warning_ids:
        return []
    rows = (await conn.execute(sa.select(warnings).where(warnings.c.id.in_(warning_ids)))).all()
    delivery_rows = (
        await conn.execute(sa.select(deliveries).where(deliveries.c.warning_id.in_(warning_ids)))
    ).all()
    by_warning: dict[str, list[Delivery]] = {}
    for r in delivery_rows:
        by_warning.setdefault(r.warning_id, []).append(delivery_of(r))
    for listed in by_warning.values():
        listed.sort(key=_delivery_order)
    found = {r.id: _warning_of(r, tuple(by_warning.get(r.id, ()))) for r in rows}
    return [found[i] for i in warning_ids if i in found]


@dataclass(frozen=True)
class WarningFilter:
    user_id: str | None = None
    phone_number: str | None = None
    indicator: Indicator | None = None
    case_id: str | None = None
    fanout_id: str | None = None
    state: WarningState | None = None


async def list_page(
    conn: AsyncConnection,
    where: WarningFilter,
    page_size: int,
    after: tuple[datetime, str] | None,
) -> list[Warning]:
    """Up to ``page_size + 1`` warnings, newest first, after the keyset position ``after``."""
    w = warnings.c
    query = sa.select(w.id)
    if where.user_id is not None:
        query = query.where(w.user_id == where.user_id)
    if where.phone_number is not None:
        query = query.where(w.phone_number == where.phone_number)
    if where.indicator is not None:
        query = query.where(
            w.indicator_kind == int(where.indicator.kind),
            w.indicator_value == where.indicator.value,
        )
    if where.case_id is not None:
        query = query.where(w.case_id == where.case_id)
    if where.fanout_id is not None:
        query = query.where(w.fanout_id == where.fanout_id)
    if where.state is not None:
        query = query.where(w.state == where.state.name)
    if after is not None:
        time, last_id = after
        query = query.where(
            sa.or_(w.create_time < time, sa.and_(w.create_time == time, w.id < last_id))
        )
    query = query.order_by(w.create_time.desc(), w.id.desc()).limit(page_size + 1)
    ids = list((await conn.execute(query)).scalars())
    return await get_many(conn, ids)


async def refresh_states(
    conn: AsyncConnection, warning_ids: Iterable[str], now: datetime
) -> dict[str, WarningState]:
    """Recompute the state of these warnings from their deliveries (after deliveries moved);
    returns the new state of each warning whose state changed (its update time is ``now``)."""
    ids = sorted(set(warning_ids))
    moved: dict[str, WarningState] = {}
    for chunk in chunks(ids):
        heads = {
            r.id: (r.state, r.acknowledge_time is not None)
            for r in await conn.execute(
                sa.select(warnings.c.id, warnings.c.state, warnings.c.acknowledge_time).where(
                    warnings.c.id.in_(chunk)
                )
            )
        }
        states: dict[str, list[DeliveryState]] = {i: [] for i in heads}
        for r in await conn.execute(
            sa.select(deliveries.c.warning_id, deliveries.c.state).where(
                deliveries.c.warning_id.in_(chunk)
            )
        ):
            states[r.warning_id].append(DeliveryState[r.state])
        changed = []
        for warning_id, (current, acknowledged) in heads.items():
            new = warning_state(states[warning_id], acknowledged)
            if new.name != current:
                changed.append({"b_id": warning_id, "b_state": new.name})
                moved[warning_id] = new
        if changed:
            await conn.execute(
                sa.update(warnings)
                .where(warnings.c.id == sa.bindparam("b_id"))
                .values(state=sa.bindparam("b_state"), update_time=now),
                changed,
            )
    return moved


async def acknowledge(conn: AsyncConnection, warning_id: str, now: datetime) -> None:
    """Mark the warning and its app push acknowledged; a repeat changes nothing."""
    await conn.execute(
        sa.update(warnings)
        .where(warnings.c.id == warning_id, warnings.c.acknowledge_time.is_(None))
        .values(acknowledge_time=now, update_time=now)
    )
    await conn.execute(
        sa.update(deliveries)
        .where(
            deliveries.c.warning_id == warning_id,
            deliveries.c.channel == Channel.APP_PUSH.name,
            deliveries.c.state.in_([DeliveryState.QUEUED.name, DeliveryState.DELIVERED.name]),
        )
        .values(state=DeliveryState.ACKNOWLEDGED.name, update_time=now)
    )
    await refresh_states(conn, [warning_id], now)


def delivery_row(d: Delivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "warning_id": d.warning_id,
        "channel": d.channel.name,
        "state": d.state.name,
        "guardian": d.guardian,
        "user_id": d.user_id,
        "phone_number": d.phone_number,
        "text": d.text,
        "purpose": d.purpose.name if d.purpose is not None else None,
        "carrier": d.carrier,
        "carrier_message_id": d.carrier_message_id,
        "attempts": d.attempts,
        "last_error": d.last_error,
        "next_poll_time": None,
        "create_time": d.create_time,
        "update_time": d.update_time,
    }


def delivery_of(r: Any) -> Delivery:
    return Delivery(
        id=r.id,
        channel=Channel[r.channel],
        state=DeliveryState[r.state],
        warning_id=r.warning_id,
        user_id=r.user_id,
        phone_number=r.phone_number,
        guardian=r.guardian,
        carrier=r.carrier,
        carrier_message_id=r.carrier_message_id,
        attempts=r.attempts,
        last_error=r.last_error,
        create_time=r.create_time,
        update_time=r.update_time,
        text=r.text,
        purpose=NotificationPurpose[r.purpose] if r.purpose else None,
    )


def _warning_row(w: Warning) -> dict[str, Any]:
    indicator = w.reason.indicator
    return {
        "id": w.id,
        "user_id": w.user_id,
        "phone_number": w.phone_number,
        "level": int(w.level),
        "indicator_kind": int(indicator.kind) if indicator is not None else None,
        "indicator_value": indicator.value if indicator is not None else None,
        "case_id": w.reason.case_id,
        "category": int(w.reason.category) if w.reason.category is not None else None,
        "text": w.text,
        "state": w.state.name,
        "fanout_id": w.fanout_id,
        "contact_count": w.contact_count,
        "last_contact_time": w.last_contact_time,
        "create_time": w.create_time,
        "update_time": inserted_update_time(w),
        "acknowledge_time": None,
    }


def _warning_of(r: Any, found: tuple[Delivery, ...]) -> Warning:
    indicator = (
        Indicator(IndicatorKind(r.indicator_kind), r.indicator_value)
        if r.indicator_kind is not None
        else None
    )
    category = FraudCategory(r.category) if r.category is not None else None
    return Warning(
        id=r.id,
        user_id=r.user_id,
        phone_number=r.phone_number,
        level=RiskLevel(r.level),
        reason=Reason(indicator, r.case_id, category),
        text=r.text,
        state=WarningState[r.state],
        fanout_id=r.fanout_id,
        contact_count=r.contact_count,
        last_contact_time=r.last_contact_time,
        create_time=r.create_time,
        acknowledge_time=r.acknowledge_time,
        deliveries=found,
    )


def _task_row(w: Warning, d: Delivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "warning_id": w.id,
        "type": TASK_TYPE_OF_CHANNEL[d.channel].name,
        "level": int(w.level),
        "state": TaskState.OPEN.name,
        "phone_number": d.phone_number,
        "user_id": d.user_id,
        "operator_id": None,
        "lease_until": None,
        "outcome": None,
        "notes": None,
        "claim_count": 0,
        "create_time": d.create_time,
        "update_time": d.create_time,
        "complete_time": None,
        "region": w.region or None,
    }


_WARNING_COLUMNS = [
    "id", "user_id", "phone_number", "level", "indicator_kind", "indicator_value", "case_id",
    "category", "text", "state", "fanout_id", "contact_count", "last_contact_time",
    "create_time", "update_time", "acknowledge_time",
]  # fmt: skip
_DELIVERY_COLUMNS = [
    "id", "warning_id", "channel", "state", "guardian", "user_id", "phone_number", "text",
    "purpose", "carrier", "carrier_message_id", "attempts", "last_error", "next_poll_time",
    "create_time", "update_time",
]  # fmt: skip
_TASK_COLUMNS = [
    "id", "warning_id", "type", "level", "state", "phone_number", "user_id", "operator_id",
    "lease_until", "outcome", "notes", "claim_count", "create_time", "update_time",
    "complete_time", "region",
]  # fmt: skip
