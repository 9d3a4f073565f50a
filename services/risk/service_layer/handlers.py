"""Changes to the risk list. Each runs inside the caller's unit of work, recomputes
the verdict from the assertions and records the change in the feed.

Writers lock the rows of the indicators they change (writers of other values go on in
parallel) and take their feed marker (``RiskRepository.lock_feed``) as their last step,
just before the append to the feed; the caller commits right after. Writers never wait for
each other's markers: followers read only below the lowest one held (the repository says
how).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.common import metrics
from services.common.errors import InvalidArgument, NotFound
from services.common.indicators import Indicator, listing_problem
from services.risk.adapters.repository import RiskRepository
from services.risk.domain.model import (
    NOTHING,
    SIGHTINGS_SOURCE_ID,
    Assertion,
    Change,
    ChangeType,
    FraudCategory,
    RiskLevel,
    Snapshot,
    SourceType,
    compute_snapshot,
    default_expiry,
)
from services.risk.service_layer.unit_of_work import RiskUnitOfWork

HISTORY_LIMIT = 50


@dataclass(frozen=True)
class AssertionInput:
    source_type: SourceType
    source_id: str
    level: RiskLevel
    categories: frozenset[FraudCategory]
    reason: str
    reporter_count: int = 0
    label: str = ""
    expire_time: datetime | None = None


@dataclass(frozen=True)
class Record:
    indicator: Indicator
    snapshot: Snapshot
    assertions: list[Assertion]


def check_assertion(given: AssertionInput, field: str = "assertion") -> None:
    """Rules across fields that the servicer's field checks cannot see."""
    if given.source_type is SourceType.ALLOW_LIST:
        if given.level is not RiskLevel.NONE:
            raise InvalidArgument.field(
                f"{field}.level", "must be RISK_LEVEL_NONE for the allow list"
            )
        if not given.label:
            raise InvalidArgument.field(f"{field}.label", "is required for the allow list")
    elif given.level is RiskLevel.NONE:
        raise InvalidArgument.field(f"{field}.level", "RISK_LEVEL_NONE is only for the allow list")


def check_listable(indicator: Indicator, field: str = "indicator.value") -> None:
    """Only what the matcher can match, and nothing that brands everyone, may be listed."""
    problem = listing_problem(indicator)
    if problem is not None:
        raise InvalidArgument.field(field, problem)


def check_expiry(given: AssertionInput, now: datetime, field: str = "assertion") -> None:
    if given.expire_time is not None and given.expire_time <= now:
        raise InvalidArgument.field(f"{field}.expire_time", "must be in the future")


async def _apply(
    uow: RiskUnitOfWork,
    indicator_id: int,
    indicator: Indicator,
    change_type: ChangeType,
    source_type: SourceType,
    source_id: str,
    actor: str,
    reason: str,
    now: datetime,
    assertions: list[Assertion] | None = None,
    asserted: Assertion | None = None,
) -> Record:
    """Save the verdict the assertions (read again when not given) make, with the source's new
    assertion (``asserted``, when not stored yet), and append the change."""
    if assertions is None:
        assertions = await uow.repo.assertions(indicator_id)
    snapshot = compute_snapshot(assertions, now)
    await uow.repo.save_and_append(
        indicator_id,
        asserted,
        snapshot,
        indicator.kind,
        indicator.value,
        change_type,
        source_type,
        source_id,
        actor,
        reason,
        now,
    )
    return Record(indicator, snapshot, assertions)


def _asserted(
    indicator: Indicator, given: AssertionInput, standing: list[Assertion], now: datetime
) -> tuple[Assertion, list[Assertion]]:
    """The source's new assertion (renewing its earlier one) and the indicator's assertions
    with it in place of the earlier one."""
    expire = given.expire_time or default_expiry(indicator.kind, given.source_type, now)
    fresh = Assertion(
        source_type=given.source_type,
        source_id=given.source_id,
        level=given.level,
        categories=given.categories,
        reason=given.reason,
        expire_time=expire,
        create_time=now,
        update_time=now,
        reporter_count=given.reporter_count,
        label=given.label,
    )
    others = []
    for old in standing:
        if (old.source_type, old.source_id) == (fresh.source_type, fresh.source_id):
            fresh = old.renewed(fresh)
        else:
            others.append(old)
    return fresh, [*others, fresh]


