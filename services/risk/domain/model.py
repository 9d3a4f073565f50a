"""The risk list's rules: assertions by sources, and the verdict they add up to.

An indicator carries one assertion per source (the report service's
corroboration, an analyst, a carrier feed, a case, the allow list, ...). The
verdict is computed from the assertions in force: the highest level wins, the
allow list beats everything, lapsed assertions count for nothing.
"""

from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

# Re-exported: the domain speaks this shared vocabulary.
from services.common.fraud_types import FraudCategory as FraudCategory
from services.common.fraud_types import RiskLevel as RiskLevel
from services.common.indicators import IndicatorKind


class SourceType(enum.IntEnum):
    """Same numbers as antifraud.risk.v1.SourceType."""

    UNSPECIFIED = 0
    CITIZEN_REPORTS = 1
    POLICE = 2
    CARRIER = 3
    BANK = 4
    ANALYST = 5
    CASE = 6
    ALLOW_LIST = 7


class ChangeType(enum.IntEnum):
    """Same numbers as antifraud.risk.v1.ChangeType."""

    UNSPECIFIED = 0
    UPSERTED = 1
    RETIRED = 2
    EXPIRED = 3
    SIGHTED = 4


class SourceFlag(enum.IntFlag):
    """Which kinds of source stand behind a verdict, packed into one small int."""

    POLICE = 1
    CARRIER = 2
    BANK = 4
    ANALYST = 8
    CASE = 16
    CITIZEN_REPORTS = 32


_FLAG_OF_SOURCE = {
    SourceType.POLICE: SourceFlag.POLICE,
    SourceType.CARRIER: SourceFlag.CARRIER,
    SourceType.BANK: SourceFlag.BANK,
    SourceType.ANALYST: SourceFlag.ANALYST,
    SourceType.CASE: SourceFlag.CASE,
    SourceType.CITIZEN_REPORTS: SourceFlag.CITIZEN_REPORTS,
}

#: How long an assertion stands unless re-confirmed. Phone numbers are recycled
#: by carriers and IPs reassigned, so they lapse sooner than accounts.
DEFAULT_LIFETIME: dict[IndicatorKind, timedelta] = {
    IndicatorKind.PHONE_NUMBER: timedelta(days=180),
    IndicatorKind.SMS_SENDER: timedelta(days=90),
    IndicatorKind.URL: timedelta(days=90),
    IndicatorKind.DOMAIN: timedelta(days=180),
    IndicatorKind.IP_ADDRESS: timedelta(days=30),
    IndicatorKind.BANK_ACCOUNT: timedelta(days=365),
    IndicatorKind.PAYMENT_ACCOUNT: timedelta(days=365),
    IndicatorKind.QQ_NUMBER: timedelta(days=365),
    IndicatorKind.WECHAT_ID: timedelta(days=365),
    IndicatorKind.APP: timedelta(days=365),
}
ALLOW_LIST_LIFETIME = timedelta(days=3650)
#: The assertion id used for sightings: one per source type, counting distinct reporters.
SIGHTINGS_SOURCE_ID = "sightings"


def default_expiry(kind: IndicatorKind, source: SourceType, now: datetime) -> datetime:
    if source is SourceType.ALLOW_LIST:
        return now + ALLOW_LIST_LIFETIME
    return now + DEFAULT_LIFETIME[kind]


def categories_mask(categories: frozenset[FraudCategory]) -> int:
    mask = 0
    for category in categories:
        mask |= 1 << int(category)
    return mask


def categories_of(mask: int) -> list[FraudCategory]:
    return [c for c in FraudCategory if c and mask & (1 << int(c))]


@dataclass(frozen=True)
class Assertion:
    """What one source says about an indicator, until it lapses."""

    source_type: SourceType
    source_id: str
    level: RiskLevel
    categories: frozenset[FraudCategory]
    reason: str
    expire_time: datetime
    create_time: datetime
    update_time: datetime
    reporter_count: int = 0
    label: str = ""
    lapsed: bool = False

    def in_force(self, now: datetime) -> bool:
        return not self.lapsed and self.expire_time > now

    def renewed(self, newer: Assertion) -> Assertion:
        """The same source asserting again: its content replaces, its history stays."""
        return replace(newer, create_time=self.create_time, lapsed=False)


@dataclass(frozen=True)
class Snapshot:
    """The verdict of an indicator as the index keeps it: small, and enough to explain itself."""

    level: RiskLevel
    categories: int  # mask of FraudCategory bits
    flags: int  # mask of SourceFlag bits
    reporters: int
    first_seen: int  # epoch seconds, 0 when never
    last_seen: int
    expire: int  # epoch seconds after which nothing stands
    verified: bool = False
    label: str = ""
    #: What the verdict becomes as the assertions behind it lapse one by one, before the
    #: sweeper records it: (from epoch second, verdict), in time order. Read time uses it, so
    #: a lapsed assertion never decides a verdict, not even for a moment.
    later: tuple[tuple[int, Snapshot], ...] = ()

    @property
    def listed(self) -> bool:
        return self.verified or self.level > RiskLevel.NONE

    def at(self, now: int) -> Snapshot:
        """The verdict in force at ``now`` (epoch seconds): this one, or a later stage."""
        current = self
        for start, stage in self.later:
            if start > now:
                break
            current = stage
        return current


NOTHING = Snapshot(RiskLevel.NONE, 0, 0, 0, 0, 0, 0)


#: At most this many later stages are kept with a verdict (distinct lapse times); the sweeper
#: records the rest as they come.
MAX_STAGES = 8


