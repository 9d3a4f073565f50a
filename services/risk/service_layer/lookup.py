"""Look-ups from memory, kept current from the database's change feed.

At start the index is loaded from the indicator snapshots; afterwards a
refresher applies every change recorded after its cursor, whichever process
wrote it, so a change anywhere is visible here within ``poll_seconds``.

The refresher is also the one reader of the feed for every watcher in this
process: it keeps the latest changes in memory (``recent_after``), so a thousand
open WatchIndicatorChanges streams that are caught up cost the database nothing;
only a watcher further behind than that memory reads the database.

A stored row the index cannot hold is logged, counted in ``unloadable`` and left
out: one bad row never keeps a server from starting or the feed from moving.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from collections.abc import Collection
from datetime import UTC, datetime

from services.common import context, metrics
from services.common.db import Database
from services.common.indicators import Indicator, IndicatorKind
from services.common.logs import get_logger
from services.risk.adapters.repository import RiskRepository, stream_listed_rows
from services.risk.domain.copies import ListDigest, columns_of, entry_in
from services.risk.domain.index import Hit, Lookalike, RiskIndex
from services.risk.domain.model import Change
from services.risk.domain.private import Buckets

log = get_logger("risk.lookup")

#: Changes read per query by the refresher.
FEED_BATCH = 5000
#: Changes kept in memory for watchers (about 1 KB each).
RECENT_CHANGES = 20_000
#: Entries hashed between two yields to the event loop while checksums or buckets are built.
_BUILD_STEP = 50_000


#: How long a write's answer waits for other writers' changes committed before its own.
CAUGHT_UP_SECONDS = 1.0


class Lookup:
    def __init__(
        self, db: Database, *, poll_seconds: float = 0.2, recent: int = RECENT_CHANGES
    ) -> None:
        self.db = db
        self.index = RiskIndex()
        self.cursor = 0
        self.feed_id = ""  # the feed's identity, carried in every cursor
        self.poll_seconds = poll_seconds
        #: Stored rows (indicators or changes) that could not be loaded; each was logged.
        self.unloadable = 0
        self._recent: list[Change] = []
        self._recent_ids: list[int] = []
        #: Every readable change after this id, up to ``cursor``, is in ``_recent``.
        self._recent_floor = 0
        self._recent_max = max(recent, 1)
        self._poke = asyncio.Event()
        self._advanced = asyncio.Condition()
        self._refreshing = asyncio.Lock()  # changes must be applied in feed order
        self._task: asyncio.Task[None] | None = None
        self._build_task: asyncio.Task[None] | None = None
        #: The list's checksums (partners' copies): built once, from when the refresher
        #: starts or on first use, then kept current by every change applied.
        self._digest: ListDigest | None = None
        self._digest_task: asyncio.Task[ListDigest] | None = None
        #: Private look-up buckets: built when first asked for, then kept current.
        self._buckets: Buckets | None = None

    async def digest(self) -> ListDigest:
        """The checksums of the list at ``cursor``, per kind."""
        if self._digest_task is None:
            # Built once for every caller: none of the first caller's request, trace or log
            # fields.
            self._digest_task = asyncio.create_task(
                self._build_digest(), name="risk-digest", context=context.for_many_callers()
            )
        # Shielded: a caller that goes away does not stop the build the next one needs.
        return await asyncio.shield(self._digest_task)

    async def _build_digest(self) -> ListDigest:
        digest = ListDigest()
        # The list as it is now (no await in this step, a few C loops per kind). Changes
        # applied from here on are tracked into the digest as they come: a sum does not mind
        # the order of its terms, so the refresher need not wait for the hashing below.
        taken = [columns_of(kind, *self.index.columns(kind), self.index) for kind in IndicatorKind]
        self._digest = digest
        for columns, allowed in taken:
            for entry in allowed:
                digest.add(entry)
            for start in range(0, len(columns), _BUILD_STEP):
                digest.add_columns(columns.part(start, start + _BUILD_STEP))
                await asyncio.sleep(0)  # look-ups go on while a million entries are hashed
        return digest

    async def buckets(self) -> Buckets:
        """The private look-up buckets of the list at ``cursor``, built on first use (yielding
        to look-ups as it goes), kept current after."""
        if self._buckets is None:
            async with self._refreshing:  # no change is applied while they are built
                if self._buckets is None:
                    buckets = Buckets()
                    for kind in IndicatorKind:
                        values = self.index.columns(kind)[0]
                        for start in range(0, len(values), _BUILD_STEP):
                            buckets.add_many(kind, values[start : start + _BUILD_STEP])
                            await asyncio.sleep(0)
                    self._buckets = buckets
        return self._buckets

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
                for row_id, why in self.index.load(rows):
                    self.unloadable += 1
                    log.error("indicator row not loaded", row_id=row_id, error=why)
        self._recent_floor = self.cursor
        await self.refresh_once()
        seconds = time.perf_counter() - started
        metrics.RISK_INDEX_LOAD_SECONDS.set(seconds)
        log.info(
            "risk index loaded",
            indicators=len(self.index),
            unloadable=self.unloadable,
            seconds=round(seconds, 3),
            cursor=self.cursor,
        )

    async def refresh_metrics(self) -> None:
        """Index size, the change applied, and how far the feed is ahead of it."""
        cursor = self.cursor
        async with self.db.read() as conn:
            repo = RiskRepository(conn)
            newest = await repo.last_change_id()
            waiting_since = await repo.change_time_after(cursor) if newest > cursor else None
        metrics.RISK_INDEX_INDICATORS.set(len(self.index))
        metrics.RISK_INDEX_CURSOR.set(cursor)
        metrics.RISK_FEED_LAG.set(max(0, newest - cursor))
        lag = (datetime.now(UTC) - waiting_since).total_seconds() if waiting_since else 0.0
        metrics.RISK_FEED_LAG_SECONDS.set(max(0.0, lag))

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
                read = await RiskRepository(conn).changes_after(self.cursor, FEED_BATCH)
            index, digest, buckets = self.index, self._digest, self._buckets
            for change in read.changes:
                if digest is None and buckets is None:
                    index.put(change.kind, change.value, change.snapshot)
                    continue
                old = entry_in(index, change.kind, change.value)
                index.put(change.kind, change.value, change.snapshot)
                new = entry_in(index, change.kind, change.value)
                if digest is not None:
                    digest.replace(old, new)
                if buckets is not None and (old is None) != (new is None):
                    buckets.track(change.kind, change.value, listed=new is not None)
            self.unloadable += len(read.skipped)
            self._remember(read.changes)
            self.cursor = read.last_id
            applied += len(read.changes) + len(read.skipped)
            if len(read.changes) + len(read.skipped) < FEED_BATCH:
                return applied

    def _remember(self, changes: list[Change]) -> None:
        self._recent.extend(changes)
        self._recent_ids.extend(c.id for c in changes)
        excess = len(self._recent) - self._recent_max
        if excess > self._recent_max // 4:  # trim in steps, not on every change
            self._recent_floor = self._recent_ids[excess - 1]
            del self._recent[:excess]
            del self._recent_ids[:excess]

    def recent_after(
        self, cursor: int, kinds: Collection[IndicatorKind], limit: int
    ) -> list[Change] | None:
        """Changes after ``cursor`` that this process has applied, from memory (at most
        ``limit``, of ``kinds`` when given); None when ``cursor`` is older than the memory."""
        if cursor < self._recent_floor:
            return None
        start = bisect.bisect_right(self._recent_ids, cursor)
        if not kinds:
            return self._recent[start : start + limit]
        found: list[Change] = []
        for change in self._recent[start:]:
            if change.kind in kinds:
                found.append(change)
                if len(found) >= limit:
                    break
        return found

    def poke(self) -> None:
        """Something was committed elsewhere: refresh now rather than at the next poll."""
        self._poke.set()

    async def caught_up(self) -> None:
        """Something was committed here: apply it before answering, so a caller reads its write.
        Another writer's change still being committed below it holds the feed back for a
        moment (``RiskRepository.feed_horizon``): waited for, up to ``CAUGHT_UP_SECONDS``."""
        async with self.db.read() as conn:
            newest = await RiskRepository(conn).newest_change_id()
        deadline = time.monotonic() + CAUGHT_UP_SECONDS
        while True:
            await self.refresh_once()
            if self.cursor >= newest or time.monotonic() >= deadline:
                return
            await asyncio.sleep(0.005)

    async def wait_beyond(self, cursor: int, timeout: float) -> None:
        """Wait until the index has moved past ``cursor``, or ``timeout`` passes."""
        async with self._advanced:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._advanced.wait_for(lambda: self.cursor > cursor), timeout
                )

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="risk-refresher")
        # The checksums, then the private look-up buckets, are built now, beside look-ups,
        # rather than on a partner's first download or a citizen's first private look-up
        # (past its deadline at a million entries): each takes a few seconds there.
        self._build_task = asyncio.create_task(self._build_shared(), name="risk-shared")

    async def _build_shared(self) -> None:
        try:
            await self.digest()
            await self.buckets()
        except Exception:  # the callers of digest() see it; buckets are built again when asked
            log.exception("building the list's checksums or private buckets failed")

    async def stop(self) -> None:
        for task in (self._task, self._build_task, self._digest_task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
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
