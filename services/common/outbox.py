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
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common import metrics, tracing
from services.common.bulk import insert_rows
from services.common.db import Database
from services.common.logs import get_logger
from services.common.retention import RetentionJob, delete_batch

log = get_logger("outbox")

LEASE = timedelta(seconds=30)
ENQUEUE_CHUNK = 1000
MAX_BACKOFF_SECONDS = 30.0
#: While a topic's peer is unreachable, its oldest waiting event is tried this often; the
#: first that gets through makes every waiting event of the topic due at once, so a peer
#: that comes back gets its backlog within about this long, without being hammered
#: while it is down.
PROBE_SECONDS = 0.5
#: Events of other than urgent topics a pass claims while the relay gives way
#: (``OutboxRelay.give_way``).
GIVE_WAY_BATCH = 20
_UNREACHABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


class PermanentFailure(Exception):
    """The receiver refused the event for good; retrying cannot help."""


def unreachable(error: BaseException) -> bool:
    """True when the peer could not be reached (down, restarting, overloaded), as opposed
    to a peer that answered; such failures never use up an event's attempts.

    Adapters that wrap gRPC errors say so with an ``unreachable`` attribute or keep the
    gRPC error as the cause."""
    found: BaseException | None = error
    while found is not None:
        flag = getattr(found, "unreachable", None)
        if isinstance(flag, bool):
            return flag
        if isinstance(found, grpc.aio.AioRpcError):
            return found.code() in _UNREACHABLE
        found = found.__cause__
    return False


@dataclass(frozen=True)
class OutboxEvent:
    id: int
    topic: str
    key: str
    payload: bytes
    attempts: int
    create_time: datetime | None = None
    #: The trace the event was written in (a W3C traceparent), continued when it is relayed.
    trace_context: str | None = None


Handler = Callable[[OutboxEvent], Awaitable[None]]


def outbox_table(metadata: sa.MetaData) -> sa.Table:
    table = sa.Table(
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
        sa.Column("trace_context", sa.String(tracing.MAX_STORED), nullable=True),
        sa.Index("ix_outbox_due", "deliver_time", "fail_time", "next_attempt_time"),
    )
    # The events still waiting, in id order and by topic: a claim (oldest due first; urgent
    # topics first; a probe of one topic) reads these instead of walking past the events
    # already delivered (kept a day: a fan-out's 100,000 SMS, a day's reports' risk syncs).
    waiting = table.c.deliver_time.is_(None) & table.c.fail_time.is_(None)
    sa.Index("ix_outbox_waiting", table.c.id, postgresql_where=waiting, sqlite_where=waiting)
    sa.Index(
        "ix_outbox_waiting_topic",
        table.c.topic,
        table.c.id,
        postgresql_where=waiting,
        sqlite_where=waiting,
    )
    return table


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
    #: Due this many seconds after it is written (0: at once).
    delay_seconds: float = 0.0


async def enqueue_many(conn: AsyncConnection, table: sa.Table, items: Sequence[OutboxItem]) -> None:
    """Write many events in the caller's transaction, in one bulk insert per chunk (COPY on
    PostgreSQL: ``services.common.bulk``).

    For keys that are new by construction (fresh delivery or order ids): unlike
    :func:`enqueue` it does not look for an existing key first, which a fan-out of
    100,000 deliveries cannot afford. A repeated key fails the transaction.
    """
    now = datetime.now(UTC)
    traced = tracing.current_traceparent()
    for start in range(0, len(items), ENQUEUE_CHUNK):
        await insert_rows(
            conn,
            table,
            [
                {
                    "topic": item.topic,
                    "key": item.key,
                    "payload": item.payload,
                    "create_time": now,
                    "attempts": 0,
                    "next_attempt_time": (
                        now + timedelta(seconds=item.delay_seconds) if item.delay_seconds else now
                    ),
                    "trace_context": traced,
                }
                for item in items[start : start + ENQUEUE_CHUNK]
            ],
        )