async def upsert(
    uow: RiskUnitOfWork, indicator: Indicator, given: AssertionInput, actor: str, now: datetime
) -> Record:
    check_assertion(given)
    check_listable(indicator)
    check_expiry(given, now)
    indicator_id = await uow.repo.lock_indicator(indicator.kind, indicator.value, now)
    fresh, assertions = _asserted(indicator, given, await uow.repo.assertions(indicator_id), now)
    return await _apply(
        uow,
        indicator_id,
        indicator,
        ChangeType.UPSERTED,
        given.source_type,
        given.source_id,
        actor,
        given.reason,
        now,
        assertions,
        fresh,
    )


async def upsert_many(
    uow: RiskUnitOfWork,
    items: Sequence[tuple[Indicator, AssertionInput]],
    actor: str,
    now: datetime,
) -> list[Record]:
    """Upserts of already checked items (``check_assertion``, ``check_listable``,
    ``check_expiry``), set-based: a statement (or an executemany) each to lock or make the
    indicators, read their assertions, store the new ones, save the verdicts and append the
    changes, one change per item in the order given (a value given twice gets two, the later
    on top)."""
    if not items:
        return []
    repo = uow.repo
    ids = await repo.lock_indicators([(i.kind, i.value) for i, _ in items], now)
    standing = await repo.assertions_of(sorted(set(ids.values())))
    stored: dict[tuple[int, SourceType, str], Assertion] = {}
    snapshots: dict[int, Snapshot] = {}
    changes: list[dict[str, Any]] = []
    records = []
    for indicator, given in items:
        indicator_id = ids[(int(indicator.kind), indicator.value)]
        fresh, assertions = _asserted(indicator, given, standing[indicator_id], now)
        standing[indicator_id] = assertions
        stored[(indicator_id, fresh.source_type, fresh.source_id)] = fresh
        snapshot = snapshots[indicator_id] = compute_snapshot(assertions, now)
        changes.append(
            {
                "kind": indicator.kind,
                "value": indicator.value,
                "change_type": ChangeType.UPSERTED,
                "source_type": given.source_type,
                "source_id": given.source_id,
                "actor": actor,
                "reason": given.reason,
                "time": now,
                "snapshot": snapshot,
            }
        )
        records.append(Record(indicator, snapshot, assertions))
    await repo.save_assertions([(key[0], a) for key, a in stored.items()])
    await repo.save_snapshots(snapshots, now)
    await repo.lock_feed()
    await repo.append_changes(changes)
    return records


async def retire(
    uow: RiskUnitOfWork,
    indicator: Indicator,
    source_type: SourceType | None,
    source_id: str,
    reason: str,
    actor: str,
    now: datetime,
) -> Record:
    indicator_id = await uow.repo.find_id_locked(indicator.kind, indicator.value)
    if indicator_id is None:
        raise NotFound("the indicator is not on the risk list")
    removed = await uow.repo.delete_assertions(indicator_id, source_type, source_id)
    if not removed:
        raise NotFound("no assertion of that source stands on the indicator")
    return await _apply(
        uow,
        indicator_id,
        indicator,
        ChangeType.RETIRED,
        source_type or SourceType.UNSPECIFIED,
        source_id,
        actor,
        reason,
        now,
    )


