"""Warning everyone in contact with a number that became high risk (the 12381 model).

A fan-out is a job row. Its first step copies the number's contacts into
``fanout_targets`` with one INSERT ... SELECT; then each step warns one chunk
of targets in number order and records how far it got, in the same
transaction as the warnings. A crash loses at most an uncommitted chunk, which
the next holder of the job (this process after a restart, or another replica
once the lease ends) redoes; the once-per-window rule makes a redone chunk
harmless even if two workers ever overlapped.

On PostgreSQL two chunks are in flight: the next chunk's rows are built and written in
a transaction of their own while the one before commits, so the process's CPU and the
database's work overlap instead of taking turns. That transaction checks the lease and
the progress last (``fanouts_repo.hold_at``), once the one before has committed: it
commits only right behind it, or rolls back. Where a task cap could bind, a chunk waits
for the one before, to know what is left of the cap. SQLite takes one writer at a time:
there the chunks go one after another, but each is read, built and made into rows (values,
sealed numbers, SMS payloads: ``warnings.prepare``) while the database writes the one
before in its own thread; its transaction then checks the lease and the progress, reads the
caps, claims and writes.

While a fan-out is being queued the outbox relay gives way (``queueing``): a few of its SMS a
pass and every bank order and single warning's SMS at once (its SMS have their own topic,
``warnings_repo.SMS_BULK_TOPIC``), the rest once every contact's warning is queued.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from services.common import metrics, tracing
from services.common.db import Database, UnitOfWork
from services.common.indicators import display
from services.common.logs import get_logger
from services.warning.adapters import contacts_repo, fanouts_repo, recipients_repo, warnings_repo
from services.warning.domain.caps import TaskBudget
from services.warning.domain.model import (
    TASK_CHANNELS,
    Channel,
    Fanout,
    Person,
    Reason,
    Warning,
)
from services.warning.service_layer.push import PushHub
from services.warning.service_layer.warnings import (
    Draft,
    build,
    create_built,
    new_id,
    prepare,
)
from services.warning.settings import WarningSettings

log = get_logger("warning.fanout")

IDLE_SECONDS = 1.0


@dataclass(frozen=True)
class Chunk:
    """A chunk's targets and their warnings, built (ids chosen) but not written."""

    after: str | None  # the progress the chunk follows
    targets: list[fanouts_repo.Target]
    built: list[Warning]
    now: datetime

    def most_tasks(self) -> Counter[Channel]:
        """The tasks the chunk would create if every warning were new: a bound."""
        return Counter(
            d.channel for w in self.built for d in w.deliveries if d.channel in TASK_CHANNELS
        )


