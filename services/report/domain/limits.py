"""Sliding-window rate limits, counted from stored rows (so replicas share them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    retry_after: float = 0.0  # seconds until the oldest counted item leaves the window


def check(
    count: int, oldest: datetime | None, limit: int, window: timedelta, now: datetime
) -> Verdict:
    """Whether one more item fits when ``count`` items are in the window.

    ``oldest`` is the time of the item whose leaving the window makes room (the
    ``count - limit + 1``-th oldest), so ``retry_after`` is exact.
    """
    if count < limit:
        return Verdict(True)
    if oldest is None:
        return Verdict(False, window.total_seconds())
    return Verdict(False, max(0.0, (oldest + window - now).total_seconds()))
