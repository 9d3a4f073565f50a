"""Two risk replicas writing one PostgreSQL schema at once keep the feed's promise.

Writers lock only their own indicators' rows and take the feed lock around the append and
the commit (``handlers``), the sweeper skips rows a writer holds. Two engines (two
replicas' pools) upsert, import, retire and sweep overlapping and distinct values at once
while a follower reads the feed from its cursor; afterwards every change is in the feed
exactly once, ids rise in commit order with no gaps, the follower saw exactly the feed (it
never missed an id below its cursor), and the index built from the feed equals the rows.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from services.common.db import Database
from services.common.indicators import Indicator, IndicatorKind, normalize
from services.risk.adapters import tables as t
from services.risk.adapters.repository import RiskRepository
from services.risk.bootstrap import VERSIONS
from services.risk.domain.model import ChangeType, FraudCategory, RiskLevel, SourceType
from services.risk.service_layer import handlers
from services.risk.service_layer.lookup import Lookup
from services.risk.service_layer.unit_of_work import RiskUnitOfWork
from tests import harness

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not harness.postgres_reachable(), reason="PostgreSQL not reachable"),
]

SHARED = [normalize(IndicatorKind.PHONE_NUMBER, f"+86139{n:08d}") for n in range(12)]


def _own(writer: int, n: int) -> Indicator:
    return normalize(IndicatorKind.PHONE_NUMBER, f"+8613{writer + 5}{n:08d}")


def _given(reason: str, source_id: str, expire: datetime | None = None) -> handlers.AssertionInput:
    return handlers.AssertionInput(
        source_type=SourceType.CARRIER,
        source_id=source_id,
        level=random.choice([RiskLevel.LOW, RiskLevel.MEDIUM, RiskLevel.HIGH]),
        categories=frozenset({FraudCategory.OTHER}),
        reason=reason,
        expire_time=expire,
    )


@pytest.fixture
async def replicas(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Database, Database]]:
    # Waits for a row or the feed lock count toward a statement's limit: a loaded CI machine
    # must not turn a wait into a rollback here (that is a test of the promise, not of speed).
    monkeypatch.setenv("ANTIFRAUD_DB_STATEMENT_TIMEOUT_SECONDS", "60")
    schema = harness.new_schema("riskwrites")
    one = Database("risk", url=harness.PG_URL, schema=schema)
    two = Database("risk", url=harness.PG_URL, schema=schema)
    await one.migrate(VERSIONS)
    try:
        yield one, two
    finally:
        await one.dispose()
        await two.dispose()
        await harness.drop_schema(schema)


async def _writer(db: Database, writer: int, rounds: int, lapsing: list[Indicator]) -> Counter[str]:
    """Upserts, imports (batches mixing shared and own values, a value twice in one batch),
    sightings and retirements; returns how many changes each reason must leave in the feed."""
    expected: Counter[str] = Counter()
    rng = random.Random(writer)
    for n in range(rounds):
        now = datetime.now(UTC)
        async with RiskUnitOfWork(db) as uow:
            value = rng.choice(SHARED) if n % 2 else _own(writer, n)
            reason = f"w{writer}-upsert-{n}"
            await handlers.upsert(uow, value, _given(reason, f"src-{writer}"), "test", now)
            await uow.commit()
        expected[reason] += 1
        batch = [*rng.sample(SHARED, 4), _own(writer, 1000 + n), SHARED[n % len(SHARED)]]
        items = [
            (v, _given(f"w{writer}-import-{n}-{k}", f"imp-{k % 2}")) for k, v in enumerate(batch)
        ]
        if n < len(lapsing):  # lapses soon: the sweepers record it
            items.append(
                (lapsing[n], _given(f"w{writer}-lapsing-{n}", "short", now + timedelta(seconds=1)))
            )
        async with RiskUnitOfWork(db) as uow:
            await handlers.upsert_many(uow, items, "test", now)
            await uow.commit()
        expected.update(g.reason for _, g in items)
        if n % 4 == 0:  # a round whose upsert was of its own value
            async with RiskUnitOfWork(db) as uow:
                await handlers.sight(
                    uow, rng.choice(SHARED), SourceType.CITIZEN_REPORTS, f"r{writer}-{n}",
                    FraudCategory.OTHER, "test", now,
                )  # fmt: skip
                await uow.commit()
            expected["sighting"] += 1
            async with RiskUnitOfWork(db) as uow:
                await handlers.retire(
                    uow, _own(writer, n), SourceType.CARRIER, f"src-{writer}",
                    f"w{writer}-retire-{n}", "test", now,
                )  # fmt: skip
                await uow.commit()
            expected[f"w{writer}-retire-{n}"] += 1
    return expected


async def _sweeper(db: Database, until: asyncio.Event) -> None:
    while not until.is_set():
        async with RiskUnitOfWork(db) as uow:
            await handlers.expire_due(uow, datetime.now(UTC), limit=3)
            await uow.commit()
        await asyncio.sleep(0.05)


async def _follow(db: Database, until: asyncio.Event) -> list[int]:
    """What a follower sees reading from its cursor while the writers write."""
    seen: list[int] = []
    cursor = 0
    while True:
        done = until.is_set()
        async with db.read() as conn:
            read = await RiskRepository(conn).changes_after(cursor, 1000)
        seen.extend(c.id for c in read.changes)
        cursor = read.last_id
        if done and not read.changes:
            return seen
        await asyncio.sleep(0.01)


async def test_two_replicas_writing_at_once_keep_the_feed_in_commit_order(
    replicas: tuple[Database, Database],
) -> None:
    one, two = replicas
    lapsing = [normalize(IndicatorKind.PHONE_NUMBER, f"+86137{n:08d}") for n in range(16)]
    follower = Lookup(one)
    await follower.load()
    writing_done, sweeping_done = asyncio.Event(), asyncio.Event()
    watching = asyncio.create_task(_follow(two, sweeping_done))
    sweepers = [asyncio.create_task(_sweeper(db, sweeping_done)) for db in (one, two)]
    counts = await asyncio.gather(
        _writer(one, 0, 30, lapsing[::2]), _writer(two, 1, 30, lapsing[1::2])
    )
    writing_done.set()
    await asyncio.sleep(1.2)  # the short assertions are due now
    for db in (one, two):
        async with RiskUnitOfWork(db) as uow:
            await handlers.expire_due(uow, datetime.now(UTC))
            await uow.commit()
    sweeping_done.set()
    await asyncio.gather(*sweepers)
    seen = await watching

    async with one.read() as conn:
        feed = (await conn.execute(sa.select(t.changes).order_by(t.changes.c.id))).all()
        rows = (await conn.execute(sa.select(t.indicators))).all()
    ids = [c.id for c in feed]
    # Every change once, nothing extra: each reason as often as it was written.
    expected = counts[0] + counts[1]
    written = Counter(
        "sighting" if c.change_type == ChangeType.SIGHTED else c.reason
        for c in feed
        if c.change_type != ChangeType.EXPIRED
    )
    assert written == expected
    lapses = Counter((c.value, c.source_id) for c in feed if c.change_type == ChangeType.EXPIRED)
    assert lapses == Counter({(v.value, "short"): 1 for v in lapsing})
    # Ids in commit order without gaps, and the follower, reading while they were written,
    # saw exactly them: no id ever appeared below its cursor after it had moved past.
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert seen == ids
    # The feed applied in order leaves each indicator's verdict as the table holds it.
    last = {(c.kind, c.value): c for c in feed}
    await follower.refresh_once()
    for row in rows:
        if (row.kind, row.value) not in last:
            continue  # only the rows made by the writers: each has changes
        change = last[(row.kind, row.value)]
        for column in ("level", "categories", "flags", "reporters", "expire", "verified", "stages"):
            assert getattr(change, column) == getattr(row, column), (row.value, column)
        held = follower.index.get(IndicatorKind(row.kind), row.value)
        if row.level > int(RiskLevel.NONE) or row.verified:
            assert held is not None, row.value
            assert (held.level, held.expire) == (RiskLevel(row.level), row.expire)
            assert (held.categories, held.flags) == (row.categories, row.flags)
        else:
            assert held is None
