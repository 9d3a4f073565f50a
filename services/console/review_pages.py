"""The review queue by indicator, one indicator's detail, the decision and the audited reveal."""

from __future__ import annotations

import asyncio

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from services.api.antifraud.common.v1 import common_pb2 as c
from services.api.antifraud.report.v1 import report_pb2 as rp
from services.common.logs import get_logger
from services.console.display import masked_text
from services.console.queue import group_by_indicator
from services.console.sessions import Session
from services.console.web import backend, checked_form, current, field, redirect, render

log = get_logger("console")
#: Open reports read for the queue; reports and warnings read for one indicator.
QUEUE_REPORTS = 500
QUEUE_ROWS = 100
DETAIL_ITEMS = 200
DECISIONS = {"confirm": rp.REVIEW_DECISION_CONFIRM, "reject": rp.REVIEW_DECISION_REJECT}


async def queue(request: Request) -> Response:
    session = current(request)
    people = backend(request, session)
    rows = group_by_indicator(await people.open_reports(QUEUE_REPORTS))[:QUEUE_ROWS]
    verdicts = await asyncio.gather(*(people.indicator(row.indicator) for row in rows))
    items = [
        {
            "row": row,
            "ref": session.ref(row.kind, row.value),
            "verdict": found.record.verdict if found else None,
        }
        for row, found in zip(rows, verdicts, strict=True)
    ]
    return render(request, "review.html", session, items=items)


def _indicator(session: Session, request: Request) -> c.Indicator:
    found = session.lookup(request.path_params["ref"])
    if found is None:
        raise HTTPException(404)
    kind, value = found
    return c.Indicator(kind=kind, value=value)  # type: ignore[arg-type]


async def detail(
    request: Request,
    revealed: dict[str, rp.RevealOriginalTextResponse] | None = None,
    decided: int | None = None,
) -> Response:
    session = current(request)
    indicator = _indicator(session, request)
    people = backend(request, session)
    found, reports, warnings, fanouts = await asyncio.gather(
        people.indicator(indicator),
        people.reports_about(indicator, DETAIL_ITEMS),
        people.warnings_about(indicator, DETAIL_ITEMS),
        people.fanouts(indicator, DETAIL_ITEMS),
    )
    return render(
        request,
        "detail.html",
        session,
        ref=request.path_params["ref"],
        indicator=indicator,
        record=found.record if found else None,
        history=list(found.history) if found else [],
        reports=reports,
        warnings=warnings,
        fanouts=fanouts,
        masked=masked_text,
        revealed=revealed or {},
        decided=decided,
    )


async def decide(request: Request) -> Response:
    session = current(request)
    form = await checked_form(request, session)
    indicator = _indicator(session, request)
    decision = DECISIONS.get(field(form, "decision", 10))
    reason = field(form, "reason", 1000)
    if decision is None or not reason:
        raise HTTPException(400, "decision and reason are required")
    done = await backend(request, session).review_indicator(indicator, decision, reason)
    log.info("indicator reviewed", key=session.subject, decision=decision, reports=done)
    return redirect(f"/review/{request.path_params['ref']}?decided={done}")


async def detail_page(request: Request) -> Response:
    decided = request.query_params.get("decided", "")
    return await detail(request, decided=int(decided) if decided.isdigit() else None)


async def reveal(request: Request) -> Response:
    """The text of one report as typed, shown once in the answer, never stored here."""
    session = current(request)
    form = await checked_form(request, session)
    name = field(form, "report", 100)
    purpose = field(form, "purpose", 200)
    if not name.startswith("reports/") or not purpose:
        raise HTTPException(400, "a report and a purpose are required")
    text = await backend(request, session).reveal(name, purpose)
    log.info("original text revealed", key=session.subject, report=name)
    return await detail(request, revealed={name: text})
