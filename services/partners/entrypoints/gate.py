"""The door every partner call passes: latency, simulated failure, idempotency, record.

Order matters: the request is validated by the servicer first, then the call waits
its latency, then it may fail UNAVAILABLE, and only then is the effect applied, the
first response remembered under its idempotency key and the call recorded. A failed
call therefore had no effect, and its retry with the same key is the first real one.
The steps after the wait run without yielding to the event loop, so two concurrent
calls with one key cannot both apply the effect.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import TypeVar, cast

from google.protobuf.message import Message

from services.common.errors import Conflict, Unavailable
from services.common.idempotency import fingerprint
from services.partners.domain.behavior import Behavior
from services.partners.domain.idempotency import IdempotencyMemo, KeyReused
from services.partners.domain.received import ReceivedLog
from services.partners.entrypoints.fields import now

R = TypeVar("R", bound=Message)
Summary = dict[str, str]


class Gate:
    def __init__(
        self, name: str, behavior: Behavior, log: ReceivedLog, rng: random.Random | None = None
    ) -> None:
        self.name = name
        self.behavior = behavior
        self.log = log
        self.rng = rng or random.Random()
        self._memo: IdempotencyMemo[Message] = IdempotencyMemo()

    def reset(self, behavior: Behavior) -> None:
        self.behavior = behavior
        self._memo.clear()
        self.log.clear()

    def draw_delivery(self) -> tuple[float, bool]:
        """(seconds until an SMS accepted now is delivered, whether its delivery fails)."""
        return (
            self.behavior.draw_delivery_delay(self.rng),
            self.behavior.draw_delivery_failure(self.rng),
        )

    async def _admit(self) -> None:
        delay = self.behavior.draw_latency(self.rng)
        if delay > 0:
            await asyncio.sleep(delay)
        if self.behavior.draw_failure(self.rng):
            raise Unavailable(f"{self.name} is unavailable (simulated); retry with the same key")

    async def read(self, method: str, answer: Callable[[], tuple[R, Summary]]) -> R:
        """A call without effect: wait, maybe fail, answer, record."""
        await self._admit()
        response, summary = answer()
        self.log.record(method, "", replayed=False, summary=summary, now=now())
        return response

    async def effect(
        self, method: str, key: str, request: Message, answer: Callable[[], tuple[R, Summary]]
    ) -> R:
        """A call with effect: wait, maybe fail, then the first response for its key."""
        await self._admit()
        print_ = fingerprint(request)
        try:
            first = self._memo.recall(method, key, print_)
        except KeyReused:
            raise Conflict(
                f"idempotency_key was already used with a different {method} request"
            ) from None
        if first is not None:
            self.log.record(method, key, replayed=True, summary=first.summary, now=now())
            return cast(R, first.response)
        response, summary = answer()
        self._memo.remember(method, key, print_, response, summary)
        self.log.record(method, key, replayed=False, summary=summary, now=now())
        return response
