"""Transactional outbox: events that must leave a service are written in the same
transaction as the change, then relayed after commit with retries.

Each service adds ``outbox_table`` to its metadata, calls ``enqueue`` inside its
unit of work, and runs one ``OutboxRelay`` with a handler per topic. Rows are
claimed with a lease, so several replicas can relay the same table: a row is
delivered by one of them, and the receiver deduplicates on the row's key, so a
crash between delivery and marking it done repeats the call, never its effect.

Delivered rows are deleted after a window (``ANTIFRAUD_OUTBOX_RETENTION_HOURS``, 24
by default; ``retention_job``); rows that failed for good stay for an operator.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.db import Database
from services.common.logs import get_logger
from services.common.retention import RetentionJob, delete_batch

log = get_logger("outbox")

LEASE = timedelta(seconds=30)
ENQUEUE_CHUNK = 1000
MAX_BACKOFF_SECONDS = 30.0


class PermanentFailure(Exception):
    """The receiver refused the event for good; retrying cannot help."""


@dataclass(frozen=True)
class OutboxEvent:
    id: int
    topic: str
    key: str
    payload: bytes
    attempts: int


Handler = Callable[[OutboxEvent], Awaitable[None]]


def outbox_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "outbox",
        metadata,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("key", sa.String(128), nullable=False, unique=True),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, default=0),
        sa.Column("next_attempt_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deliver_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fail_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Index("ix_outbox_due", "deliver_time", "fail_time", "next_attempt_time"),
    )


async def prune_delivered(
    conn: AsyncConnection, table: sa.Table, before: datetime, limit: int
) -> int:
    """Delete up to ``limit`` rows delivered before ``before``."""
    return await delete_batch(conn, table, table.c.deliver_time < before, limit)


def retention_job(table: sa.Table, window: timedelta) -> RetentionJob:
    async def run(conn: AsyncConnection, before: datetime, limit: int) -> int:
        return await prune_delivered(conn, table, before, limit)

    return RetentionJob("outbox", window, run)


@dataclass(frozen=True)
class OutboxItem:
    topic: str
    key: str
    payload: bytes


async def enqueue_many(conn: AsyncConnection, table: sa.Table, items: Sequence[OutboxItem]) -> None:
    """Write many events in the caller's transaction, in one statement per chunk.

    For keys that are new by construction (fresh delivery or order ids): unlike
    :func:`enqueue` it does not look for an existing key first, which a fan-out of
    100,000 deliveries cannot afford. A repeated key fails the transaction.
    """
    now = datetime.now(UTC)
    for start in range(0, len(items), ENQUEUE_CHUNK):
        await conn.execute(
            sa.insert(table),
            [
                {
                    "topic": item.topic,
                    "key": item.key,
                    "payload": item.payload,
                    "create_time": now,
                    "attempts": 0,
                    "next_attempt_time": now,
                }
                for item in items[start : start + ENQUEUE_CHUNK]
            ],
        )


async def enqueue(
    conn: AsyncConnection, table: sa.Table, topic: str, key: str, payload: bytes
) -> None:
    """Write an event in the caller's transaction; a key already queued is left as it is."""
    now = datetime.now(UTC)
    exists = await conn.scalar(sa.select(table.c.id).where(table.c.key == key))
    if exists is not None:
        return
    await conn.execute(
        sa.insert(table).values(
            topic=topic,
            key=key,
            payload=payload,
            create_time=now,
            attempts=0,
            next_attempt_time=now,
        )
    )


def backoff(attempts: int) -> float:
    return float(min(MAX_BACKOFF_SECONDS, 0.2 * 2 ** min(attempts, 10)))


class OutboxRelay:
    """Delivers due events with bounded concurrency, retrying failures with backoff."""

    def __init__(
        self,
        db: Database,
        table: sa.Table,
        handlers: Mapping[str, Handler],
        *,
        batch: int = 200,
        concurrency: int = 32,
        poll_seconds: float = 0.25,
        max_attempts: int = 50,
    ) -> None:
        self.db = db
        self.table = table
        self.handlers = dict(handlers)
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.max_attempts = max_attempts
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Deliver now rather than at the next poll (call after committing new events)."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"outbox-{self.db.service}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                delivered = await self.relay_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay pass failed", service=self.db.service)
                delivered = 0
            if delivered < self.batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
                self._wake.clear()

    async def _claim(self) -> list[OutboxEvent]:
        t = self.table
        now = datetime.now(UTC)
        due = (
            sa.select(t.c.id)
            .where(
                t.c.deliver_time.is_(None),
                t.c.fail_time.is_(None),
                t.c.next_attempt_time <= now,
                sa.or_(t.c.lease_until.is_(None), t.c.lease_until < now),
            )
            .order_by(t.c.id)
            .limit(self.batch)
        )
        async with self.db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            ids = list((await conn.execute(due)).scalars())
            if not ids:
                return []
            rows = await conn.execute(
                sa.update(t)
                .where(t.c.id.in_(ids))
                .values(lease_until=now + LEASE, attempts=t.c.attempts + 1)
                .returning(t.c.id, t.c.topic, t.c.key, t.c.payload, t.c.attempts)
            )
            events = [OutboxEvent(r.id, r.topic, r.key, bytes(r.payload), r.attempts) for r in rows]
        return sorted(events, key=lambda e: e.id)

    async def relay_once(self) -> int:
        """Claim and deliver one batch; returns how many were claimed."""
        events = await self._claim()
        if not events:
            return 0
        outcomes = await asyncio.gather(*(self._deliver(event) for event in events))
        delivered = [event.id for event, ok in zip(events, outcomes, strict=True) if ok]
        if delivered:
            # One transaction marks the whole batch: a crash before it repeats the calls,
            # which the receivers deduplicate by key.
            t = self.table
            async with self.db.engine.begin() as conn:
                await conn.execute(
                    sa.update(t)
                    .where(t.c.id.in_(delivered))
                    .values(deliver_time=datetime.now(UTC), lease_until=None, last_error=None)
                )
        return len(events)

    async def _deliver(self, event: OutboxEvent) -> bool:
        """True when delivered; a failure is recorded with its next attempt time."""
        handler = self.handlers.get(event.topic)
        t = self.table
        async with self._slots:
            try:
                if handler is None:
                    raise PermanentFailure(f"no handler for topic {event.topic}")
                await handler(event)
                return True
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                now = datetime.now(UTC)
                permanent = isinstance(exc, PermanentFailure) or event.attempts >= self.max_attempts
                values: dict[str, object] = {
                    "lease_until": None,
                    "last_error": f"{type(exc).__name__}: {exc}"[:500],
                    "next_attempt_time": now + timedelta(seconds=backoff(event.attempts)),
                }
                if permanent:
                    values["fail_time"] = now
                log.warning(
                    "outbox delivery failed",
                    topic=event.topic,
                    event_id=event.id,
                    attempts=event.attempts,
                    permanent=permanent,
                    error=type(exc).__name__,
                )
                async with self.db.engine.begin() as conn:
                    await conn.execute(sa.update(t).where(t.c.id == event.id).values(**values))
                return False
