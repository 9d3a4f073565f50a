"""Contacts between numbers, kept only as far as warning their parties needs.

Only contacts with a risk are kept at all: one of the two numbers was MEDIUM or higher
when the call was screened (the carrier's screening says so), or is listed at MEDIUM or
higher on the risk feed the service follows. Everyone else's calls are the carriers'
records, not ours: at national scale the whole call graph would be everyone's.

A fan-out needs, for each number that was in touch with a fraud number, how
recently and how often: so events are kept as counts per unordered pair of
numbers and UTC day, with the time of the latest contact. Direction, duration
and content are dropped at the door.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.warning.domain.model import ContactKind, RiskLevel

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ContactEvent:
    """One call or SMS, with both numbers normalised."""

    caller: str
    callee: str
    time: datetime
    kind: ContactKind
    #: The caller's level when the contact was screened (NONE when not screened).
    caller_level: RiskLevel = RiskLevel.NONE


def worth_keeping(event: ContactEvent, listed: dict[str, RiskLevel]) -> bool:
    """Whether a contact may serve a warning: its caller was MEDIUM or higher at screening,
    or either number is listed at MEDIUM or higher (``listed``: the feed's last levels)."""
    if event.caller_level >= RiskLevel.MEDIUM:
        return True
    return any(
        listed.get(number, RiskLevel.NONE) >= RiskLevel.MEDIUM
        for number in (event.caller, event.callee)
    )


@dataclass(frozen=True)
class PairDay:
    """An unordered pair of numbers (``number_a < number_b``) on one UTC day."""

    number_a: str
    number_b: str
    day: int


@dataclass
class PairCounts:
    calls: int = 0
    sms: int = 0
    last_time: datetime = _EPOCH


def day_of(time: datetime) -> int:
    """Days since 1970-01-01 UTC."""
    return (time.astimezone(UTC) - _EPOCH).days


def aggregate(events: Iterable[ContactEvent]) -> dict[PairDay, PairCounts]:
    """Counts per pair and day; a batch of 10,000 events becomes one upsert per pair-day."""
    found: dict[PairDay, PairCounts] = {}
    for event in events:
        a, b = sorted((event.caller, event.callee))
        key = PairDay(a, b, day_of(event.time))
        counts = found.get(key)
        if counts is None:
            counts = found[key] = PairCounts()
        if event.kind == ContactKind.CALL:
            counts.calls += 1
        else:
            counts.sms += 1
        counts.last_time = max(counts.last_time, event.time)
    return found


@dataclass(frozen=True)
class ContactLevelRule:
    """The level a contact of a fraud number is warned at: it grows with recency and frequency.

    Points for recency (the latest contact within ``strong_recency`` or
    ``weak_recency``) and for frequency (at least ``strong_count`` or
    ``weak_count`` contacts in the window) add up; ``high_points`` or more is
    HIGH, ``medium_points`` or more MEDIUM, anything less LOW.
    """

    strong_recency: timedelta = timedelta(hours=24)
    weak_recency: timedelta = timedelta(hours=72)
    strong_count: int = 5
    weak_count: int = 2
    high_points: int = 3
    medium_points: int = 2

    def level(self, last_contact: datetime, contact_count: int, now: datetime) -> RiskLevel:
        age = now - last_contact
        points = 2 if age <= self.strong_recency else 1 if age <= self.weak_recency else 0
        if contact_count >= self.strong_count:
            points += 2
        elif contact_count >= self.weak_count:
            points += 1
        if points >= self.high_points:
            return RiskLevel.HIGH
        if points >= self.medium_points:
            return RiskLevel.MEDIUM
        return RiskLevel.LOW
