"""A background loop stops when asked, even when its step swallows the cancellation."""

from __future__ import annotations

import asyncio

import pytest

from services.common.loops import BackgroundLoop


@pytest.mark.parametrize("swallow", ["returns", "raises another error"])
async def test_stop_ends_the_loop_even_if_the_step_swallows_the_cancellation(swallow: str) -> None:
    calls = 0
    waiting = asyncio.Event()

    async def step() -> float:
        nonlocal calls
        calls += 1
        waiting.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            # As a step that cleans up after a failed helper task may do: the helper's
            # error (the database went away) or a plain return takes the cancellation's place.
            if swallow == "returns":
                return 0.0
            raise ConnectionRefusedError from None
        return 0.0

    loop = BackgroundLoop("swallower", step)
    loop.start()
    await waiting.wait()
    async with asyncio.timeout(30):  # a bound on the bug (stop() waited forever), not a figure
        await loop.stop()
    assert calls == 1  # stopped there: no further step was run
