"""The one shape of a service's background work: repeat a step, sleep, survive errors."""

from __future__ import annotations

import asyncio
import contextlib
import traceback
from collections.abc import Awaitable, Callable

from services.common.logs import get_logger

log = get_logger("loops")

#: After an unexpected error, wait this long before trying again.
ERROR_PAUSE_SECONDS = 1.0


async def cancel_and_wait(task: asyncio.Task[None] | None) -> None:
    """Cancel a background task (if any) and wait until it has ended."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class BackgroundLoop:
    """Runs ``step`` until stopped. ``step`` returns how long to sleep before the next run;
    ``wake()`` cuts the sleep short. An exception is logged and the loop goes on."""

    def __init__(self, name: str, step: Callable[[], Awaitable[float]]) -> None:
        self.name = name
        self._step = step
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"loop-{self.name}")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            try:
                pause = await self._step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Type and place only: a traceback's locals and a database error's parameters
                # can hold phone numbers, which must never reach a log line.
                frame = traceback.extract_tb(exc.__traceback__)[-1]
                log.error(
                    "background step failed",
                    loop=self.name,
                    error=type(exc).__name__,
                    where=f"{frame.filename}:{frame.lineno}",
                )
                pause = ERROR_PAUSE_SECONDS
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # stop() cancelled us, but the step swallowed the cancellation (or another
                # exception took its place): stop anyway, or stop() would wait forever.
                raise asyncio.CancelledError
            if pause > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), pause)
            self._wake.clear()
