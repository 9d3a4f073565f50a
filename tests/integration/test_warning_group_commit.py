"""Screenings committed in groups on a real database (SQLite and PostgreSQL): many concurrent
callers each get their own answer; a write the database refuses fails only its caller; a
caller that goes away costs no one else their write. With the group commit off (each
screening its own transaction, the bench's baseline) the answers are the same.

The look-up of the callers is the risk service's (tested end to end elsewhere): here each
request comes with its callers' verdicts, as ``Screener.screen`` hands them on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from services.api.antifraud.risk.v1 import risk_pb2
from services.common.db import Database
from services.common.group_commit import BatchSettings
from services.warning.adapters import tables
from services.warning.adapters.risk_checks import RiskChecks
from services.warning.domain.model import ContactKind, RiskLevel
from services.warning.domain.screening import ScreeningAction
from services.warning.service_layer.push import PushHub
from services.warning.service_layer.screening import Event, RecordState, Screened, Screener
from services.warning.settings import WarningSettings
from tests.integration.warning_database import warning_database  # noqa: F401 (db)

GROUPED = WarningSettings(follow_risk=False)
ALONE = replace(GROUPED, group_commit=BatchSettings(enabled=False))
#: Never called: the tests hand the verdicts in.
UNUSED_RISK = "127.0.0.1:1"


@pytest.fixture(params=[GROUPED, ALONE], ids=["grouped", "alone"])
async def screener(request: pytest.FixtureRequest, db: Database) -> AsyncIterator[Screener]:
    settings: WarningSettings = request.param
    found = Screener(db, settings, RiskChecks(UNUSED_RISK), PushHub(db, settings), lambda: None)
    yield found
    await found.stop()


def caller(i: int) -> str:
    return f"+86170{i:08d}"


def callee(i: int) -> str:
    return f"+86139{i:08d}"


def verdict(level: RiskLevel, *, verified: bool = False) -> risk_pb2.Verdict:
    return risk_pb2.Verdict(
        level=int(level),  # type: ignore[arg-type]
        verified=verified,
        verified_label="96110 反诈中心" if verified else "",
    )


def event(event_id: str, i: int, j: int | None = None) -> Event:
    return Event(
        event_id, caller(i), callee(i if j is None else j), ContactKind.CALL, datetime.now(UTC)
    )


async def one(
    screener: Screener, carrier: str, e: Event, v: risk_pb2.Verdict, now: datetime
) -> Screened:
    [found] = await screener.record(carrier, [Screened(e)], [v], now)
    return found


async def warning_of(db: Database, warning_id: str) -> tuple[str, str]:
    """(the warned number, the caller it is about)."""
    w = tables.warnings.c
    async with db.read() as conn:
        row = (
            await conn.execute(
                sa.select(w.phone_number, w.indicator_value).where(w.id == warning_id)
            )
        ).one()
    return row.phone_number, row.indicator_value


async def count(db: Database, table: sa.Table) -> int:
    async with db.read() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


LEVELS = [RiskLevel.MEDIUM, RiskLevel.HIGH, RiskLevel.NONE, RiskLevel.LOW]


async def test_concurrent_screenings_each_get_their_own_answer(
    screener: Screener, db: Database
) -> None:
    now = datetime.now(UTC)
    # One transaction per call holds a pooled connection each (20 at most; the rest wait up
    # to the connect timeout, which a loaded machine can exceed): fewer at once there.
    n = 40 if screener.settings.group_commit.enabled else 16
    calls = [(f"e-{i}", i, LEVELS[i % 4]) for i in range(n)]
    verified_caller = verdict(RiskLevel.LOW, verified=True)
    answers = await asyncio.gather(
        *(one(screener, "carrier-cmcc", event(eid, i), verdict(lv), now) for eid, i, lv in calls),
        # The same event from another carrier is its own record; a verified caller is
        # labelled and not kept.
        one(screener, "carrier-cu", event("e-0", 0), verdict(RiskLevel.MEDIUM), now),
        one(screener, "carrier-cmcc", event("v-1", 1000), verified_caller, now),
    )
    *mine, other_carrier, verified = answers
    expected = {
        RiskLevel.MEDIUM: (ScreeningAction.WARN, RecordState.RECORDED),
        RiskLevel.HIGH: (ScreeningAction.BLOCK, RecordState.RECORDED),
        RiskLevel.NONE: (ScreeningAction.ALLOW, RecordState.NOT_NEEDED),
        RiskLevel.LOW: (ScreeningAction.LABEL, RecordState.NOT_NEEDED),
    }
    warned: set[str] = set()
    for (eid, i, level), answer in zip(calls, mine, strict=True):
        assert answer.event.event_id == eid
        assert (answer.action, answer.record_state) == expected[level], eid
        assert answer.error == ""
        if level >= RiskLevel.MEDIUM:
            assert answer.warning_id is not None
            assert await warning_of(db, answer.warning_id) == (callee(i), caller(i))
            warned.add(answer.warning_id)
        else:
            assert answer.warning_id is None
    assert len(warned) == n // 2  # one warning per risky call, each its own
    # The other carrier's screening of the same call warns no one twice.
    assert other_carrier.record_state == RecordState.RECORDED
    assert other_carrier.warning_id == mine[0].warning_id
    assert (verified.action, verified.record_state) == (
        ScreeningAction.LABEL,
        RecordState.NOT_NEEDED,
    )
    assert verified.label == "96110 反诈中心"
    assert await count(db, tables.screenings) == n // 2 + 1
    assert await count(db, tables.contact_pairs) == n // 2
    assert await count(db, tables.warnings) == n // 2
    if screener.settings.group_commit.enabled:
        assert screener.commits.stats.transactions < len(answers)


async def test_repeats_and_a_second_call_answer_with_the_first_warning(
    screener: Screener, db: Database
) -> None:
    now = datetime.now(UTC)
    medium = verdict(RiskLevel.MEDIUM)
    first = await one(screener, "carrier-cmcc", event("a-1", 7), medium, now)
    assert first.warning_id is not None
    repeat, second_call, same_batch = await asyncio.gather(
        one(screener, "carrier-cmcc", event("a-1", 7), medium, now),
        one(screener, "carrier-cmcc", event("a-2", 7), medium, now),
        one(screener, "carrier-cmcc", event("a-3", 7), medium, now),
    )
    for answer in (repeat, second_call, same_batch):
        assert answer.record_state == RecordState.RECORDED
        assert answer.warning_id == first.warning_id
    assert await count(db, tables.warnings) == 1
    assert await count(db, tables.screenings) == 3
    # Each record names the one warning: the first from its insert, the later calls' records
    # corrected to it (their own warnings, chosen before the insert, were never created).
    s = tables.screenings.c
    async with db.read() as conn:
        recorded = set((await conn.execute(sa.select(s.warning_id))).scalars())
    assert recorded == {first.warning_id}
    # The repeat counts nothing twice: three distinct calls on the pair.
    c = tables.contact_pairs.c
    async with db.read() as conn:
        assert await conn.scalar(sa.select(sa.func.sum(c.calls))) == 3


async def test_a_write_the_database_refuses_fails_only_its_own_caller(
    screener: Screener, db: Database
) -> None:
    now = datetime.now(UTC)
    medium = verdict(RiskLevel.MEDIUM)
    bad = Event(None, caller(99), callee(99), ContactKind.CALL, now)  # type: ignore[arg-type]
    answers = await asyncio.gather(
        *(one(screener, "carrier-cmcc", event(f"g-{i}", i), medium, now) for i in range(10)),
        one(screener, "carrier-cmcc", bad, medium, now),
    )
    *good, refused = answers
    assert refused.record_state == RecordState.NOT_RECORDED
    assert "send the event again" in refused.error
    for i, answer in enumerate(good):
        assert answer.record_state == RecordState.RECORDED, answer.error
        assert answer.warning_id is not None
        assert await warning_of(db, answer.warning_id) == (callee(i), caller(i))
    assert await count(db, tables.screenings) == 10
    assert await count(db, tables.warnings) == 10
    if screener.settings.group_commit.enabled:
        assert screener.commits.stats.split == 1


async def test_a_caller_that_goes_away_costs_no_one_else_their_write(
    screener: Screener, db: Database
) -> None:
    now = datetime.now(UTC)
    medium = verdict(RiskLevel.MEDIUM)
    tasks = [
        asyncio.create_task(one(screener, "carrier-cmcc", event(f"c-{i}", i), medium, now))
        for i in range(12)
    ]
    await asyncio.sleep(0)  # every request is on its way (waiting for its commit)
    tasks[3].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[3], asyncio.CancelledError)
    for i, answer in enumerate(results):
        if i == 3:
            continue
        assert isinstance(answer, Screened)
        assert answer.record_state == RecordState.RECORDED
        assert answer.warning_id is not None
        assert await warning_of(db, answer.warning_id) == (callee(i), caller(i))
    # The others' records are all there; the one that went away was not told, and its
    # carrier sends the event again: a repeat of a record that stands adds nothing.
    held = await count(db, tables.screenings)
    assert held in (11, 12)
    again = await one(screener, "carrier-cmcc", event("c-3", 3), medium, now)
    assert again.record_state == RecordState.RECORDED
    assert again.warning_id is not None
    assert await warning_of(db, again.warning_id) == (callee(3), caller(3))
    assert await count(db, tables.screenings) == 12
    assert await count(db, tables.warnings) == 12


async def test_a_database_that_cannot_be_reached_fails_every_write_at_once() -> None:
    """An outage is not looked for write by write: each caller gets the error from the one
    attempt, and the carrier is told to send again."""
    down = Database("warning", url="postgresql+asyncpg://postgres@127.0.0.1:1/test")
    screener = Screener(
        down, GROUPED, RiskChecks(UNUSED_RISK), PushHub(down, GROUPED), lambda: None
    )
    try:
        now = datetime.now(UTC)
        answers = await asyncio.gather(
            *(
                one(screener, "carrier-cmcc", event(f"d-{i}", i), verdict(RiskLevel.MEDIUM), now)
                for i in range(8)
            )
        )
        for answer in answers:
            assert answer.record_state == RecordState.NOT_RECORDED
            assert answer.action == ScreeningAction.WARN  # the decision stands; its record not
            assert "send the event again" in answer.error
        assert screener.commits.stats.split == 0
        assert screener.commits.stats.transactions == 0
    finally:
        await screener.stop()
        await down.dispose()
