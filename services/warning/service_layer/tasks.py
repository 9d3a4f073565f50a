"""Operators' work on call and home-visit tasks: claim with a lease, complete with an outcome."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from services.common import regions
from services.common.db import UnitOfWork
from services.common.errors import FailedPrecondition, NotFound, PermissionDenied
from services.warning.adapters import deliveries_repo, tasks_repo, warnings_repo
from services.warning.domain.model import DeliveryState, Task, TaskOutcome, TaskState, TaskType
from services.warning.domain.rules import delivery_state_of_outcome

#: Candidates looked at per "claim the next task"; more than one in case another
#: operator takes the first at the same moment.
CANDIDATES = 10


async def get(
    conn: AsyncConnection, task_id: str, now: datetime, region: str | None = None
) -> Task:
    """The task; PERMISSION_DENIED when it is not of ``region`` (the officer's, when given)."""
    found = await tasks_repo.get(conn, task_id, now)
    if found is None:
        raise NotFound(f"tasks/{task_id} not found")
    if region is not None and not regions.within(found.region, region):
        raise PermissionDenied(f"tasks/{task_id} is not a task of region {region}")
    return found


async def claim(
    uow: UnitOfWork,
    operator_id: str,
    task_id: str | None,
    type_: TaskType | None,
    now: datetime,
    lease: timedelta,
    region: str | None = None,
) -> Task:
    """Claim the named task, or the most urgent open one of ``type_``; of ``region`` only,
    when given."""
    if task_id is not None:
        if region is not None:
            await get(uow.conn, task_id, now, region)
        if not await tasks_repo.claim(uow.conn, task_id, operator_id, now, lease):
            current = await get(uow.conn, task_id, now)
            if current.state == TaskState.COMPLETED:
                raise FailedPrecondition(f"tasks/{task_id} is already completed")
            raise FailedPrecondition(f"tasks/{task_id} is claimed by another operator")
        claimed = task_id
    else:
        assert type_ is not None
        claimed = ""
        for candidate in await tasks_repo.next_open(uow.conn, type_, now, CANDIDATES, region):
            if await tasks_repo.claim(uow.conn, candidate, operator_id, now, lease):
                claimed = candidate
                break
        if not claimed:
            raise NotFound(f"no open {type_.name} task")
    await _move_delivery(uow, claimed, DeliveryState.SENT, None, now)
    return await get(uow.conn, claimed, now)


async def complete(
    uow: UnitOfWork,
    task_id: str,
    operator_id: str,
    outcome: TaskOutcome,
    notes: str | None,
    now: datetime,
    region: str | None = None,
) -> Task:
    if region is not None:
        await get(uow.conn, task_id, now, region)
    if not await tasks_repo.complete(uow.conn, task_id, operator_id, outcome, notes, now):
        current = await get(uow.conn, task_id, now)
        if (
            current.state == TaskState.COMPLETED
            and current.operator_id == operator_id
            and current.outcome == outcome
        ):
            return current  # a repeat of the same completion
        if current.state == TaskState.COMPLETED:
            raise FailedPrecondition(f"tasks/{task_id} is already completed")
        if current.state == TaskState.OPEN:
            raise FailedPrecondition(
                f"tasks/{task_id} is not claimed by {operator_id} (or the claim ended): claim it"
            )
        raise FailedPrecondition(f"tasks/{task_id} is claimed by another operator")
    error = "the person could not be reached" if outcome == TaskOutcome.UNREACHABLE else None
    await _move_delivery(uow, task_id, delivery_state_of_outcome(outcome), error, now)
    return await get(uow.conn, task_id, now)


async def _move_delivery(
    uow: UnitOfWork, task_id: str, state: DeliveryState, error: str | None, now: datetime
) -> None:
    touched = await deliveries_repo.advance(uow.conn, {task_id: (state, error)}, now)
    await warnings_repo.refresh_states(uow.conn, touched, now)