def compute_snapshot(assertions: list[Assertion], now: datetime) -> Snapshot:
    """Add up the assertions in force. The allow list beats every report. The verdict carries
    what it becomes as its assertions lapse (``later``)."""
    snapshot = _verdict(assertions, now)
    if not snapshot.listed:
        return snapshot
    active = [a for a in assertions if a.in_force(now)]
    lapse_times = sorted({_lapse_second(a) for a in active})[:-1][:MAX_STAGES]
    if not lapse_times:
        return snapshot
    stages: list[tuple[int, Snapshot]] = []
    for second in lapse_times:
        stage = _verdict(active, datetime.fromtimestamp(second, UTC))
        if stages and stages[-1][1] == stage:
            continue
        stages.append((second, stage))
    return replace(snapshot, later=tuple(stages))


def _lapse_second(a: Assertion) -> int:
    # Rounded up: an assertion stands until its last second has passed, never less.
    return math.ceil(a.expire_time.timestamp())


def _verdict(assertions: list[Assertion], now: datetime) -> Snapshot:
    active = [a for a in assertions if a.in_force(now)]
    if not active:
        return NOTHING
    first_seen = int(min(a.create_time for a in active).timestamp())
    last_seen = int(max(a.update_time for a in active).timestamp())
    expire = max(_lapse_second(a) for a in active)
    allowed = [a for a in active if a.source_type is SourceType.ALLOW_LIST]
    if allowed:
        return Snapshot(
            RiskLevel.NONE, 0, 0, 0, first_seen, last_seen, expire, True, allowed[0].label
        )
    level = max(a.level for a in active)
    categories = 0
    flags = 0
    for a in active:
        categories |= categories_mask(a.categories)
        flags |= _FLAG_OF_SOURCE.get(a.source_type, 0)
    # Only citizens' reports count as "reported by N citizens"; partners and staff are
    # named as what they are.
    reporters = max(
        (a.reporter_count for a in active if a.source_type is SourceType.CITIZEN_REPORTS),
        default=0,
    )
    return Snapshot(level, categories, flags, reporters, first_seen, last_seen, expire)


def stages_text(snapshot: Snapshot) -> str:
    """``snapshot.later`` as stored (JSON), empty when there are none."""
    if not snapshot.later:
        return ""
    return json.dumps(
        [
            [start, int(s.level), s.categories, s.flags, s.reporters, s.first_seen,
             s.last_seen, s.expire, s.verified, s.label]
            for start, s in snapshot.later
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )  # fmt: skip


def stages_of(text: str | None) -> tuple[tuple[int, Snapshot], ...]:
    if not text:
        return ()
    found: list[tuple[int, Snapshot]] = []
    for start, level, cats, flags, reporters, first, last, expire, verified, label in json.loads(
        text
    ):
        snapshot = Snapshot(
            RiskLevel(level), cats, flags, reporters, first, last, expire, bool(verified), label
        )
        found.append((int(start), snapshot))
    return tuple(found)


_LEVEL_WORDS = {
    RiskLevel.LOW: "some signs of fraud; take care",
    RiskLevel.MEDIUM: "corroborated fraud reports; do not pay or share codes",
    RiskLevel.HIGH: "confirmed fraud; do not answer, pay or share anything",
}
_CATEGORY_WORDS = {
    FraudCategory.ONLINE_LOAN: "fake online loans",
    FraudCategory.ORDER_BRUSHING: "order brushing and paid tasks",
    FraudCategory.PIG_BUTCHERING: "romance investment (pig butchering)",
    FraudCategory.FAKE_CUSTOMER_SERVICE: "fake customer service refunds",
    FraudCategory.IMPERSONATING_ACQUAINTANCE: "impersonating an acquaintance or leader",
    FraudCategory.IMPERSONATING_OFFICIALS: "impersonating police, prosecutors or courts",
    FraudCategory.STOCK_TIPS: "fake stock tips and investment",
    FraudCategory.FAKE_SHOPPING: "fake online shopping",
    FraudCategory.CAMPUS_LOAN_CANCELLATION: "cancelling a 'campus loan'",
    FraudCategory.GAME_CURRENCY: "game currency and account trading",
    FraudCategory.OTHER: "other fraud",
}


def reasons(snapshot: Snapshot, matched_value: str = "") -> list[str]:
    """Why, in words fit to show a citizen: every verdict explains itself."""
    if snapshot.verified:
        return [f"verified official: {snapshot.label}" if snapshot.label else "verified official"]
    if snapshot.level <= RiskLevel.NONE:
        return []
    found = [_LEVEL_WORDS[snapshot.level]]
    flags = SourceFlag(snapshot.flags)
    if snapshot.reporters == 1:
        found.append("reported by a citizen")
    elif snapshot.reporters:
        found.append(f"reported by {snapshot.reporters} distinct citizens")
    if SourceFlag.POLICE in flags:
        found.append("confirmed by police")
    if SourceFlag.ANALYST in flags:
        found.append("reviewed by an anti-fraud analyst")
    if SourceFlag.CARRIER in flags:
        found.append("flagged by a carrier")
    if SourceFlag.BANK in flags:
        found.append("flagged by a bank")
    if SourceFlag.CASE in flags:
        found.append("named as a payee in a filed fraud case")
    words = [_CATEGORY_WORDS[c] for c in categories_of(snapshot.categories)]
    if words:
        found.append("used for " + ", ".join(words))
    if matched_value:
        found.append(f"listed as {matched_value}")
    return found


@dataclass(frozen=True)
class Change:
    """A recorded change of the risk list; its id is the feed cursor."""

    id: int
    kind: IndicatorKind
    value: str
    change_type: ChangeType
    source_type: SourceType
    source_id: str
    actor: str
    reason: str
    time: datetime
    snapshot: Snapshot = field(default=NOTHING)
    #: The trace the change was made in (a W3C traceparent), for feed followers.
    trace_context: str | None = None
