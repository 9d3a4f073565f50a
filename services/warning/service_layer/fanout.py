"""Warning everyone in contact with a number that became high risk (the 12381 model).

A fan-out is a job row. Its first step copies the number's contacts into
``fanout_targets`` with one INSERT ... SELECT; then each step warns one chunk
of targets in number order and records how far it got, in the same
transaction as the warnings. A crash loses at most an uncommitted chunk, which
the next holder of the job (this process after a restart, or another replica
once the lease ends) redoes; the once-per-window rule makes a redone chunk
harmless even if two workers ever overlapped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.common import metrics, tracing
from services.common.db import Database, UnitOfWork
from services.common.indicators import display
from services.common.logs import get_logger
from services.warning.adapters import contacts_repo, fanouts_repo, recipients_repo
from services.warning.domain.caps import TaskBudget
from services.warning.domain.model import Channel, Person, Reason, Warning
from services.warning.service_layer.push import PushHub
from services.warning.service_layer.warnings import Draft, create_warnings, new_id
from services.warning.settings import WarningSettings

log = get_logger("warning.fanout")

IDLE_SECONDS = 1.0


@dataclass
class FanoutWorker:
    db: Database
    settings: WarningSettings
    hub: PushHub
    on_queued: Callable[[], None]  # wakes the outbox relay
    holder: str = field(default_factory=new_id)

    async def step(self) -> float:
        now = datetime.now(UTC)
        async with UnitOfWork(self.db) as uow:
            fanout_id = await fanouts_repo.claim(uow.conn, self.holder, now, self.settings.lease)
            await uow.commit()
        if fanout_id is None:
            return IDLE_SECONDS
        while await self.work_chunk(fanout_id):
            pass
        return 0.0

    async def work_chunk(self, fanout_id: str) -> bool:
        """One step of a fan-out; False once it is done or no longer ours."""
        trace_context = None
        if tracing.enabled():
            async with UnitOfWork(self.db) as uow:
                trace_context = await fanouts_repo.trace_context(uow.conn, fanout_id)
        # Each step continues the trace of the change that started the fan-out: the
        # warnings it queues carry it through the outbox to the carriers.
        with tracing.restored(trace_context, "fanout chunk", **{"fanout.id": fanout_id}):
            return await self._work_chunk(fanout_id)

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
            targets = await fanouts_repo.targets(
                uow.conn, fanout_id, progress.after, self.settings.fanout_chunk
            )
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
            persons = await recipients_repo.persons(uow.conn, [t.phone_number for t in targets])
            reason = Reason(fanout.indicator, None, fanout.category)
            rule = self.settings.contact_rule
            drafts = [
                Draft(
                    person=persons.get(t.phone_number) or Person(t.phone_number),
                    level=rule.level(t.last_time, t.contact_count, now),
                    reason=reason,
                    fanout_id=fanout_id,
                    contact_count=t.contact_count,
                    last_contact_time=t.last_time,
                )
                for t in targets
            ]
            budget = TaskBudget.left_of(fanout)
            created = [
                w for w in await create_warnings(uow.conn, self.settings, drafts, now, budget) if w
            ]
            await fanouts_repo.record_chunk(
                uow.conn,
                fanout_id,
                fanouts_repo.ChunkDone(
                    targets[-1].phone_number,
                    len(targets),
                    len(created),
                    budget.created.get(Channel.CALL_TASK, 0),
                    budget.created.get(Channel.HOME_VISIT_TASK, 0),
                    budget.capped,
                ),
                now,
            )
            await uow.commit()
        metrics.FANOUT_TARGETS.labels("warned").inc(len(created))
        metrics.FANOUT_TARGETS.labels("suppressed").inc(len(targets) - len(created))
        self.hub.publish(created)
        self.on_queued()
        return True
