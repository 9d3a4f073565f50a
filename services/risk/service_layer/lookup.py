"""Look-ups from memory, kept current from the database's change feed.

At start the index is loaded from the indicator snapshots; afterwards a
refresher applies every change recorded after its cursor, whichever process
wrote it, so a change anywhere is visible here within ``poll_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from services.common import metrics
from services.common.db import Database
from services.common.indicators import Indicator
from services.common.logs import get_logger
from services.risk.adapters.repository import RiskRepository, stream_listed_rows
from services.risk.domain.index import Hit, Lookalike, RiskIndex

log = get_logger("risk.lookup")


class Lookup:
    def __init__(self, db: Database, *, poll_seconds: float = 0.2) -> None:
        self.db = db
        self.index = RiskIndex()
        self.cursor = 0
        self.feed_id = ""  # the feed's identity, carried in every cursor
        self.poll_seconds = poll_seconds
        self._poke = asyncio.Event()
        self._advanced = asyncio.Condition()
        self._refreshing = asyncio.Lock()  # changes must be applied in feed order
        self._task: asyncio.Task[None] | None = None

    def check(self, indicator: Indicator) -> Hit | None:
        return self.index.lookup(indicator, int(time.time()))

    def lookalike(self, indicator: Indicator) -> Lookalike | None:
        return self.index.lookalike(indicator)

    async def load(self) -> None:
        started = time.perf_counter()
        async with self.db.read() as conn:
            # The cursor is read first: changes made while loading are replayed after.
            self.feed_id = await RiskRepository(conn).feed_id()
            self.cursor = await RiskRepository(conn).last_change_id()
            async for rows in stream_listed_rows(conn):
                self.index.load(rows)
        await self.refresh_once()
        seconds = time.perf_counter() - started
        metrics.RISK_INDEX_LOAD_SECONDS.set(seconds)
        log.info(
            "risk index loaded",
            indicators=len(self.index),
            seconds=round(seconds, 3),
            cursor=self.cursor,
        )

    async def refresh_metrics(self) -> None:
        """Index size, the change applied, and how far the feed is ahead of it."""
        async with self.db.read() as conn:
            newest = await RiskRepository(conn).last_change_id()
        metrics.RISK_INDEX_INDICATORS.set(len(self.index))
        metrics.RISK_INDEX_CURSOR.set(self.cursor)
        metrics.RISK_FEED_LAG.set(max(0, newest - self.cursor))

    async def refresh_once(self) -> int:
        async with self._refreshing:
            applied = await self._apply_new()
        if applied:
            async with self._advanced:
                self._advanced.notify_all()
        return applied

    async def _apply_new(self) -> int:
        applied = 0
        while True:
            async with self.db.read() as conn:
                batch = await RiskRepository(conn).changes_after(self.cursor, 5000)
            for change in batch:
                self.index.put(change.kind, change.value, change.snapshot)
                self.cursor = change.id
            applied += len(batch)
            if len(batch) < 5000:
                return applied

    def poke(self) -> None:
        """Something was committed elsewhere: refresh now rather than at the next poll."""
        self._poke.set()

    async def caught_up(self) -> None:
        """Something was committed here: apply it before answering, so a caller reads its write."""
        await self.refresh_once()

    async def wait_beyond(self, cursor: int, timeout: float) -> None:
        """Wait until the index has moved past ``cursor``, or ``timeout`` passes."""
        async with self._advanced:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._advanced.wait_for(lambda: self.cursor > cursor), timeout
                )

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="risk-refresher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poke.wait(), self.poll_seconds)
            self._poke.clear()
            try:
                await self.refresh_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("risk index refresh failed")
                await asyncio.sleep(1)