async def enqueue(
    conn: AsyncConnection, table: sa.Table, topic: str, key: str, payload: bytes
) -> None:
    """Write an event in the caller's transaction; a key already queued is left as it is.

    One statement (``INSERT ... ON CONFLICT (key) DO NOTHING``), not a look-up and then an
    insert: one round trip per event on the path of every accepted report."""
    now = datetime.now(UTC)
    values = {
        "topic": topic,
        "key": key,
        "payload": payload,
        "create_time": now,
        "attempts": 0,
        "next_attempt_time": now,
        "trace_context": tracing.current_traceparent(),
    }
    statement: sa.Insert
    if conn.dialect.name == "postgresql":
        statement = postgresql.insert(table).on_conflict_do_nothing(index_elements=["key"])
    else:
        statement = sqlite.insert(table).on_conflict_do_nothing(index_elements=["key"])
    await conn.execute(statement, values)


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
        pipeline: int = 1,
        poll_seconds: float = 0.25,
        max_attempts: int = 50,
        max_age: timedelta | None = None,
        urgent: Sequence[str | Collection[str]] = (),
        give_way: Callable[[], bool] = lambda: False,
    ) -> None:
        self.db = db
        self.table = table
        self.handlers = dict(handlers)
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.max_attempts = max_attempts
        #: Events older than this fail for good instead of being retried: past the
        #: receivers' idempotency window a retry could be applied twice
        #: (``RetentionSettings.outbox_retry_age``).
        self.max_age = max_age
        #: Topics claimed ahead of the others in each pass, in the order given (a stop-payment
        #: order, then a single warning's SMS); topics given together (a collection) are
        #: claimed together, oldest first. The others keep their order, but a fan-out's
        #: 100,000 SMS written first do not hold the urgent ones up.
        self.urgent = tuple(
            (entry,) if isinstance(entry, str) else tuple(sorted(entry)) for entry in urgent
        )
        #: While it says so (a fan-out being queued in the process), a pass claims the due
        #: events of urgent topics as always, but only ``GIVE_WAY_BATCH`` of the others,
        #: oldest first, and then waits for a wake or the next poll; only the first lane
        #: claims. The process's core goes to the cheaper work first (an SMS cost it several
        #: times a queued warning), the first SMS still go out at once, and a stop-payment
        #: order waits for nothing.
        self.give_way = give_way
        self._slots = asyncio.Semaphore(concurrency)
        #: Batches in flight at once: while one batch's last calls finish (and its outcomes
        #: are recorded), the next one's fill the free slots instead of waiting for them.
        self.pipeline = max(1, pipeline)
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        #: The last batch claimed was full: more events are waiting than one batch.
        self.backlogged = False
        #: Topics whose peer was unreachable at the last try, with when it was last probed.
        self._down: dict[str, float] = {}

    def wake(self) -> None:
        """Deliver now rather than at the next poll (call after committing new events)."""
        self._wake.set()

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(lane), name=f"outbox-{self.db.service}-{lane}")
            for lane in range(self.pipeline)
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _run(self, lane: int = 0) -> None:
        """One lane of the relay: claims a batch, delivers it, records it, again. The lanes
        share the delivery slots; a claim leases its rows, so no two lanes take the same."""
        if lane == 0:
            # Backoff written before a restart says nothing about the peers now.
            with contextlib.suppress(Exception):
                await self._make_due()
        while True:
            try:
                if lane == 0:
                    await self._probe()
                # Giving way, the first lane claims small passes, the others wait.
                delivered = 0 if lane and self.give_way() else await self.relay_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay pass failed", service=self.db.service)
                delivered = 0
            if delivered < self.batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
                self._wake.clear()

    async def _make_due(self, topic: str | None = None) -> None:
        """Every waiting event (of ``topic``) that was tried before is due now: its backoff is
        over. One never tried keeps its time (due already, or written to be due later)."""
        t = self.table
        query = sa.update(t).where(
            t.c.deliver_time.is_(None), t.c.fail_time.is_(None), t.c.attempts > 0
        )
        if topic is not None:
            query = query.where(t.c.topic == topic)
        async with self.db.engine.begin() as conn:
            await conn.execute(query.values(next_attempt_time=datetime.now(UTC)))

    async def _probe(self) -> None:
        """Try the oldest event of each topic whose peer is down; on success, the rest now."""
        now = time.monotonic()
        for topic, probed in list(self._down.items()):
            if now - probed < PROBE_SECONDS:
                continue
            self._down[topic] = now
            events = await self._claim(topic=topic, limit=1)
            if not events:
                self._down.pop(topic, None)
                continue
            failure = await self._deliver(events[0])
            await self._record([] if failure else [events[0].id], [failure] if failure else [])
            if not failure:
                metrics.OUTBOX_DELIVERED.labels(self.db.service, topic).inc()
                self._down.pop(topic, None)
                await self._make_due(topic)
                log.info("peer reachable again", topic=topic)

    async def _claim(
        self,
        *,
        topic: str | None = None,
        limit: int = 0,
        among: Sequence[Sequence[str]] = (),
    ) -> list[OutboxEvent]:
        """Lease due events, oldest first, or of the topics ``among`` names, when it names
        some: those of its first topics, oldest first, then those of the next, up to
        ``limit`` in all; or, for a probe, the oldest waiting one of ``topic``. One
        transaction, one statement per group of topics (``UPDATE ... WHERE id IN (SELECT
        ...) RETURNING``; on PostgreSQL the select skips rows another relay holds locked)."""
        t = self.table
        now = datetime.now(UTC)
        waiting = [
            t.c.deliver_time.is_(None),
            t.c.fail_time.is_(None),
            sa.or_(t.c.lease_until.is_(None), t.c.lease_until < now),
        ]
        if topic is None:
            waiting.append(t.c.next_attempt_time <= now)
            if self._down:
                # A peer known down gets only its probe (``_probe``), not every new event.
                waiting.append(t.c.topic.not_in(sorted(self._down)))
        else:  # a probe: an event in backoff, not one written to be due later
            waiting += [t.c.topic == topic, sa.or_(t.c.attempts > 0, t.c.next_attempt_time <= now)]
        groups = [[*waiting, t.c.topic.in_(topics)] for topics in among] if among else [waiting]
        limit = limit or self.batch
        events: list[OutboxEvent] = []
        async with self.db.engine.begin() as conn:
            for where in groups:
                if len(events) >= limit:
                    break
                due = sa.select(t.c.id).where(*where).order_by(t.c.id).limit(limit - len(events))
                if conn.dialect.name == "postgresql":
                    due = due.with_for_update(skip_locked=True)
                rows = await conn.execute(
                    sa.update(t)
                    .where(t.c.id.in_(due.scalar_subquery()))
                    .values(lease_until=now + LEASE, attempts=t.c.attempts + 1)
                    .returning(*_event_columns(t))
                )
                events += sorted((_event(row._mapping) for row in rows), key=lambda e: e.id)
        return events

    async def relay_once(self) -> int:
        """Claim and deliver one batch; returns how many were claimed.

        Three round trips per batch whatever its size: the claim, the deliveries (in
        parallel), and one transaction that records every outcome (delivered rows in one
        statement, failures in one multi-row statement); with urgent topics, one more
        transaction, whose due events it claims first, in the order of ``urgent`` (one
        statement per entry). While the relay gives way, a batch holds every due urgent
        event and at most ``GIVE_WAY_BATCH`` others."""
        events = await self._claim(among=self.urgent) if self.urgent else []
        others = self.batch - len(events)
        if self.give_way():
            others = min(others, GIVE_WAY_BATCH)
        if others > 0:
            events += await self._claim(limit=others)
        self.backlogged = len(events) >= self.batch
        if not events:
            return 0
        outcomes = await asyncio.gather(*(self._deliver(event) for event in events))
        delivered = [event.id for event, failed in zip(events, outcomes, strict=True) if not failed]
        failed = [failure for failure in outcomes if failure]
        await self._record(delivered, failed)
        for event, failure in zip(events, outcomes, strict=True):
            if not failure:
                metrics.OUTBOX_DELIVERED.labels(self.db.service, event.topic).inc()
        return len(events)

    async def refresh_metrics(self) -> None:
        """Backlog and age of the oldest waiting event, by topic (for the metrics)."""
        t = self.table
        async with self.db.engine.begin() as conn:
            rows = await conn.execute(
                sa.select(t.c.topic, sa.func.count(), sa.func.min(t.c.create_time))
                .where(t.c.deliver_time.is_(None), t.c.fail_time.is_(None))
                .group_by(t.c.topic)
            )
            waiting = {r[0]: (int(r[1]), r[2]) for r in rows}
        now = datetime.now(UTC)
        for topic in set(self.handlers) | set(waiting):
            count, oldest = waiting.get(topic, (0, None))
            if oldest is not None and oldest.tzinfo is None:
                oldest = oldest.replace(tzinfo=UTC)  # SQLite keeps no zone
            age = (now - oldest).total_seconds() if oldest is not None else 0.0
            metrics.OUTBOX_BACKLOG.labels(self.db.service, topic).set(count)
            metrics.OUTBOX_OLDEST.labels(self.db.service, topic).set(max(age, 0.0))

    async def _record(self, delivered: list[int], failed: list[dict[str, object]]) -> None:
        """One transaction for a batch's outcomes: a crash before it repeats the calls,
        which the receivers deduplicate by key."""
        if not delivered and not failed:
            return
        t = self.table
        async with self.db.engine.begin() as conn:
            if delivered:
                await conn.execute(
                    sa.update(t)
                    .where(t.c.id.in_(delivered))
                    .values(deliver_time=datetime.now(UTC), lease_until=None, last_error=None)
                )
            if failed:
                # executemany of one statement: a multi-row round trip on both drivers.
                await conn.execute(
                    sa.update(t)
                    .where(t.c.id == sa.bindparam("event_id"))
                    .values(
                        lease_until=None,
                        last_error=sa.bindparam("error"),
                        next_attempt_time=sa.bindparam("next_attempt"),
                        fail_time=sa.bindparam("failed_at"),
                    ),
                    failed,
                )

    def _too_old(self, event: OutboxEvent) -> bool:
        if self.max_age is None or event.create_time is None:
            return False
        created = event.create_time
        if created.tzinfo is None:  # SQLite hands back naive UTC
            created = created.replace(tzinfo=UTC)
        return datetime.now(UTC) - created > self.max_age

    async def _deliver(self, event: OutboxEvent) -> dict[str, object] | None:
        """None when delivered; else the failure to record (its next attempt time, and
        its fail time when it failed for good)."""
        handler = self.handlers.get(event.topic)
        async with self._slots:
            try:
                if handler is None:
                    raise PermanentFailure(f"no handler for topic {event.topic}")
                if self._too_old(event):
                    raise PermanentFailure(
                        "older than the receivers' idempotency window: a retry could be "
                        "applied twice"
                    )
                with tracing.restored(
                    event.trace_context, f"outbox {event.topic}", **{"outbox.event_id": event.id}
                ):
                    await handler(event)
                return None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                now = datetime.now(UTC)
                down = unreachable(exc)
                if down:
                    # Probed from now on; an outage never uses up an event's attempts.
                    self._down.setdefault(event.topic, time.monotonic())
                permanent = isinstance(exc, PermanentFailure) or (
                    not down and event.attempts >= self.max_attempts
                )
                kind = "permanent" if permanent else "unreachable" if down else "retry"
                metrics.OUTBOX_FAILURES.labels(self.db.service, event.topic, kind).inc()
                log.warning(
                    "outbox delivery failed",
                    topic=event.topic,
                    event_id=event.id,
                    attempts=event.attempts,
                    permanent=permanent,
                    error=type(exc).__name__,
                )
                return {
                    "event_id": event.id,
                    "error": f"{type(exc).__name__}: {exc}"[:500],
                    "next_attempt": now + timedelta(seconds=backoff(event.attempts)),
                    "failed_at": now if permanent else None,
                }


def _event_columns(table: sa.Table) -> list[sa.Column[Any]]:
    """What a relay reads of a claimed row (add a column here and in ``OutboxEvent``)."""
    names = ("id", "topic", "key", "payload", "attempts", "create_time", "trace_context")
    return [table.c[name] for name in names]


def _event(row: sa.RowMapping) -> OutboxEvent:
    return OutboxEvent(
        id=int(row["id"]),
        topic=str(row["topic"]),
        key=str(row["key"]),
        payload=bytes(row["payload"]),
        attempts=int(row["attempts"]),
        create_time=row["create_time"],
        trace_context=row["trace_context"],
    )
