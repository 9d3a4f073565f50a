"""Retention: rows the suite keeps only for a window, deleted by one loop per process.

Every service runs one ``Retention`` with the jobs of its tables: its idempotency
keys and delivered outbox rows (``idempotency.retention_job``,
``outbox.retention_job``), and what is its own (the risk change feed, the warning
service's contacts). A job deletes in batches of ``batch`` rows, each batch in its
own short transaction, so a backlog never holds a lock for long; several replicas
may run the same job at once (they delete the same rows once).

| variable | default | what is kept, and for how long |
| --- | --- | --- |
| ``ANTIFRAUD_IDEMPOTENCY_RETENTION_HOURS`` | 24 | a request id answers with its first response |
| ``ANTIFRAUD_OUTBOX_RETENTION_HOURS`` | 24 | delivered outbox rows (failed ones stay) |
| ``ANTIFRAUD_RISK_FEED_RETENTION_DAYS`` | 7 | the risk change feed; an older cursor is expired |
| ``ANTIFRAUD_RETENTION_INTERVAL_SECONDS`` | 600 | how often the jobs run |

The outbox and the idempotency window are one contract: a relay retries an event with
the same key until it is delivered, and the receiver (our services, the partners)
answers a key it has seen with its first response only while it still remembers the key,
for the idempotency window. A retry after that could be applied twice, so the relays
retry an event for ``outbox_retry_age``, the window less an hour's margin, and then fail
it for good (``fail_time``, ``antifraud_outbox_failures_total{kind="permanent"}``) for
an operator to look at. One setting serves both sides: every process of a deployment
reads the same ``ANTIFRAUD_IDEMPOTENCY_RETENTION_HOURS``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.config import env_float, env_int
from services.common.db import Database
from services.common.logs import get_logger
from services.common.loops import cancel_and_wait

log = get_logger("retention")

#: Deletes up to ``limit`` rows older than the cutoff, in the caller's transaction;
#: returns how many it deleted.
Prune = Callable[[AsyncConnection, datetime, int], Awaitable[int]]


@dataclass(frozen=True)
class RetentionSettings:
    idempotency: timedelta = timedelta(hours=24)
    outbox: timedelta = timedelta(hours=24)
    risk_feed: timedelta = timedelta(days=7)
    interval_seconds: float = 600.0
    batch: int = 5000

    @property
    def outbox_retry_age(self) -> timedelta:
        """How long a relay retries an event: while every receiver still remembers its key
        (the idempotency window less an hour, or half of a window shorter than two hours)."""
        return max(self.idempotency - timedelta(hours=1), self.idempotency / 2)

    @classmethod
    def from_env(cls) -> RetentionSettings:
        d = cls()
        return cls(
            idempotency=timedelta(
                hours=env_float("IDEMPOTENCY_RETENTION_HOURS", d.idempotency / timedelta(hours=1))
            ),
            outbox=timedelta(
                hours=env_float("OUTBOX_RETENTION_HOURS", d.outbox / timedelta(hours=1))
            ),
            risk_feed=timedelta(
                days=env_float("RISK_FEED_RETENTION_DAYS", d.risk_feed / timedelta(days=1))
            ),
            interval_seconds=env_float("RETENTION_INTERVAL_SECONDS", d.interval_seconds),
            batch=env_int("RETENTION_BATCH", d.batch),
        )


@dataclass(frozen=True)
class RetentionJob:
    """Rows of one kind, kept for ``window``."""

    name: str
    window: timedelta
    prune: Prune


async def delete_batch(
    conn: AsyncConnection, table: sa.Table, condition: sa.ColumnElement[bool], limit: int
) -> int:
    """Delete up to ``limit`` rows of ``table`` matching ``condition``, chosen by primary key."""
    key = list(table.primary_key.columns)
    chosen = sa.select(*key).where(condition).limit(limit)
    target = key[0] if len(key) == 1 else sa.tuple_(*key)
    result = await conn.execute(sa.delete(table).where(target.in_(chosen)))
    return int(result.rowcount or 0)


class Retention:
    """Runs every job every ``interval_seconds`` (first right after start), and on demand."""

    def __init__(
        self,
        db: Database,
        jobs: Sequence[RetentionJob],
        *,
        interval_seconds: float = 600.0,
        batch: int = 5000,
    ) -> None:
        self.db = db
        self.jobs = list(jobs)
        self.interval_seconds = interval_seconds
        self.batch = max(batch, 1)
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def of(
        cls, db: Database, jobs: Sequence[RetentionJob], settings: RetentionSettings
    ) -> Retention:
        return cls(db, jobs, interval_seconds=settings.interval_seconds, batch=settings.batch)

    async def run_once(self, now: datetime | None = None) -> dict[str, int]:
        """Run every job to the end of its backlog; returns how many rows each deleted."""
        now = now or datetime.now(UTC)
        deleted: dict[str, int] = {}
        for job in self.jobs:
            cutoff = now - job.window
            total = 0
            while True:
                async with self.db.engine.begin() as conn:
                    count = await job.prune(conn, cutoff, self.batch)
                total += count
                if count < self.batch:
                    break
                await asyncio.sleep(0)  # let calls in between batches
            deleted[job.name] = total
            if total:
                log.info(
                    "retention pruned",
                    service=self.db.service,
                    job=job.name,
                    deleted=total,
                    window_hours=round(job.window / timedelta(hours=1), 3),
                )
        return deleted

    def start(self) -> None:
        if self._task is None and self.jobs:
            self._task = asyncio.create_task(self._run(), name=f"retention-{self.db.service}")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The type only: a database error's parameters may hold personal values.
                log.error(
                    "retention pass failed", service=self.db.service, error=type(exc).__name__
                )
            await asyncio.sleep(self.interval_seconds)