async def sight(
    uow: RiskUnitOfWork,
    indicator: Indicator,
    source_type: SourceType,
    reporter_ref: str,
    category: FraudCategory | None,
    actor: str,
    now: datetime,
) -> Record:
    """A sighting counts its reporter once; sightings together make a LOW assertion."""
    check_listable(indicator)
    indicator_id = await uow.repo.lock_indicator(indicator.kind, indicator.value, now)
    count = await uow.repo.add_sighting(
        indicator_id, source_type, reporter_ref, category or FraudCategory.OTHER, now
    )
    previous = [
        a
        for a in await uow.repo.assertions(indicator_id)
        if (a.source_type, a.source_id) == (source_type, SIGHTINGS_SOURCE_ID)
    ]
    categories = frozenset([category]) if category else frozenset()
    reason = f"seen by {count} distinct reporters"
    fresh = Assertion(
        source_type=source_type,
        source_id=SIGHTINGS_SOURCE_ID,
        level=RiskLevel.LOW,
        categories=categories.union(*(a.categories for a in previous)),
        reason=reason,
        expire_time=default_expiry(indicator.kind, source_type, now),
        create_time=now,
        update_time=now,
        reporter_count=count,
    )
    if previous:
        fresh = previous[0].renewed(fresh)
    await uow.repo.save_assertion(indicator_id, fresh)
    return await _apply(
        uow,
        indicator_id,
        indicator,
        ChangeType.SIGHTED,
        source_type,
        SIGHTINGS_SOURCE_ID,
        actor,
        reason,
        now,
    )


#: Indicators whose due assertions the sweeper lapses per transaction: a few set-based
#: statements per batch, not per value (PostgreSQL's statements take arrays; SQLite's are
#: executemany in process).
EXPIRY_BATCH = {"postgresql": 20_000, "sqlite": 5000}


def expiry_batch(dialect: str) -> int:
    return EXPIRY_BATCH.get(dialect, 5000)


async def expire_due(
    uow: RiskUnitOfWork,
    now: datetime,
    limit: int | None = None,
    indicator_ids: Sequence[int] | None = None,
) -> int:
    """Lapse the assertions whose time is up on these indicators (or on the first ``limit``
    with any due) and record the new verdicts in the feed, set-based: lapse them (their
    indicators locked), read what still stands on those indicators, save the verdicts, append
    one change per lapsed assertion with its indicator's verdict as saved. Returns how many
    lapsed."""
    repo = uow.repo
    if indicator_ids is None:
        indicator_ids = await repo.due_indicators(now, limit or expiry_batch(uow.dialect))
    lapsed = await repo.lapse_due(now, indicator_ids)
    if not lapsed:
        return 0
    for item in lapsed:  # the indicator "expiry -> removal from verdicts"
        metrics.SLI_EXPIRY_REMOVAL.observe(max(0.0, (now - item.expire_time).total_seconds()))
    ids = sorted({x.indicator_id for x in lapsed})
    standing = await repo.standing_assertions_of(ids)
    await repo.save_snapshots({i: compute_snapshot(a, now) for i, a in standing.items()}, now)
    await repo.save_same_snapshot([i for i in ids if i not in standing], NOTHING, now)
    await repo.lock_feed()
    await repo.append_lapses(lapsed, "risk-service", "the assertion lapsed", now)
    return len(lapsed)


async def get_record(
    repo: RiskRepository, indicator: Indicator, now: datetime
) -> tuple[Record, list[Change]]:
    indicator_id = await repo.find_id(indicator.kind, indicator.value)
    if indicator_id is None:
        raise NotFound("the indicator is not on the risk list")
    assertions = await repo.assertions(indicator_id)
    snapshot = compute_snapshot(assertions, now)
    history = await repo.history(indicator.kind, indicator.value, HISTORY_LIMIT)
    return Record(indicator, snapshot, assertions), history


#: Numbers and domains that are official and must never be branded as fraud.
OFFICIAL = [
    ("PHONE_NUMBER", "96110", "国家反诈中心 96110 反诈预警专线"),
    ("PHONE_NUMBER", "12381", "工信部 12381 涉诈预警劝阻短信"),
    ("PHONE_NUMBER", "110", "公安报警电话 110"),
    ("PHONE_NUMBER", "12110", "公安短信报警 12110"),
    ("SMS_SENDER", "12381", "工信部 12381 涉诈预警劝阻短信"),
    ("DOMAIN", "mps.gov.cn", "中华人民共和国公安部"),
]
SEED_SOURCE_ID = "seed"
SEED_LIFETIME = timedelta(days=3650)
