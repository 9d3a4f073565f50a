"""The risk change feed's writer lock on PostgreSQL is one per schema: two risk
deployments on one server (each in its own schema) never wait for each other's writers,
while two writers in one schema still take turns."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from services.risk.adapters.repository import RiskRepository
from tests import harness

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not harness.postgres_reachable(), reason="PostgreSQL not reachable"),
]


async def test_the_feed_lock_is_per_schema() -> None:
    one, other = harness.new_schema("feedlock"), harness.new_schema("feedlock")
    engines = {
        schema: create_async_engine(
            harness.PG_URL, connect_args={"server_settings": {"search_path": schema}}
        )
        for schema in (one, other)
    }
    try:
        for schema, engine in engines.items():
            async with engine.begin() as conn:
                await conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        async with engines[one].connect() as holder:
            await holder.begin()
            await RiskRepository(holder).lock_feed()
            # Another schema's writer gets its lock at once.
            async with engines[other].connect() as elsewhere:
                await elsewhere.begin()
                await elsewhere.execute(sa.text("SET LOCAL lock_timeout = '2s'"))
                await RiskRepository(elsewhere).lock_feed()
                await elsewhere.rollback()
            # A second writer in the same schema waits for the first.
            async with engines[one].connect() as same:
                await same.begin()
                waiting = asyncio.create_task(RiskRepository(same).lock_feed())
                await asyncio.sleep(0.3)
                assert not waiting.done()
                await holder.rollback()
                await asyncio.wait_for(waiting, timeout=10)
                await same.rollback()
    finally:
        for schema, engine in engines.items():
            await engine.dispose()
            await harness.drop_schema(schema)
