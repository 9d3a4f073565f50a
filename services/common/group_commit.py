"""Group commit: many concurrent callers' small writes in one transaction.

Used where each call must have its write durable before it answers: the warning
service's screenings and SMS outcomes, the report service's intake. One transaction each
makes the writers queue for the database's commit (a round trip and a flush each; on SQLite
the write lock, with sleeps); here they hand their write to one collector task that gathers
what arrives within ``linger_seconds`` of the first (or until ``max_items``), plus
everything that arrived while the previous transaction committed, applies it all with
``apply(conn, writes)`` (multi-row statements where it can) and commits once. Each caller
returns only when its write is committed, with its own answer (``apply`` returns one per
write, in order).

Each caller gets its own answer:

- a transaction that fails for a reason of the data (a constraint, a value the database
  refuses, a rule of the domain that refuses one write) is tried again with each write
  alone, so a bad write fails only its own caller and the rest are committed;
- a database that cannot be reached (``infrastructure_error``) fails every write of the
  batch at once: trying them one by one would only wait for the same outage N times;
- ``again`` (optional) runs a batch's whole transaction again when the database picked it
  as a deadlock victim;
- a caller cancelled while it waits (its client went away) does not cancel the batch: the
  others' writes are committed as if it had stayed, and its own is written too (the writes
  grouped here are idempotent: a repeat finds its record).

The collector works for many callers, so it runs in none's context (no request id,
deadline, principal or log fields of whichever caller started it); each batch's
transaction is a span of its own linked to each caller's span (``tracing.linked``), and
what it stores for later (outbox events) continues that span's trace.

``enabled=False`` commits each write in its own transaction, in the caller's task: the
baseline the benches compare against (``ANTIFRAUD_<SERVICE>_GROUP_COMMIT=0``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from opentelemetry.trace import SpanContext
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common import context as ctx
from services.common import tracing
from services.common.db import Database
from services.common.errors import Unavailable, infrastructure_error
from services.common.logs import get_logger
from services.common.loops import cancel_and_wait

log = get_logger("group_commit")

W = TypeVar("W")
R = TypeVar("R")
T = TypeVar("T")

#: Runs one whole transaction, again when that is safe (a deadlock victim), or just once.
Again = Callable[[Callable[[], Awaitable[T]]], Awaitable[T]]
#: A write waiting: the write, its caller's answer, and the span the caller wrote it from.
_Pending = tuple[W, "asyncio.Future[R]", SpanContext | None]


@dataclass(frozen=True)
class BatchSettings:
    """How concurrent writes are grouped into transactions."""

    enabled: bool = True
    #: After the first write of an idle batcher arrives, wait this long for others.
    linger_seconds: float = 0.002
    max_items: int = 500


@dataclass
class BatchStats:
    """What the batcher did: transactions, writes, and the retries alone after a failure."""

    transactions: int = 0
    writes: int = 0
    split: int = 0


async def _once(run: Callable[[], Awaitable[T]]) -> T:
    return await run()


class GroupCommit(Generic[W, R]):
    """Collects writes of type ``W`` and applies them with ``apply(conn, writes)`` in one
    transaction per batch; each caller gets the answer ``apply`` returned for its write.
    ``apply`` must leave no state behind when its transaction fails (the writes are
    applied again, alone)."""

    def __init__(
        self,
        db: Database,
        apply: Callable[[AsyncConnection, list[W]], Awaitable[list[R]]],
        settings: BatchSettings | None = None,
        name: str = "group-commit",
        again: Again[list[R]] | None = None,
    ) -> None:
        self._db = db
        self._apply = apply
        self.settings = settings or BatchSettings()
        self._name = name
        self._again: Again[list[R]] = again or _once
        self._pending: list[_Pending[W, R]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.stats = BatchStats()

    @classmethod
    def of_writes(
        cls,
        db: Database,
        apply: Callable[[AsyncConnection, list[W]], Awaitable[None]],
        settings: BatchSettings | None = None,
        name: str = "group-commit",
    ) -> GroupCommit[W, None]:
        """A group commit of writes that answer nothing but their commit."""

        async def each(conn: AsyncConnection, writes: list[W]) -> list[None]:
            await apply(conn, writes)
            return [None] * len(writes)

        return GroupCommit(db, each, settings, name)

    async def write(self, item: W) -> R:
        """Return ``item``'s answer once it is committed; raise what its transaction raised."""
        if not self.settings.enabled:
            return (await self._commit([item], []))[0]
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(
                self._run(), name=self._name, context=ctx.for_many_callers()
            )
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, done, tracing.current_span_context()))
        self._wake.set()
        return await done

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        for _, done, _ in self._pending:
            if not done.done():
                done.set_exception(_stopped())
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
                    for _, done, _ in batch:
                        if not done.done():  # a caller cancelled meanwhile has its answer
                            done.set_exception(_stopped())
                    raise

    async def _commit_batch(self, batch: list[_Pending[W, R]]) -> None:
        try:
            answers = await self._commit(
                [item for item, _, _ in batch], [caller for _, _, caller in batch]
            )
        except Exception as exc:
            if len(batch) == 1 or infrastructure_error(exc) is not None:
                _fail(batch, exc)
                return
            # A write the database or the domain refuses: find it by trying each alone.
            self.stats.split += 1
            log.warning(
                "group commit failed; writes retried alone",
                name=self._name,
                error=type(exc).__name__,
            )
            for one in batch:
                await self._commit_batch([one])
            return
        for (_, done, _), answer in zip(batch, answers, strict=True):
            if not done.done():  # its caller was cancelled; the write stands anyway
                done.set_result(answer)

    async def _commit(self, items: list[W], callers: list[SpanContext | None]) -> list[R]:
        async def transaction() -> list[R]:
            async with self._db.engine.begin() as conn:
                answers = await self._apply(conn, items)
            return answers

        with tracing.linked(self._name, callers, writes=len(items)):
            answers = await self._again(transaction)
        self.stats.transactions += 1
        self.stats.writes += len(items)
        return answers


def _stopped() -> Unavailable:
    # Stopped with the write not committed, or committed but not yet answered: the writes
    # grouped here are idempotent, so the caller sends it again (to another replica).
    return Unavailable("the service stopped before the write was answered; retry")


def _fail(batch: list[_Pending[W, R]], error: Exception) -> None:
    for _, done, _ in batch:
        if not done.done():  # its caller was cancelled; the write failed anyway
            done.set_exception(error)
