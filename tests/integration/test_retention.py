"""The shared retention loop on a real database (SQLite and PostgreSQL): each job removes
exactly what is past its window, in batches, and leaves everything else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from google.protobuf.empty_pb2 import Empty

from services.common import idempotency, outbox
from services.common.db import Database
from services.common.retention import Retention, RetentionSettings

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
WINDOW = timedelta(hours=24)


@pytest.fixture
async def db(
    db_target: tuple[str, str | None],
) -> AsyncIterator[tuple[Database, sa.Table, sa.Table]]:
    url, schema = db_target
    metadata = sa.MetaData()
    keys = idempotency.idempotency_table(metadata)
    events = outbox.outbox_table(metadata)
    database = Database("retention-test", url=url, schema=schema)
    async with database.engine.begin() as conn:
        if schema:
            await conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        await conn.run_sync(metadata.create_all)
    yield database, keys, events
    await database.dispose()


def _age(minutes: int) -> datetime:
    return NOW - WINDOW - timedelta(minutes=minutes)


async def test_each_job_removes_exactly_what_is_past_its_window(
    db: tuple[Database, sa.Table, sa.Table],
) -> None:
    database, keys, events = db
    # Request ids: 7 older than the window, 3 within it (one a minute short of it).
    key_times = [_age(m) for m in range(1, 8)] + [_age(-1), NOW - timedelta(hours=1), NOW]
    # Outbox rows: delivered long ago (gone), delivered lately, never delivered though old,
    # failed for good though old (both stay: only delivered rows are forgotten).
    rows = [
        ("old-delivered-1", _age(5), _age(5), None),
        ("old-delivered-2", _age(60), _age(60), None),
        ("old-delivered-3", _age(1), _age(1), None),
        ("recent-delivered", _age(10), NOW - timedelta(minutes=5), None),
        ("edge-delivered", _age(10), _age(-1), None),
        ("old-pending", _age(90), None, None),
        ("old-failed", _age(90), None, _age(80)),
    ]
    async with database.engine.begin() as conn:
        await conn.execute(
            sa.insert(keys),
            [
                {
                    "method": "M",
                    "request_id": f"{i:036d}",
                    "fingerprint": "f",
                    "response": b"",
                    "create_time": t,
                }
                for i, t in enumerate(key_times)
            ],
        )
        await conn.execute(
            sa.insert(events),
            [
                {
                    "topic": "t",
                    "key": key,
                    "payload": b"",
                    "create_time": created,
                    "attempts": 1,
                    "next_attempt_time": created,
                    "deliver_time": delivered,
                    "fail_time": failed,
                }
                for key, created, delivered, failed in rows
            ],
        )
    retention = Retention(
        database,
        [idempotency.retention_job(keys, WINDOW), outbox.retention_job(events, WINDOW)],
        batch=2,  # several batches: each its own short transaction
    )
    assert await retention.run_once(NOW) == {"idempotency_keys": 7, "outbox": 3}
    async with database.read() as conn:
        kept_keys = sorted((await conn.execute(sa.select(keys.c.request_id))).scalars())
        kept_rows = sorted((await conn.execute(sa.select(events.c.key))).scalars())
    assert kept_keys == [f"{i:036d}" for i in (7, 8, 9)]
    assert kept_rows == ["edge-delivered", "old-failed", "old-pending", "recent-delivered"]
    # Nothing more to do: a second pass deletes nothing.
    assert await retention.run_once(NOW) == {"idempotency_keys": 0, "outbox": 0}


async def test_a_forgotten_request_id_is_a_new_request(
    db: tuple[Database, sa.Table, sa.Table],
) -> None:
    database, keys, _ = db
    async with database.engine.begin() as conn:
        await idempotency.remember(conn, keys, "M", "r-1", "print", Empty())
        assert await idempotency.recall(conn, keys, "M", "r-1", "print") is not None
    later = datetime.now(UTC) + WINDOW + timedelta(minutes=1)
    await Retention(database, [idempotency.retention_job(keys, WINDOW)]).run_once(later)
    async with database.engine.begin() as conn:
        assert await idempotency.recall(conn, keys, "M", "r-1", "print") is None


def test_every_window_is_set_by_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert RetentionSettings.from_env() == RetentionSettings()
    defaults = RetentionSettings()
    assert defaults.idempotency == timedelta(hours=24)
    assert defaults.outbox == timedelta(hours=24)
    assert defaults.risk_feed == timedelta(days=7)
    monkeypatch.setenv("ANTIFRAUD_IDEMPOTENCY_RETENTION_HOURS", "48")
    monkeypatch.setenv("ANTIFRAUD_OUTBOX_RETENTION_HOURS", "0.5")
    monkeypatch.setenv("ANTIFRAUD_RISK_FEED_RETENTION_DAYS", "30")
    monkeypatch.setenv("ANTIFRAUD_RETENTION_INTERVAL_SECONDS", "60")
    monkeypatch.setenv("ANTIFRAUD_RETENTION_BATCH", "100")
    assert RetentionSettings.from_env() == RetentionSettings(
        idempotency=timedelta(hours=48),
        outbox=timedelta(minutes=30),
        risk_feed=timedelta(days=30),
        interval_seconds=60.0,
        batch=100,
    )
