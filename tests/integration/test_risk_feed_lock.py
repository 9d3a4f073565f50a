"""The risk change feed on PostgreSQL with writers committing in parallel: a follower never
reads past a change that is still being committed (so it can never miss an id below its
cursor), writers never wait for each other's feed markers, and markers are per schema (two
risk deployments on one server, each in its own schema, do not hold each other back)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.db import Database
from services.common.indicators import IndicatorKind
from services.risk.adapters.repository import RiskRepository
from services.risk.bootstrap import VERSIONS
from services.risk.domain.model import NOTHING, ChangeType, SourceType
from tests import harness

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not harness.postgres_reachable(), reason="PostgreSQL not reachable"),
]


async def _append(conn: AsyncConnection, value: str) -> int:
    repo = RiskRepository(conn)
    await repo.lock_feed()
    return await repo.append_change(
        IndicatorKind.QQ_NUMBER, value, ChangeType.UPSERTED, SourceType.CARRIER, "feed",
        "test", "test", NOTHING, datetime.now(UTC),
    )  # fmt: skip


async def _read(db: Database) -> tuple[list[int], int]:
    async with db.read() as conn:
        repo = RiskRepository(conn)
        read = await repo.changes_after(0, 100)
        return [c.id for c in read.changes], await repo.last_change_id()


@pytest.fixture
async def two_schemas() -> AsyncIterator[tuple[Database, Database]]:
    one, other = harness.new_schema("feedlock"), harness.new_schema("feedlock")
    dbs = (Database("risk", url=harness.PG_URL, schema=one),
           Database("risk", url=harness.PG_URL, schema=other))  # fmt: skip
    try:
        for db in dbs:
            await db.migrate(VERSIONS)
        yield dbs
    finally:
        for db in dbs:
            await db.dispose()
        await harness.drop_schema(one)
        await harness.drop_schema(other)


async def test_a_follower_never_reads_past_a_change_still_being_committed(
    two_schemas: tuple[Database, Database],
) -> None:
    db, elsewhere = two_schemas
    async with db.engine.connect() as slow, db.engine.connect() as fast:
        await slow.begin()
        first = await _append(slow, "10001")
        await fast.begin()
        second = await _append(fast, "10002")  # no wait for the slow writer's marker
        await fast.commit()
        assert second > first
        # The later id is committed, the earlier not yet: a follower reading now must not
        # move past the earlier, or it would never see it.
        assert await _read(db) == ([], 0)
        # Another schema's follower is not held back by this schema's writer.
        async with elsewhere.engine.connect() as other:
            await other.begin()
            theirs = await _append(other, "20001")
            await other.commit()
        assert await _read(elsewhere) == ([theirs], theirs)
        await slow.commit()
    assert await _read(db) == ([first, second], second)


async def test_a_change_rolled_back_holds_nothing_back(
    two_schemas: tuple[Database, Database],
) -> None:
    db, _ = two_schemas
    async with db.engine.connect() as gone, db.engine.connect() as kept:
        await gone.begin()
        await _append(gone, "10001")
        await kept.begin()
        second = await _append(kept, "10002")
        await kept.commit()
        await gone.rollback()
    assert await _read(db) == ([second], second)
