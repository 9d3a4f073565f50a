"""Ask many partners at once; each gets the same time budget, and a missing answer is reported."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from services.identity.domain.lookups import Answer, Partner, PartnerFailure, SourceStatus

T = TypeVar("T")


async def ask_all(
    partners: Sequence[Partner],
    call: Callable[[Partner], Awaitable[T]],
    timeout: float,
) -> list[Answer[T]]:
    """Every partner's answer in ``partners`` order; none of them can fail the whole."""

    async def one(partner: Partner) -> Answer[T]:
        try:
            value = await asyncio.wait_for(call(partner), timeout)
        except TimeoutError:
            return Answer(partner, SourceStatus.DEADLINE_EXCEEDED)
        except PartnerFailure as exc:
            return Answer(partner, exc.status)
        return Answer(partner, SourceStatus.OK, value)

    return list(await asyncio.gather(*(one(p) for p in partners)))
