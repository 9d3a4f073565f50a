"""Following the risk service's change feed: a number rising to HIGH starts a fan-out.

One follower at a time across replicas, by a lease row that also holds the
cursor. Each batch of changes is applied in one transaction that first checks
the lease and stores the batch's last cursor, so after a crash or a change of
holder the feed resumes exactly after the last batch applied: nothing missed,
nothing applied twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.common import metrics, tracing
from services.common.db import Database, UnitOfWork
from services.common.indicators import display
from services.common.logs import get_logger
from services.warning.adapters import fanouts_repo, feed_repo
from services.warning.adapters.risk_feed import Change, FeedReset, FeedUnavailable, RiskFeed
from services.warning.domain.model import Fanout, FanoutState, RiskLevel
from services.warning.service_layer.warnings import new_id
from services.warning.settings import WarningSettings

log = get_logger("warning.follower")

LEASE_NAME = "risk-feed"
RETRY_SECONDS = 1.0


class LeaseLost(Exception):
    """Another replica follows the feed now."""


@dataclass
class RiskFollower:
    db: Database
    feed: RiskFeed
    settings: WarningSettings
    on_fanout: Callable[[], None]  # wakes the fan-out worker
    holder: str = field(default_factory=new_id)

    async def step(self) -> float:
        lease = self.settings.lease
        async with UnitOfWork(self.db) as uow:
            held = await feed_repo.acquire(uow.conn, LEASE_NAME, self.holder, _now(), lease)
            cursor = await feed_repo.cursor(uow.conn, LEASE_NAME)
            await uow.commit()
        if not held:
            return lease.total_seconds() / 3
        consume = asyncio.create_task(self._consume(cursor))
        renew = asyncio.create_task(self._renew(consume))
        try:
            await consume
        except LeaseLost:
            log.info("risk feed lease lost", holder=self.holder)
            return RETRY_SECONDS
        except FeedUnavailable as exc:
            log.warning("risk feed unavailable", error=str(exc))
            return RETRY_SECONDS
        except FeedReset as exc:
            # Down for longer than the feed is kept: what changed meanwhile is gone from the
            # feed. Go on from the oldest change kept (numbers that rose to HIGH within the
            # window still start their fan-outs); say so, loudly.
            log.error(
                "risk feed cursor expired; resuming from the oldest change kept",
                cursor=cursor,
                resume_cursor=exc.oldest_cursor,
            )
            async with UnitOfWork(self.db) as uow:
                await feed_repo.advance(
                    uow.conn, LEASE_NAME, self.holder, exc.oldest_cursor, _now(), lease
                )
                await uow.commit()
            return 0.0
        except asyncio.CancelledError:
            if renew.done() and not renew.cancelled() and renew.result():
                log.info("risk feed lease lost", holder=self.holder)
                return RETRY_SECONDS  # the renewer stopped us, not our owner
            raise
        finally:
            renew.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renew
        return 0.0

    async def release(self) -> None:
        """Let another replica follow at once (on a clean stop)."""
        async with UnitOfWork(self.db) as uow:
            await feed_repo.release(uow.conn, LEASE_NAME, self.holder)
            await uow.commit()

    async def _renew(self, consume: asyncio.Task[None]) -> bool:
        """Keep the lease while the feed is quiet; once it is lost, stop following (True).

        A renewal the database refuses (it is away, or busy) is tried again at the next
        turn; when none has gone through for a whole lease, another replica may hold it
        now, so this one stops following too and the step starts over."""
        lease = self.settings.lease.total_seconds()
        clock = asyncio.get_running_loop().time
        renewed = clock()
        while True:
            await asyncio.sleep(lease / 3)
            try:
                async with UnitOfWork(self.db) as uow:
                    held = await feed_repo.advance(
                        uow.conn, LEASE_NAME, self.holder, None, _now(), self.settings.lease
                    )
                    await uow.commit()
            except Exception as exc:  # the database's own error: its text may hold values
                log.warning("risk feed lease not renewed", error=type(exc).__name__)
                held = clock() - renewed < lease
            else:
                renewed = clock()
            if not held:
                consume.cancel()
                return True

    async def _consume(self, cursor: str | None) -> None:
        async for batch in self.feed.watch(cursor):
            if await self.apply(batch):
                self.on_fanout()

    async def apply(self, changes: Sequence[Change]) -> int:
        """Apply one batch; returns how many fan-outs it started."""
        now = _now()
        started: list[Fanout] = []
        async with UnitOfWork(self.db) as uow:
            if not await feed_repo.advance(
                uow.conn, LEASE_NAME, self.holder, changes[-1].cursor, now, self.settings.lease
            ):
                raise LeaseLost
            seen = await feed_repo.levels(uow.conn, (c.indicator.value for c in changes))
            new: dict[str, RiskLevel] = {}
            for change in changes:
                number = change.indicator.value
                level = RiskLevel.NONE if change.verified else change.level
                before = new.get(number, seen.get(number, RiskLevel.NONE))
                if level == RiskLevel.HIGH and before != RiskLevel.HIGH:
                    # The fan-out continues the trace the change was made in (the report
                    # or the analyst's decision that made the number high risk).
                    with tracing.restored(change.trace_parent, "fanout start"):
                        trace_context = tracing.current_traceparent()
                    fanout = Fanout(
                        id=new_id(),
                        indicator=change.indicator,
                        category=change.category,
                        state=FanoutState.RUNNING,
                        contact_count=0,
                        processed_count=0,
                        warned_count=0,
                        suppressed_count=0,
                        change_cursor=change.cursor,
                        create_time=now,
                        done_time=None,
                        high_time=change.time or now,
                        trace_context=trace_context,
                        call_task_cap=self.settings.fanout_call_task_cap,
                        home_visit_task_cap=self.settings.fanout_home_visit_task_cap,
                    )
                    await fanouts_repo.create(uow.conn, fanout, now)
                    started.append(fanout)
                new[number] = level
            await feed_repo.set_levels(uow.conn, new, now)
            await uow.commit()
        metrics.FANOUTS_STARTED.inc(len(started))
        for fanout in started:
            log.info(
                "number became high risk", fanout_id=fanout.id, indicator=display(fanout.indicator)
            )
        return len(started)


def _now() -> datetime:
    return datetime.now(UTC)
