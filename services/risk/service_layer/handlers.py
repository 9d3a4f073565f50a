"""Changes to the risk list. Each runs inside the caller's unit of work, recomputes
the verdict from the assertions and records the change in the feed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.common import metrics
from services.common.errors import InvalidArgument, NotFound
from services.common.indicators import Indicator, listing_problem
from services.risk.adapters.repository import RiskRepository
from services.risk.domain.model import (
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
) -> Record:
    assertions = await uow.repo.assertions(indicator_id)
    snapshot = compute_snapshot(assertions, now)
    await uow.repo.save_snapshot(indicator_id, snapshot, now)
    await uow.repo.append_change(
        indicator.kind,
        indicator.value,
        change_type,
        source_type,
        source_id,
        actor,
        reason,
        snapshot,
        now,
    )
    return Record(indicator, snapshot, assertions)


async def upsert(
    uow: RiskUnitOfWork, indicator: Indicator, given: AssertionInput, actor: str, now: datetime
) -> Record:
    check_assertion(given)
    check_listable(indicator)
    check_expiry(given, now)
    await uow.repo.lock_feed()
    indicator_id = await uow.repo.ensure(indicator.kind, indicator.value, now)
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
    for old in await uow.repo.assertions(indicator_id):
        if (old.source_type, old.source_id) == (fresh.source_type, fresh.source_id):
            fresh = old.renewed(fresh)
    await uow.repo.save_assertion(indicator_id, fresh)
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
    )


async def retire(
    uow: RiskUnitOfWork,
    indicator: Indicator,
    source_type: SourceType | None,
    source_id: str,
    reason: str,
    actor: str,
    now: datetime,
) -> Record:
    await uow.repo.lock_feed()
    indicator_id = await uow.repo.find_id(indicator.kind, indicator.value)
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
    await uow.repo.lock_feed()
    indicator_id = await uow.repo.ensure(indicator.kind, indicator.value, now)
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


#: Assertions lapsed per transaction by the sweeper: a few statements per batch, not per value.
EXPIRY_BATCH = 5000


async def expire_due(uow: RiskUnitOfWork, now: datetime, limit: int = EXPIRY_BATCH) -> int:
    """Lapse up to ``limit`` assertions whose time is up and record the new verdicts in the
    feed, set-based: one statement each to lapse them, read what still stands on their
    indicators, save the verdicts and append the changes (one per lapsed assertion)."""
    await uow.repo.lock_feed()
    due = await uow.repo.due(now, limit)
    if not due:
        return 0
    await uow.repo.mark_lapsed_many(due)
    for item in due:  # the indicator "expiry -> removal from verdicts"
        if item.expire_time is not None:
            metrics.SLI_EXPIRY_REMOVAL.observe(max(0.0, (now - item.expire_time).total_seconds()))
    by_id = await uow.repo.standing_assertions_of(sorted({d.indicator_id for d in due}))
    snapshots = {i: compute_snapshot(found, now) for i, found in by_id.items()}
    await uow.repo.save_snapshots(snapshots, now)
    await uow.repo.append_changes(
        [
            {
                "kind": item.kind,
                "value": item.value,
                "change_type": ChangeType.EXPIRED,
                "source_type": item.source_type,
                "source_id": item.source_id,
                "actor": "risk-service",
                "reason": "the assertion lapsed",
                "time": now,
                "snapshot": snapshots[item.indicator_id],
            }
            for item in due
        ]
    )
    return len(due)


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
