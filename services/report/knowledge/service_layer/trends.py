"""The trend feed: the categories with the most confirmed reports of the last 7 days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.common import regions
from services.report.domain.model import FraudCategory
from services.report.knowledge.adapters.repository import ArticleFilter, KnowledgeRepository
from services.report.knowledge.domain.articles import Article, ArticleState
from services.report.knowledge.domain.trends import WINDOW, ranked


@dataclass(frozen=True, slots=True)
class Trend:
    category: FraudCategory
    confirmed_reports: int
    article: Article | None


@dataclass(frozen=True, slots=True)
class Trends:
    start: datetime
    end: datetime
    trends: list[Trend]


async def trends(repo: KnowledgeRepository, region: str, most: int, now: datetime) -> Trends:
    start = now - WINDOW
    counts = await repo.confirmed_report_counts(start, now)
    found = []
    for category, count in ranked(counts, most):
        newest = await repo.list_articles(
            ArticleFilter(
                states=(ArticleState.PUBLISHED,),
                category=category,
                regions=regions.enclosing(region) if region else None,
            ),
            None,
            1,
        )
        found.append(Trend(category, count, newest[0] if newest else None))
    return Trends(start, now, found)
