"""The "what fraud looks like now" feed: categories ranked by confirmed reports."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from services.report.domain.model import FraudCategory

WINDOW = timedelta(days=7)
DEFAULT_CATEGORIES = 5
MAX_CATEGORIES = len(FraudCategory) - 1


def ranked(counts: Mapping[FraudCategory, int], most: int) -> list[tuple[FraudCategory, int]]:
    """The categories with reports, most first, ties by category number; at most ``most``."""
    found: list[tuple[FraudCategory, int]] = [
        (category, count)
        for category, count in counts.items()
        if count > 0 and category is not FraudCategory.UNSPECIFIED
    ]
    found.sort(key=lambda item: (-item[1], int(item[0])))
    return found[:most]
