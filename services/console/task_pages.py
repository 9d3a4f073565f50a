"""Call and home-visit queues: claim a task, record its outcome; leases shown."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from services.api.antifraud.warning.v1 import warning_pb2 as wn
from services.common.logs import get_logger
from services.console.display import masked_phone, masked_text
from services.console.sessions import Session
from services.console.web import backend, checked_form, current, field, redirect, render

log = get_logger("console")
TASKS = 200
OUTCOMES = {
    "dissuaded": wn.TASK_OUTCOME_DISSUADED,
    "unreachable": wn.TASK_OUTCOME_UNREACHABLE,
    "already_paid": wn.TASK_OUTCOME_ALREADY_PAID,
    "false_alarm": wn.TASK_OUTCOME_FALSE_ALARM,
}


def _mine(session: Session, task: wn.Task) -> bool:
    return task.state == wn.TASK_STATE_CLAIMED and task.name in session.claimed


def phone_for(session: Session, task: wn.Task) -> str:
    """The number in clear only on a task this person holds: they are about to call it."""
    return task.phone_number if _mine(session, task) else masked_phone(task.phone_number)


async def queues(request: Request) -> Response:
    session = current(request)
    tasks = await backend(request, session).tasks(
        [wn.TASK_STATE_CLAIMED, wn.TASK_STATE_OPEN], TASKS
    )
    by_type = {
        wn.TASK_TYPE_CALL: [t for t in tasks if t.type == wn.TASK_TYPE_CALL],
        wn.TASK_TYPE_HOME_VISIT: [t for t in tasks if t.type == wn.TASK_TYPE_HOME_VISIT],
    }
    note = request.query_params.get("done", "")
    return render(
        request,
        "tasks.html",
        session,
        by_type=by_type,
        mine=lambda t: _mine(session, t),
        phone=lambda t: phone_for(session, t),
        masked=masked_text,
        outcomes=OUTCOMES,
        note=note,
    )


def _task_name(value: str) -> str:
    if not value.startswith("tasks/") or len(value) > 100:
        raise HTTPException(400, "task: expected tasks/{task}")
    return value


async def claim(request: Request) -> Response:
    session = current(request)
    form = await checked_form(request, session)
    name = _task_name(field(form, "task", 100))
    task = await backend(request, session).claim(name)
    session.claim(task.name)
    log.info("task claimed", key=session.subject, task=task.name)
    return redirect("/tasks?done=claimed")


async def complete(request: Request) -> Response:
    session = current(request)
    form = await checked_form(request, session)
    name = _task_name(field(form, "task", 100))
    outcome = OUTCOMES.get(field(form, "outcome", 20))
    if outcome is None:
        raise HTTPException(400, "outcome: choose one")
    notes = field(form, "notes", 2000)
    task = await backend(request, session).complete(name, outcome, notes)
    session.release(task.name)
    log.info("task completed", key=session.subject, task=task.name, outcome=outcome)
    return redirect("/tasks?done=completed")
