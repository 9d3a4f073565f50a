"""Tallies counted in the database (SQLite and PostgreSQL) equal a count made by hand.

The tallies of an indicator come back per class of reporter (anonymous or not, their
confirmed and rejected counts) and set of categories, not one row per reporter
(``repository._tallies``), so that a number reported thousands of times costs a few rows.
Over random reports (named and anonymous reporters of varied standing, rejected reports,
reports before the window, several indicators, categories and reports per reporter) the
corroboration and the categories equal those of one tally per reporter counted here from
the rows: as a recount reads them (``tallies``) and as intake reads them with the report
about to be stored counted in (``intake_checks`` and ``tallied_with``), for a reporter who
reported before and for a new one.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from services.common.db import Database
from services.common.indicators import IndicatorKind, normalize
from services.report.adapters import tables
from services.report.adapters.repository import ReportRepository, tallied_with
from services.report.bootstrap import build
from services.report.domain.corroboration import Corroboration, Rules, Tally, corroborate
from services.report.domain.model import FraudCategory, ReportStatus
from tests.harness import serving
from tests.integration.test_report_service import NOWHERE

NOW = datetime.now(UTC).replace(microsecond=0)
SINCE = NOW - timedelta(days=7)
RULES = Rules()
INDICATORS = 3


@dataclass(frozen=True)
class Link:
    reporter: str
    anonymous: bool
    confirmed: int
    rejected: int
    indicator: int
    category: int
    status: ReportStatus
    time: datetime


@pytest.fixture
async def db(db_target: tuple[str, str | None]) -> AsyncIterator[Database]:
    url, schema = db_target
    component = build(url=url, schema=schema, rules=RULES, risk_target=NOWHERE,
                      warning_target=NOWHERE)  # fmt: skip
    async with serving(component):
        yield component.db


def _links(rng: random.Random, ids: list[int]) -> list[Link]:
    links: list[Link] = []
    for n in range(rng.randrange(5, 60)):
        anonymous = rng.random() < 0.2
        reporter = f"anonymous:{n}" if anonymous else f"citizen:{n}"
        confirmed, rejected = rng.choice((0, 0, 1, 2)), rng.choice((0, 0, 1, 2, 3, 5))
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            links.append(
                Link(
                    reporter,
                    anonymous,
                    confirmed,
                    rejected,
                    rng.choice(ids),
                    rng.randrange(len(FraudCategory)),
                    rng.choice((ReportStatus.RECEIVED,) * 4 + (ReportStatus.REJECTED,)),
                    NOW - timedelta(days=rng.uniform(0, 9)),
                )
            )
    return links


async def _store(db: Database, links: list[Link]) -> None:
    reporters = {
        link.reporter: {
            "reporter": link.reporter,
            "anonymous": link.anonymous,
            "confirmed_count": link.confirmed,
            "rejected_count": link.rejected,
            "create_time": NOW,
        }
        for link in links
    }
    reports, rows = [], []
    for link in links:
        report_id = uuid.uuid4().hex
        reports.append(
            {
                "id": report_id,
                "reporter": link.reporter,
                "anonymous": link.anonymous,
                "kind": 1,
                "status": int(link.status),
                "category": link.category,
                "description": "",
                "evidence": {},
                "create_time": link.time,
                "update_time": link.time,
            }
        )
        rows.append(
            {
                "report_id": report_id,
                "position": 0,
                "indicator_id": link.indicator,
                "reporter": link.reporter,
                "create_time": link.time,
            }
        )
    async with db.engine.begin() as conn:
        await conn.execute(sa.insert(tables.reporters), list(reporters.values()))
        await conn.execute(sa.insert(tables.reports), reports)
        await conn.execute(sa.insert(tables.report_indicators), rows)


async def _indicators(db: Database) -> list[int]:
    """The indicators' rows, made as intake makes them (``lock_indicators``)."""
    numbers = [normalize(IndicatorKind.PHONE_NUMBER, f"1380000000{k}") for k in range(INDICATORS)]
    async with db.engine.begin() as conn:
        rows = await ReportRepository(conn).lock_indicators(numbers, NOW)
    return sorted(row.id for row in rows.values())


def _by_hand(links: list[Link], indicator: int) -> tuple[Corroboration, list[FraudCategory]]:
    """One tally per reporter, counted here from the rows."""
    counted = [
        link
        for link in links
        if link.indicator == indicator
        and link.time >= SINCE
        and link.status is not ReportStatus.REJECTED
    ]
    tallies: dict[str, Tally] = {}
    for link in counted:
        seen = tallies.get(link.reporter)
        tallies[link.reporter] = Tally(
            link.reporter,
            link.anonymous,
            (seen.reports if seen else 0) + 1,
            link.confirmed,
            link.rejected,
        )
    categories = sorted({FraudCategory(link.category) for link in counted if link.category})
    return corroborate(tallies.values(), RULES), categories


def _same(got: Corroboration, expected: Corroboration) -> None:
    assert got.named_reporters == expected.named_reporters
    assert got.score == pytest.approx(expected.score)


@pytest.mark.parametrize("seed", range(4))
async def test_tallies_counted_in_the_database_equal_one_per_reporter(
    db: Database, seed: int
) -> None:
    rng = random.Random(seed)
    ids = await _indicators(db)
    links = _links(rng, ids)
    await _store(db, links)
    async with db.read() as conn:
        repo = ReportRepository(conn)
        for indicator in ids:
            expected, categories = _by_hand(links, indicator)
            tallies, found = await repo.tallies(indicator, SINCE)
            _same(corroborate(tallies, RULES), expected)
            assert found == categories
        # Intake: the report about to be stored counted in, for a reporter who reported
        # before (named or anonymous) and for a new one.
        named = next(link for link in links if not link.anonymous)
        anonymous = next((link for link in links if link.anonymous), named)
        new = Link("citizen:new", False, 0, 0, 0, 0, ReportStatus.RECEIVED, NOW)
        for who in (named, anonymous, new):
            category = rng.randrange(1, len(FraudCategory))
            read = await repo.intake_checks(
                who.reporter, rate=None, covering=None, tallies=dict.fromkeys(ids, SINCE)
            )
            assert read.before is not None
            assert read.own is not None
            mine = replace(read.own, categories=1 << category)  # as intake counts it in
            for indicator in ids:
                counted_in = Link(
                    who.reporter,
                    who.anonymous,
                    who.confirmed,
                    who.rejected,
                    indicator,
                    category,
                    ReportStatus.RECEIVED,
                    NOW,
                )
                expected, categories = _by_hand([*links, counted_in], indicator)
                tallies, found = tallied_with(read.before[indicator], mine)
                _same(corroborate(tallies, RULES), expected)
                assert found == categories


async def test_a_hot_number_comes_back_as_a_few_rows(db: Database) -> None:
    """500 reporters of two standings about one number: two rows, not 500."""
    [indicator, *_] = await _indicators(db)
    links = [
        Link(f"citizen:{n}", False, 0, n % 2 * 3, indicator, 6, ReportStatus.RECEIVED, NOW)
        for n in range(500)
    ]
    await _store(db, links)
    async with db.read() as conn:
        tallies, categories = await ReportRepository(conn).tallies(indicator, SINCE)
    assert sorted(t.reporters for t in tallies) == [250, 250]
    assert categories == [FraudCategory.IMPERSONATING_OFFICIALS]
    _same(corroborate(tallies, RULES), _by_hand(links, indicator)[0])