@dataclass
class FanoutWorker:
    db: Database
    settings: WarningSettings
    hub: PushHub
    on_queued: Callable[[], None]  # wakes the outbox relay
    holder: str = field(default_factory=new_id)
    #: A fan-out is being queued here now: the outbox relay gives way to it
    #: (``OutboxRelay.give_way``): an SMS costs the process several times a warning's
    #: queueing, so every contact's warning, push and task is queued first; the relay still
    #: sends a few SMS at each chunk, and a stop-payment order or a single warning's SMS
    #: at once (``bootstrap.URGENT_TOPICS``).
    queueing: bool = False

    async def step(self) -> float:
        now = datetime.now(UTC)
        async with UnitOfWork(self.db) as uow:
            fanout_id = await fanouts_repo.claim(uow.conn, self.holder, now, self.settings.lease)
            await uow.commit()
        if fanout_id is None:
            return IDLE_SECONDS
        self.queueing = True
        try:
            # The first step takes the snapshot (or writes a chunk of a fan-out taken over).
            if await self.work_chunk(fanout_id):
                trace_context = await self._trace_context(fanout_id)
                with tracing.restored(trace_context, "fanout chunks", **{"fanout.id": fanout_id}):
                    if self.db.is_sqlite:
                        await self._prepared_ahead(fanout_id, trace_context)
                    else:
                        await self._overlapped(fanout_id, trace_context)
            while await self.work_chunk(fanout_id):
                pass
        finally:
            self.queueing = False
            self.on_queued()  # the relay back at full speed at once
        return 0.0

    async def work_chunk(self, fanout_id: str) -> bool:
        """One step of a fan-out; False once it is done or no longer ours."""
        # Each step continues the trace of the change that started the fan-out: the
        # warnings it queues carry it through the outbox to the carriers.
        trace_context = await self._trace_context(fanout_id)
        with tracing.restored(trace_context, "fanout chunk", **{"fanout.id": fanout_id}):
            return await self._work_chunk(fanout_id)

    async def _trace_context(self, fanout_id: str) -> str | None:
        if not tracing.enabled():
            return None
        async with UnitOfWork(self.db) as uow:
            return await fanouts_repo.trace_context(uow.conn, fanout_id)

    async def _work_chunk(self, fanout_id: str) -> bool:
        now = datetime.now(UTC)
        created: list[Warning] = []
        async with UnitOfWork(self.db) as uow:
            progress = await fanouts_repo.hold(
                uow.conn, fanout_id, self.holder, now, self.settings.lease
            )
            if progress is None:
                return False
            fanout = progress.fanout
            if not progress.snapshot_taken:
                contacts = await contacts_repo.snapshot_contacts(
                    uow.conn,
                    fanout_id,
                    fanout.indicator.value,
                    now - self.settings.contact_retention,
                )
                await fanouts_repo.snapshot_taken(uow.conn, fanout_id, contacts, now)
                await uow.commit()
                log.info(
                    "fan-out started",
                    fanout_id=fanout_id,
                    indicator=display(fanout.indicator),
                    contacts=contacts,
                )
                return True
            chunk = await self._read(uow.conn, fanout, progress.after, now)
            targets = chunk.targets
            if not targets:
                await fanouts_repo.finish(uow.conn, fanout_id, now)
                await uow.commit()
                metrics.FANOUTS_DONE.inc()
                log.info(
                    "fan-out done",
                    fanout_id=fanout_id,
                    contacts=fanout.contact_count,
                    warned=fanout.warned_count,
                    suppressed=fanout.suppressed_count,
                )
                return False
            budget = TaskBudget.left_of(fanout)
            created = [
                w
                for w in await create_built(uow.conn, self.settings, chunk.built, now, budget)
                if w
            ]
            await fanouts_repo.record_chunk(
                uow.conn, fanout_id, _done(targets, created, budget), now
            )
            await uow.commit()
        self._queued(targets, created)
        return True

    async def _read(
        self, conn: AsyncConnection, fanout: Fanout, after: str | None, now: datetime
    ) -> Chunk:
        """The next chunk's targets after ``after``, and their warnings built."""
        targets = await fanouts_repo.targets(conn, fanout.id, after, self.settings.fanout_chunk)
        persons = await recipients_repo.persons(conn, [t.phone_number for t in targets])
        reason = Reason(fanout.indicator, None, fanout.category)
        rule = self.settings.contact_rule
        built = [
            build(
                self.settings,
                Draft(
                    person=persons.get(t.phone_number) or Person(t.phone_number),
                    level=rule.level(t.last_time, t.contact_count, now),
                    reason=reason,
                    fanout_id=fanout.id,
                    contact_count=t.contact_count,
                    last_contact_time=t.last_time,
                ),
                now,
            )
            for t in targets
        ]
        return Chunk(after, targets, built, now)

    async def _held(self, fanout_id: str) -> fanouts_repo.Progress | None:
        """Where the fan-out stands, its lease extended; None when it is not this holder's
        or its snapshot is not taken yet (``work_chunk`` goes on then)."""
        async with UnitOfWork(self.db) as uow:
            progress = await fanouts_repo.hold(
                uow.conn, fanout_id, self.holder, datetime.now(UTC), self.settings.lease
            )
            await uow.commit()
        if progress is None or not progress.snapshot_taken:
            return None
        return progress

    async def _prepared_ahead(self, fanout_id: str, trace_context: str | None) -> None:
        """SQLite (one writer): the fan-out's chunks one after another, each read, built and
        made into rows (``prepare``: values, sealed numbers, SMS payloads) while the
        database writes the one before in its own thread; returns after the last chunk
        (``work_chunk`` then finishes the fan-out) or once a chunk did not commit (the
        lease lost, or another holder went on: ``work_chunk`` finds out)."""
        progress = await self._held(fanout_id)
        if progress is None:
            return
        fanout, after = progress.fanout, progress.after
        writing: asyncio.Task[bool] | None = None
        try:
            while True:
                async with self.db.read() as conn:
                    chunk = await self._read(conn, fanout, after, datetime.now(UTC))
                prepared = prepare(self.db.engine.dialect, chunk.built, chunk.now)
                if writing is not None:
                    written = await writing
                    writing = None
                    if not written:
                        return
                if not chunk.targets:
                    return
                writing = asyncio.create_task(
                    self._write_prepared(fanout_id, chunk, prepared, trace_context)
                )
                after = chunk.targets[-1].phone_number
        finally:
            # As in ``_overlapped``: no chunk is left writing however the loop ended.
            if writing is not None:
                writing.cancel()
                await asyncio.gather(writing, return_exceptions=True)

    async def _write_prepared(
        self,
        fanout_id: str,
        chunk: Chunk,
        prepared: warnings_repo.Prepared,
        trace_context: str | None,
    ) -> bool:
        """Write a chunk read and prepared beforehand, if the fan-out is still this
        holder's and its progress is where the chunk follows; whether it committed. The
        caps are read in the chunk's own transaction, as ``work_chunk`` reads them."""
        with tracing.restored(trace_context, "fanout chunk", **{"fanout.id": fanout_id}):
            now = datetime.now(UTC)
            async with UnitOfWork(self.db) as uow:
                progress = await fanouts_repo.hold(
                    uow.conn, fanout_id, self.holder, now, self.settings.lease
                )
                if progress is None or progress.after != chunk.after:
                    return False
                budget = TaskBudget.left_of(progress.fanout)
                built = await create_built(
                    uow.conn, self.settings, chunk.built, chunk.now, budget, prepared
                )
                created = [w for w in built if w]
                await fanouts_repo.record_chunk(
                    uow.conn, fanout_id, _done(chunk.targets, created, budget), now
                )
                await uow.commit()
            self._queued(chunk.targets, created)
            return True

    async def _overlapped(self, fanout_id: str, trace_context: str | None) -> None:
        """The fan-out's chunks, each written while the one before commits; returns after
        the last chunk (``work_chunk`` then finishes the fan-out) or once a chunk did not
        commit (the lease lost: ``work_chunk`` finds out; the caps changed: ``work_chunk``
        goes on with the new ones; an error is raised)."""
        progress = await self._held(fanout_id)
        if progress is None:
            return
        fanout, after = progress.fanout, progress.after
        left = TaskBudget.left_of(fanout).remaining  # after the chunks committed so far
        previous: Chunk | None = None
        writes: list[asyncio.Task[TaskBudget | None]] = []
        try:
            while True:
                async with self.db.read() as conn:
                    chunk = await self._read(conn, fanout, after, datetime.now(UTC))
                if not chunk.targets:
                    break
                if previous is not None and not _within(left, previous, chunk):
                    # A cap could bind: what is left of it is known once the one before is in.
                    if not _spend(left, await writes.pop()):
                        return
                    previous = None
                most = Counter() if previous is None else previous.most_tasks()
                budget = TaskBudget({c: n - most[c] for c, n in left.items()})
                before = writes[-1] if writes else None
                writes.append(
                    asyncio.create_task(self._write(fanout, chunk, budget, before, trace_context))
                )
                if before is not None and not _spend(left, await writes.pop(0)):
                    return
                previous, after = chunk, chunk.targets[-1].phone_number
            while writes:
                _spend(left, await writes.pop(0))
        finally:
            # However the loop ended, no chunk is left writing (one cancelled before its
            # commit rolls back; ``work_chunk`` goes on from the progress stored). A
            # cancellation of this task itself still reaches its caller.
            for write in writes:
                write.cancel()
            await asyncio.gather(*writes, return_exceptions=True)

    async def _write(
        self,
        fanout: Fanout,
        chunk: Chunk,
        budget: TaskBudget,
        before: asyncio.Task[TaskBudget | None] | None,
        trace_context: str | None,
    ) -> TaskBudget | None:
        """Write a chunk, and commit it right behind ``before`` (the chunk it follows);
        its budget, or None if it did not commit (nor did ``before``, or the lease is lost).
        Each chunk is a span of its own in the trace of the change that started the fan-out,
        as ``work_chunk``'s are: the warnings it queues carry it to the carriers."""
        with tracing.restored(trace_context, "fanout chunk", **{"fanout.id": fanout.id}):
            return await self._write_chunk(fanout, chunk, budget, before)

    async def _write_chunk(
        self,
        fanout: Fanout,
        chunk: Chunk,
        budget: TaskBudget,
        before: asyncio.Task[TaskBudget | None] | None,
    ) -> TaskBudget | None:
        async with UnitOfWork(self.db) as uow:
            created = [
                w
                for w in await create_built(uow.conn, self.settings, chunk.built, chunk.now, budget)
                if w
            ]
            if before is not None and await before is None:
                return None
            now = datetime.now(UTC)
            held = await fanouts_repo.hold_at(
                uow.conn, fanout, self.holder, chunk.after, now, self.settings.lease
            )
            if not held:
                return None
            await fanouts_repo.record_chunk(
                uow.conn, fanout.id, _done(chunk.targets, created, budget), now
            )
            await uow.commit()
        self._queued(chunk.targets, created)
        return budget

    def _queued(self, targets: Sequence[fanouts_repo.Target], created: list[Warning]) -> None:
        metrics.FANOUT_TARGETS.labels("warned").inc(len(created))
        metrics.FANOUT_TARGETS.labels("suppressed").inc(len(targets) - len(created))
        self.hub.publish(created)
        self.on_queued()


def _done(
    targets: Sequence[fanouts_repo.Target], created: list[Warning], budget: TaskBudget
) -> fanouts_repo.ChunkDone:
    return fanouts_repo.ChunkDone(
        targets[-1].phone_number,
        len(targets),
        len(created),
        budget.created.get(Channel.CALL_TASK, 0),
        budget.created.get(Channel.HOME_VISIT_TASK, 0),
        budget.capped,
    )


def _within(left: dict[Channel, int], previous: Chunk, chunk: Chunk) -> bool:
    """Whether ``chunk`` stays within every cap even if ``previous`` creates all its tasks."""
    before, now = previous.most_tasks(), chunk.most_tasks()
    return all(n - before[c] >= now[c] for c, n in left.items())


def _spend(left: dict[Channel, int], done: TaskBudget | None) -> bool:
    """Take a committed chunk's tasks off what is left of the caps; False if it did not
    commit."""
    if done is None:
        return False
    for channel in left:
        left[channel] -= done.created.get(channel, 0)
    return True
