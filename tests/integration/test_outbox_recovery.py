"""The outbox after an outage: an unreachable peer never uses up an event's attempts, events
written meanwhile wait for the probe instead of each being tried, one probe finds the peer
back and makes the whole backlog due, and a restarted relay does not wait out backoff
written before it started. On a real database, both backends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from services.common.db import Database
from services.common.outbox import OutboxEvent, OutboxRelay, enqueue, outbox_table
from services.common.retention import RetentionSettings

TOPIC = "stop-payment"


class PeerDown(Exception):
    unreachable = True


class Peer:
    """A receiver that is down until told otherwise, and counts what it received."""

    def __init__(self) -> None:
        self.up = False
        self.received: list[str] = []

    async def __call__(self, event: OutboxEvent) -> None:
        if not self.up:
            raise PeerDown("connection refused")
        self.received.append(event.key)


@pytest.fixture
async def outbox(db_target: tuple[str, str | None]) -> AsyncIterator[tuple[Database, sa.Table]]:
    url, schema = db_target
    db = Database("outboxtest", url=url, schema=schema)
    metadata = sa.MetaData()
    table = outbox_table(metadata)
    async with db.engine.begin() as conn:
        if schema:
            await conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        await conn.run_sync(metadata.create_all)
    try:
        yield db, table
    finally:
        await db.dispose()


async def _waiting(db: Database, table: sa.Table) -> list[int]:
    """The attempts of every event not yet delivered nor failed."""
    async with db.engine.begin() as conn:
        attempts = await conn.scalars(
            sa.select(table.c.attempts).where(
                table.c.deliver_time.is_(None), table.c.fail_time.is_(None)
            )
        )
        return list(attempts)


async def _until(check: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not await check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "not reached in time"
        await asyncio.sleep(0.05)


async def _defer_all(db: Database, table: sa.Table) -> None:
    """As if the backoff had grown long: each event tried once more, and not due for an
    hour (an event never tried and due later is one written to be due then, which a restart
    or a probe leaves alone)."""
    async with db.engine.begin() as conn:
        await conn.execute(
            sa.update(table).values(
                next_attempt_time=datetime.now(UTC) + timedelta(hours=1),
                attempts=table.c.attempts + 1,
            )
        )


async def test_a_peer_that_comes_back_gets_its_whole_backlog_at_once(
    outbox: tuple[Database, sa.Table],
) -> None:
    db, table = outbox
    async with db.engine.begin() as conn:
        for i in range(30):
            await enqueue(conn, table, TOPIC, f"order-{i}", b"x")
    peer = Peer()
    relay = OutboxRelay(db, table, {TOPIC: peer}, poll_seconds=0.05, max_attempts=1)
    relay.start()
    try:

        async def all_tried() -> bool:
            rows = await _waiting(db, table)
            return len(rows) == 30 and all(attempts >= 1 for attempts in rows)

        await _until(all_tried)
        await _defer_all(db, table)
        # Down for longer than max_attempts allows: an outage fails nothing for good.
        await asyncio.sleep(1.5)
        assert len(await _waiting(db, table)) == 30
        peer.up = True

        async def all_delivered() -> bool:
            return len(await _waiting(db, table)) == 0

        # Without the probe these would wait an hour.
        await _until(all_delivered)
        assert sorted(peer.received) == sorted(f"order-{i}" for i in range(30))
    finally:
        await relay.stop()


async def test_events_written_while_their_peer_is_down_wait_for_the_probe(
    outbox: tuple[Database, sa.Table],
) -> None:
    db, table = outbox
    async with db.engine.begin() as conn:
        await enqueue(conn, table, TOPIC, "order-first", b"x")
    peer = Peer()
    relay = OutboxRelay(db, table, {TOPIC: peer}, poll_seconds=0.05)
    relay.start()
    try:

        async def first_tried() -> bool:
            return (await _waiting(db, table)) == [1]

        await _until(first_tried)  # its peer is now known to be down
        async with db.engine.begin() as conn:
            for i in range(20):
                await enqueue(conn, table, TOPIC, f"order-{i}", b"x")
        relay.wake()
        # Several passes and probes later: only the oldest event was tried again (the
        # probe); the new ones were not each sent to a peer known to be down.
        await asyncio.sleep(1.5)
        attempts = await _waiting(db, table)
        assert len(attempts) == 21
        assert sorted(attempts)[:20] == [0] * 20
        peer.up = True

        async def all_delivered() -> bool:
            return len(await _waiting(db, table)) == 0

        await _until(all_delivered)
        assert sorted(peer.received) == sorted(["order-first", *(f"order-{i}" for i in range(20))])
    finally:
        await relay.stop()


async def test_a_restarted_relay_does_not_wait_out_old_backoff(
    outbox: tuple[Database, sa.Table],
) -> None:
    db, table = outbox
    async with db.engine.begin() as conn:
        for i in range(5):
            await enqueue(conn, table, TOPIC, f"promotion-{i}", b"x")
    await _defer_all(db, table)
    peer = Peer()
    peer.up = True
    relay = OutboxRelay(db, table, {TOPIC: peer}, poll_seconds=0.05)
    relay.start()
    try:

        async def all_delivered() -> bool:
            return len(await _waiting(db, table)) == 0

        await _until(all_delivered)
        assert len(peer.received) == 5
    finally:
        await relay.stop()


async def test_an_event_older_than_the_idempotency_window_fails_instead_of_being_retried(
    outbox: tuple[Database, sa.Table],
) -> None:
    """Past the receivers' idempotency window a retry could be applied twice: the relay
    fails such an event for good (for an operator) and still delivers the fresh ones."""
    db, table = outbox
    settings = RetentionSettings(idempotency=timedelta(hours=24))
    assert settings.outbox_retry_age == timedelta(hours=23)
    async with db.engine.begin() as conn:
        await enqueue(conn, table, TOPIC, "order-stale", b"x")
        await conn.execute(
            sa.update(table)
            .where(table.c.key == "order-stale")
            .values(create_time=datetime.now(UTC) - timedelta(hours=23, minutes=30))
        )
        await enqueue(conn, table, TOPIC, "order-fresh", b"x")
    peer = Peer()
    peer.up = True
    relay = OutboxRelay(
        db, table, {TOPIC: peer}, poll_seconds=0.05, max_age=settings.outbox_retry_age
    )
    relay.start()
    try:

        async def settled() -> bool:
            return len(await _waiting(db, table)) == 0

        await _until(settled)
    finally:
        await relay.stop()
    assert peer.received == ["order-fresh"]
    async with db.engine.begin() as conn:
        failed = list(
            await conn.scalars(sa.select(table.c.key).where(table.c.fail_time.is_not(None)))
        )
    assert failed == ["order-stale"]


async def test_an_urgent_topic_is_claimed_ahead_of_a_backlog_written_before_it(
    outbox: tuple[Database, sa.Table],
) -> None:
    """A stop-payment order written after a fan-out's SMS goes out in the relay's first
    batch, not after all of them; the SMS keep their own order."""
    db, table = outbox
    async with db.engine.begin() as conn:
        for i in range(300):
            await enqueue(conn, table, "sms", f"sms-{i}", b"x")
        await enqueue(conn, table, TOPIC, "order-1", b"x")
    received: list[str] = []

    async def receive(event: OutboxEvent) -> None:
        received.append(event.key)

    relay = OutboxRelay(db, table, {"sms": receive, TOPIC: receive}, batch=50, urgent=(TOPIC,))
    assert await relay.relay_once() == 50
    assert "order-1" in received
    sms = [key for key in received if key.startswith("sms-")]
    assert set(sms) == {f"sms-{i}" for i in range(49)}  # the oldest, after the order
    while await relay.relay_once():
        pass
    assert len(received) == 301
    assert received.count("order-1") == 1
