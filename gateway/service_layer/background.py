"""Work the gateway starts for a caller without making the caller wait (recording
contacts, warning a callee), retried with backoff while a service is unavailable.

Both kinds of work carry their own idempotency (a request id, a contact's identity),
so a retry after an ambiguous failure does no harm.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Awaitable, Callable

import grpc

from services.common.context import deadline_var
from services.common.logs import get_logger

log = get_logger("gateway.background")
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


class Background:
    def __init__(self, *, limit: int = 10_000, attempts: int = 5) -> None:
        self.limit = limit
        self.attempts = attempts
        self._tasks: set[asyncio.Task[None]] = set()

    def run(self, what: str, work: Callable[[], Awaitable[object]]) -> None:
        if len(self._tasks) >= self.limit:
            log.warning("background work dropped: too much pending", what=what)
            return
        # The work outlives the request: it keeps its request id and principal, not its deadline.
        context = contextvars.copy_context()
        context.run(deadline_var.set, None)
        task = asyncio.create_task(self._retry(what, work), context=context)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _retry(self, what: str, work: Callable[[], Awaitable[object]]) -> None:
        for attempt in range(self.attempts):
            try:
                await work()
                return
            except grpc.aio.AioRpcError as err:
                if err.code() not in RETRYABLE or attempt == self.attempts - 1:
                    log.warning("background work failed", what=what, code=err.code().name)
                    return
            await asyncio.sleep(0.2 * 2**attempt)

    async def drain(self, timeout: float = 5.0) -> None:
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*self._tasks, return_exceptions=True), timeout
                )
