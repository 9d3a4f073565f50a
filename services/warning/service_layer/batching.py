"""Group commit: many concurrent callers' small writes in one transaction.

Screening calls (every carrier's stream) and the outbox relay's SMS sends each must have
their write durable before they answer. One transaction each makes the writers queue for
the database's commit (a round trip and a flush each; on SQLite the write lock, with
sleeps); here they hand their write to one collector task that gathers what arrives within
``linger_seconds`` of the first (or until ``max_items``), plus everything that arrived while
the previous transaction committed, applies it all with ``apply(conn, writes)`` (multi-row
statements) and commits once. Each caller returns only when its write is committed.

Each caller gets its own answer:

- a transaction that fails for a reason of the data (a constraint, a value the database
  refuses) is tried again with each write alone, so a bad write fails only its own caller
  and the rest are committed;
- a database that cannot be reached (``infrastructure_error``) fails every write of the
  batch at once: trying them one by one would only wait for the same outage N times;
- a caller cancelled while it waits (its client went away) does not cancel the batch: the
  others' writes are committed as if it had stayed, and its own is written too (the writes
  grouped here are idempotent: a repeat finds its record).

``enabled=False`` commits each write in its own transaction, in the caller's task: the
baseline the bench compares against (``ANTIFRAUD_WARNING_GROUP_COMMIT=0``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.db import Database
from services.common.errors import infrastructure_error
from services.common.logs import get_logger
from services.warning.settings import BatchSettings

log = get_logger("warning.batching")

W = TypeVar("W")


@dataclass
class BatchStats:
    """What the batcher did: transactions, writes, and the retries alone after a failure."""

    transactions: int = 0
    writes: int = 0
    split: int = 0


class GroupCommit(Generic[W]):
    """Collects writes of type ``W`` and applies them with ``apply(conn, writes)`` in one
    transaction per batch. ``apply`` must leave no state behind when its transaction fails
    (the writes are applied again, alone)."""

    def __init__(
        self,
        db: Database,
        apply: Callable[[AsyncConnection, list[W]], Awaitable[None]],
        settings: BatchSettings | None = None,
        name: str = "warning-group-commit",
    ) -> None:
        self._db = db
        self._apply = apply
        self.settings = settings or BatchSettings()
        self._name = name
        self._pending: list[tuple[W, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.stats = BatchStats()

    async def write(self, item: W) -> None:
        """Return once ``item`` is committed; raise what its transaction raised."""
        if not self.settings.enabled:
            await self._commit([item])
            return
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=self._name)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((item, done))
        self._wake.set()
        await done

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for _, done in self._pending:
            if not done.done():
                done.set_exception(RuntimeError("stopped before the commit"))
        self._pending.clear()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self.settings.linger_seconds > 0 and len(self._pending) < self.settings.max_items:
                # The first of a new batch: give its neighbours a moment to join.
                await asyncio.sleep(self.settings.linger_seconds)
            while self._pending:
                size = max(1, self.settings.max_items)
                batch, self._pending = self._pending[:size], self._pending[size:]
                try:
                    await self._commit_batch(batch)
                except asyncio.CancelledError:
                    for _, done in batch:
                        if not done.done():  # a caller cancelled meanwhile has its answer
                            done.set_exception(RuntimeError("stopped before the commit"))
                    raise

    async def _commit_batch(self, batch: list[tuple[W, asyncio.Future[None]]]) -> None:
        try:
            await self._commit([item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1 or infrastructure_error(exc) is not None:
                _settle(batch, exc)
                return
            # A write the database refuses: find it by trying each alone.
            self.stats.split += 1
            log.warning("group commit failed; writes retried alone", error=type(exc).__name__)
            for one in batch:
                await self._commit_batch([one])
            return
        _settle(batch, None)

    async def _commit(self, items: list[W]) -> None:
        async with self._db.engine.begin() as conn:
            await self._apply(conn, items)
        self.stats.transactions += 1
        self.stats.writes += len(items)


def _settle(batch: list[tuple[W, asyncio.Future[None]]], error: Exception | None) -> None:
    for _, done in batch:
        if done.done():  # its caller was cancelled; the write stands (or failed) anyway
            continue
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)
