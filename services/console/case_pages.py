"""The cases board by status, one case with its history, and the officer's reply to the
victim."""

from __future__ import annotations

import asyncio
import re

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from services.common.logs import get_logger
from services.console.board import COLUMNS, build_board, case_id
from services.console.display import masked_text
from services.console.web import backend, checked_form, current, field, redirect, render

log = get_logger("console")
CASES = 200
ORDERS = 500
#: What a victim may be sent in one reply (the report service's own limit).
MAX_REPLY = 2000
#: A case id as the report service names them: nothing that could be a personal value.
_CASE_ID = re.compile(r"[A-Za-z0-9\-]{1,64}")


async def board(request: Request) -> Response:
    session = current(request)
    people = backend(request, session)
    cases, orders = await asyncio.gather(people.cases(CASES), people.bank_orders(ORDERS))
    return render(
        request,
        "cases.html",
        session,
        board=build_board(cases, orders),
        columns=COLUMNS,
        masked=masked_text,
        case_id=case_id,
    )


def _name(request: Request) -> str:
    found = request.path_params["case"]
    if _CASE_ID.fullmatch(found) is None:
        raise HTTPException(404)
    return f"cases/{found}"


async def case_page(request: Request) -> Response:
    session = current(request)
    name = _name(request)
    people = backend(request, session)
    case, orders = await asyncio.gather(
        people.case(name), people.bank_orders(ORDERS, case_id=case_id(name))
    )
    board = build_board([case], orders)
    (found,) = [card for cards in board.values() for card in cards]
    return render(
        request,
        "case.html",
        session,
        card=found,
        masked=masked_text,
        case_id=case_id,
        replied=bool(request.query_params.get("replied")),
    )


async def reply(request: Request) -> Response:
    """Sends the victim the officer's words, with the officer's own key; shown on the case."""
    session = current(request)
    form = await checked_form(request, session)
    name = _name(request)
    text = field(form, "text", MAX_REPLY)
    if not text:
        raise HTTPException(400, "text: write the reply")
    await backend(request, session).reply(name, text)
    log.info("case replied", key=session.subject, case=name)
    return redirect(f"/{name}?replied=1")
