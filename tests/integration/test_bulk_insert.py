"""Bulk inserts (services/common/bulk.py) and a relay with two batches in flight, on a real
database (SQLite and PostgreSQL): rows written by COPY or a plain executemany come back as
written, sealed columns sealed, and only when their transaction commits; two relay lanes
deliver every event exactly once; a relay giving way to a fan-out sends a few of its SMS a
pass, and every urgent event at once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import sqlalchemy as sa

from services.common.bulk import insert_rows
from services.common.db import Database
from services.common.keys import KeyRing
from services.common.outbox import (
    GIVE_WAY_BATCH,
    OutboxEvent,
    OutboxItem,
    OutboxRelay,
    enqueue_many,
    outbox_table,
)
from services.common.sealed import FixedSealed
from services.common.vault import Vault
from services.warning.adapters.tables import UtcDateTime

metadata = sa.MetaData()
people = sa.Table(
    "bulk_people",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("phone_number", FixedSealed("test.phone"), nullable=False),
    sa.Column("level", sa.Integer, nullable=False),
    sa.Column("note", sa.String(100), nullable=True),
    sa.Column("seen", UtcDateTime(), nullable=False),  # through its bind processor
    sa.Column("flag", sa.Boolean, nullable=False),
)
outbox = outbox_table(metadata)


@pytest.fixture
async def db(db_target: tuple[str, str | None]) -> AsyncIterator[Database]:
    url, schema = db_target
    database = Database("bulktest", url=url, schema=schema, vault=Vault(KeyRing.generate()))
    async with database.engine.begin() as conn:
        if schema:
            await conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        await conn.run_sync(metadata.create_all)
    try:
        yield database
    finally:
        await database.dispose()


def _rows(count: int, start: int = 0) -> list[dict[str, object]]:
    seen = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    return [
        {
            "id": f"p-{i:05d}",
            "phone_number": f"+86138{i:08d}",
            "level": i % 4,
            "note": None if i % 2 else f"note {i}",
            "seen": seen + timedelta(minutes=i),
            "flag": bool(i % 3),
        }
        for i in range(start, start + count)
    ]


async def test_rows_come_back_as_written_with_phone_numbers_sealed(db: Database) -> None:
    rows = _rows(1500)
    async with db.engine.begin() as conn:
        await insert_rows(conn, people, rows)
        await insert_rows(conn, people, [])  # nothing to write is no statement
    async with db.engine.connect() as conn:
        back = (await conn.execute(sa.select(people).order_by(people.c.id))).mappings().all()
        stored = (
            await conn.execute(sa.select(sa.type_coerce(people.c.phone_number, sa.String)))
        ).scalars()
        found = (
            await conn.execute(
                sa.select(people.c.id).where(people.c.phone_number == "+8613800000007")
            )
        ).scalar_one()
    assert [dict(r) for r in back] == rows
    assert all(value.startswith("s1.") and "+86" not in value for value in stored)
    assert found == "p-00007"  # equality on the sealed column finds a bulk-written row


async def _write_then_fail(db: Database) -> None:
    async with db.engine.begin() as conn:
        await insert_rows(conn, people, _rows(10))
        raise RuntimeError("the chunk fails after its rows were written")


async def test_rows_are_part_of_the_callers_transaction(db: Database) -> None:
    """Even as the first statement of a transaction (COPY on PostgreSQL), the rows are
    rolled back with it."""
    with pytest.raises(RuntimeError):
        await _write_then_fail(db)
    async with db.engine.begin() as conn:
        await insert_rows(conn, people, _rows(10, start=100))
        await conn.execute(sa.update(people).values(level=9))
    async with db.engine.connect() as conn:
        left = (await conn.execute(sa.select(people.c.id, people.c.level))).all()
    assert sorted(left) == [(f"p-{i:05d}", 9) for i in range(100, 110)]


async def _write_with_a_repeat(db: Database) -> None:
    async with db.engine.begin() as conn:
        await insert_rows(conn, people, _rows(3, start=10))
        await insert_rows(conn, people, _rows(3, start=3))


async def test_a_repeated_key_fails_the_whole_transaction(db: Database) -> None:
    async with db.engine.begin() as conn:
        await insert_rows(conn, people, _rows(5))
    # The driver's own error: COPY is not a statement SQLAlchemy wraps.
    with pytest.raises((sa.exc.IntegrityError, asyncpg.exceptions.UniqueViolationError)):
        await _write_with_a_repeat(db)
    async with db.engine.connect() as conn:
        count = await conn.scalar(sa.select(sa.func.count()).select_from(people))
    assert count == 5


async def test_two_relay_lanes_deliver_every_event_exactly_once(db: Database) -> None:
    total = 1000
    async with db.engine.begin() as conn:
        await enqueue_many(conn, outbox, [OutboxItem("sms", f"d-{i}", b"x") for i in range(total)])
    received: Counter[str] = Counter()

    async def peer(event: OutboxEvent) -> None:
        await asyncio.sleep(0.001 * (event.id % 5))  # uneven calls: the lanes overlap
        received[event.key] += 1

    relay = OutboxRelay(db, outbox, {"sms": peer}, batch=100, poll_seconds=0.05, pipeline=2)
    relay.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            async with db.engine.connect() as conn:
                waiting = await conn.scalar(
                    sa.select(sa.func.count())
                    .select_from(outbox)
                    .where(outbox.c.deliver_time.is_(None))
                )
            if waiting == 0:
                break
            assert time.monotonic() < deadline, f"{waiting} events still waiting"
            await asyncio.sleep(0.05)
    finally:
        await relay.stop()
    assert set(received) == {f"d-{i}" for i in range(total)}
    assert set(received.values()) == {1}


async def test_a_relay_giving_way_sends_a_few_a_pass_every_urgent_event_and_loses_nothing(
    db: Database,
) -> None:
    """While a fan-out is queued, a pass claims every due stop-payment order (urgent) and
    only the oldest ``GIVE_WAY_BATCH`` SMS; at full speed again, the rest, each once."""
    total = 130
    async with db.engine.begin() as conn:
        await enqueue_many(conn, outbox, [OutboxItem("sms", f"d-{i}", b"x") for i in range(total)])
        await enqueue_many(conn, outbox, [OutboxItem("order", f"o-{i}", b"x") for i in range(30)])
    received: list[str] = []

    async def peer(event: OutboxEvent) -> None:
        received.append(event.key)

    giving_way = True
    relay = OutboxRelay(
        db,
        outbox,
        {"sms": peer, "order": peer},
        batch=100,
        urgent=("order",),
        give_way=lambda: giving_way,
    )
    assert await relay.relay_once() == 30 + GIVE_WAY_BATCH
    assert sorted(k for k in received if k.startswith("o-")) == sorted(f"o-{i}" for i in range(30))
    assert [k for k in received if k.startswith("d-")] == [f"d-{i}" for i in range(GIVE_WAY_BATCH)]
    assert not relay.backlogged  # the relay waits for a wake or its poll
    giving_way = False
    assert await relay.relay_once() == 100
    assert await relay.relay_once() == total - 100 - GIVE_WAY_BATCH
    assert await relay.relay_once() == 0
    assert sorted(received) == sorted(
        [f"d-{i}" for i in range(total)] + [f"o-{i}" for i in range(30)]
    )
    assert len(received) == total + 30
