"""Region notices (like a city's call to come back from overseas fraud compounds) and
their validity period."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

#: A notice is a call to act now; a longer one is a mistake or should be an article.
MAX_PERIOD = timedelta(days=366)


@dataclass(frozen=True, slots=True)
class NewNotice:
    title: str
    body: str
    issuer: str
    region: str
    start_time: datetime | None
    end_time: datetime


@dataclass(frozen=True, slots=True)
class Notice:
    id: str
    title: str
    body: str
    issuer: str
    region: str
    start_time: datetime
    end_time: datetime
    author: str
    create_time: datetime

    def valid_at(self, now: datetime) -> bool:
        return self.start_time <= now < self.end_time


def period_problems(start: datetime, end: datetime, now: datetime) -> list[tuple[str, str]]:
    """(field, reason) for every way the period is not one a notice may have."""
    found = []
    if end <= start:
        found.append(("notice.end_time", "must be after start_time"))
    elif end - start > MAX_PERIOD:
        found.append(("notice.end_time", f"must be at most {MAX_PERIOD.days} days after start"))
    if end <= now:
        found.append(("notice.end_time", "must be in the future"))
    return found


def notice_name(notice_id: str) -> str:
    return f"notices/{notice_id}"
