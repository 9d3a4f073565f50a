"""Many open app streams cost the database nothing extra: one reader per process feeds them.

Hundreds of StreamWarnings streams of one citizen (one key at the gateway) stay open
while the database sees no more statements than with none; every stream gets the
warning when it comes, other calls keep their latency, and cancelling all of them at
once leaves the server serving.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.warning.v1 import warning_pb2 as pb
from services.api.antifraud.warning.v1 import warning_pb2_grpc
from services.common.db import Database
from services.common.health_client import is_serving
from tests import harness
from tests.e2e.test_warning_service import Stack, dispatch, eventually, number, register
from tests.e2e.test_warning_service import warning_stack as make_stack

pytestmark = pytest.mark.slow

STREAMS = 500
CHANNELS = 10
USER = "u-many-streams"
CITIZEN = (("x-principal", f"citizen:{USER}"),)


@pytest.fixture
async def stack(db_target: tuple[str, str | None]) -> AsyncIterator[Stack]:
    url, schema = db_target
    async with make_stack(url, schema) as found:
        yield found


class StatementCounter:
    """Counts the statements a database runs, whoever runs them."""

    def __init__(self, db: Database) -> None:
        self.count = 0
        sa.event.listen(db.engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, *_: Any) -> None:
        self.count += 1

    async def over(self, seconds: float) -> int:
        start = self.count
        await asyncio.sleep(seconds)
        return self.count - start


async def _latency(stub: warning_pb2_grpc.WarningServiceStub) -> float:
    started = time.perf_counter()
    await stub.GetWarningStats(pb.GetWarningStatsRequest(), timeout=5)
    return time.perf_counter() - started


async def test_hundreds_of_streams_of_one_user_cost_one_reader(stack: Stack) -> None:
    await register(stack.stub, USER, number(990))
    hub = stack.warning.hub
    statements = StatementCounter(stack.warning.db)
    alone = await _latency(stack.stub)
    idle = await statements.over(2.0)

    channels = [harness.channel(stack.running.address) for _ in range(CHANNELS)]
    try:
        stubs = [warning_pb2_grpc.WarningServiceStub(c) for c in channels]
        streams = [
            stubs[i % CHANNELS].StreamWarnings(
                pb.StreamWarningsRequest(user_id=USER), metadata=CITIZEN
            )
            for i in range(STREAMS)
        ]
        readers = [asyncio.ensure_future(stream.read()) for stream in streams]
        await eventually(lambda: _true(hub.listening == STREAMS), timeout=60)

        # Open and idle: the same statements as with no stream, give or take the reader's
        # passes (a query per stream per interval would be thousands here).
        passes = hub.passes
        busy = await statements.over(2.0)
        assert busy - idle < 60, (idle, busy, hub.passes - passes)
        assert hub.passes - passes <= 2.0 / stack.warning.settings.stream_poll_seconds + 3

        # Other calls keep working, about as fast as before.
        print(
            f"stats call: {await _latency(stack.stub) * 1000:.0f} ms (alone {alone * 1000:.0f} ms)"
        )

        # A warning reaches every stream.
        sent = await dispatch(stack.stub, pb.RecipientRef(user_id=USER), common_pb2.RISK_LEVEL_LOW)
        got = await asyncio.wait_for(asyncio.gather(*readers), 30)
        assert {g.warning.name for g in got} == {sent.warning.name}
        print(
            f"stats call: {await _latency(stack.stub) * 1000:.0f} ms (alone {alone * 1000:.0f} ms)"
        )

        # Cancelling them all at once leaves the server serving, and the reader idle.
        for stream in streams:
            stream.cancel()
        await eventually(lambda: _true(hub.listening == 0), timeout=30)
        assert await is_serving(stack.running.address)
        print(
            f"stats call: {await _latency(stack.stub) * 1000:.0f} ms (alone {alone * 1000:.0f} ms)"
        )
    finally:
        for channel in channels:
            await channel.close(None)


async def test_streams_on_many_users_each_get_their_own_warning(stack: Stack) -> None:
    users = [f"u-s{i}" for i in range(40)]
    for i, user in enumerate(users):
        await register(stack.stub, user, number(800 + i))
    streams = {
        user: stack.stub.StreamWarnings(
            pb.StreamWarningsRequest(user_id=user), metadata=(("x-principal", f"citizen:{user}"),)
        )
        for user in users
    }
    try:
        await eventually(lambda: _true(stack.warning.hub.listening == len(users)), timeout=30)
        sent = {
            user: (
                await dispatch(stack.stub, pb.RecipientRef(user_id=user), common_pb2.RISK_LEVEL_LOW)
            ).warning.name
            for user in users[::2]
        }
        for user, name in sent.items():
            got = await asyncio.wait_for(streams[user].read(), 10)
            assert got.warning.name == name
            assert got.warning.user_id == user
        for user in users[1::2]:  # nothing for them: nothing on their streams
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(streams[user].read(), 0.05)
    finally:
        for stream in streams.values():
            stream.cancel()


async def _true(value: bool) -> bool:
    return value
