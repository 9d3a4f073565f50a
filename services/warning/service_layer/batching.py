"""Group commit: many concurrent callers' small writes in one transaction.

The outbox relay runs dozens of SMS sends at once; each must record its outcome
before it returns (so the relay marks the event done only once the outcome is
durable). One transaction each makes the writers queue for the database's
write lock (on SQLite, with sleeps); here they hand their write to one task that
commits everything pending at once, and each caller returns when its write is
committed, or raises what the transaction raised.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.db import Database

W = TypeVar("W")

#: At most this many writes per transaction.
MAX_BATCH = 500


class GroupCommit(Generic[W]):
    """Collects writes of type ``W`` and applies them with ``apply(conn, writes)`` in one
    transaction per batch."""

    def __init__(
        self, db: Database, apply: Callable[[AsyncConnection, list[W]], Awaitable[None]]
    ) -> None:
        self._db = db
        self._apply = apply
        self._pending: list[tuple[W, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def write(self, item: W) -> None:
        """Return once ``item`` is committed."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="warning-group-commit")
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
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                try:
                    async with self._db.engine.begin() as conn:
                        await self._apply(conn, [item for item, _ in batch])
                except asyncio.CancelledError:
                    for _, done in batch:
                        if not done.done():  # a caller cancelled meanwhile has its answer
                            done.set_exception(RuntimeError("stopped before the commit"))
                    raise
                except Exception as exc:
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                else:
                    for _, done in batch:
                        if not done.done():
                            done.set_result(None)
