"""The cases board: cases by where their stop-payment orders stand, with the held amounts."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from services.console.board import COLUMNS, build_board
from services.console.display import masked_text
from services.console.web import backend, current, render

CASES = 200
ORDERS = 500


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
    )
