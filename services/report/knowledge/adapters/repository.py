"""Reading and writing articles, their index, notices and announced calls in one transaction.

Nothing here commits. The report context's tables are only read: confirmed reports
for the trend feed (cases are read through the report repository).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.report.adapters import tables as t
from services.report.adapters.repository import Position, utc, utc_or_none
from services.report.domain.model import FraudCategory, ReportStatus
from services.report.knowledge.domain.articles import Article, ArticleKind, ArticleState, Content
from services.report.knowledge.domain.calls import AnnouncedCall, NewCall
from services.report.knowledge.domain.ngrams import Query
from services.report.knowledge.domain.notices import Notice

_A = t.knowledge_articles
_CATEGORIES = t.knowledge_article_categories
_GRAMS = t.knowledge_article_grams
_N = t.knowledge_notices
_CALLS = t.knowledge_announced_calls


@dataclass(frozen=True, slots=True)
class ArticleFilter:
    #: Only these states; empty for every state.
    states: tuple[ArticleState, ...] = ()
    category: FraudCategory | None = None
    kind: ArticleKind | None = None
    #: Only articles for one of these regions (see regions.enclosing); None for any region.
    regions: tuple[str, ...] | None = None


def _article(row: Any) -> Article:
    return Article(
        id=row.id,
        content=Content(
            kind=ArticleKind(row.kind),
            title=row.title,
            summary=row.summary,
            body=row.body,
            categories=tuple(FraudCategory(int(c)) for c in row.categories),
            region=row.region,
        ),
        state=ArticleState(row.state),
        source_case=row.source_case or "",
        author=row.author,
        create_time=utc(row.create_time),
        update_time=utc(row.update_time),
        publish_time=utc_or_none(row.publish_time),
    )


def _notice(row: Any) -> Notice:
    return Notice(
        id=row.id,
        title=row.title,
        body=row.body,
        issuer=row.issuer,
        region=row.region,
        start_time=utc(row.start_time),
        end_time=utc(row.end_time),
        author=row.author,
        create_time=utc(row.create_time),
    )


def _after(time_column: sa.Column[Any], id_column: sa.Column[Any], after: Position) -> Any:
    """Rows after ``after`` in newest-first order (time descending, then id descending)."""
    mark = sa.tuple_(sa.literal(after.time, time_column.type), sa.literal(after.id))
    return sa.tuple_(time_column, id_column) < mark


class KnowledgeRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    # --- articles ----------------------------------------------------------------------------

    def _article_values(self, article: Article) -> dict[str, Any]:
        content = article.content
        return {
            "kind": int(content.kind),
            "state": int(article.state),
            "title": content.title,
            "summary": content.summary,
            "body": content.body,
            "categories": [int(c) for c in content.categories],
            "region": content.region,
            "search_text": content.searchable(),
            "update_time": article.update_time,
            "publish_time": article.publish_time,
            "sort_time": article.sort_time,
        }

    async def _index(self, article_id: str, content: Content) -> None:
        """Store the article's categories and bigrams (after removing the old ones)."""
        for table in (_CATEGORIES, _GRAMS):
            await self.conn.execute(sa.delete(table).where(table.c.article_id == article_id))
        await self.conn.execute(
            sa.insert(_CATEGORIES),
            [{"article_id": article_id, "category": int(c)} for c in content.categories],
        )
        grams = sorted(content.grams())
        if grams:
            await self.conn.execute(
                sa.insert(_GRAMS), [{"gram": g, "article_id": article_id} for g in grams]
            )

    async def insert_article(self, article: Article) -> None:
        await self.conn.execute(
            sa.insert(_A).values(
                id=article.id,
                source_case=article.source_case or None,
                author=article.author,
                create_time=article.create_time,
                **self._article_values(article),
            )
        )
        await self._index(article.id, article.content)

    async def save_article(self, article: Article, *, reindex: bool) -> None:
        """Store a changed article; ``reindex`` when its text or categories changed."""
        await self.conn.execute(
            sa.update(_A).where(_A.c.id == article.id).values(**self._article_values(article))
        )
        if reindex:
            await self._index(article.id, article.content)

    async def get_article(self, article_id: str, *, lock: bool = False) -> Article | None:
        """An article; ``lock`` holds its row until the transaction ends (PostgreSQL; SQLite
        transactions are serialised already)."""
        query = sa.select(_A).where(_A.c.id == article_id)
        if lock:
            query = query.with_for_update()
        row = (await self.conn.execute(query)).first()
        return None if row is None else _article(row)

    def _filtered(self, query: Any, where: ArticleFilter) -> Any:
        if where.states:
            query = query.where(_A.c.state.in_([int(s) for s in where.states]))
        if where.kind is not None:
            query = query.where(_A.c.kind == int(where.kind))
        if where.regions is not None:
            query = query.where(_A.c.region.in_(where.regions))
        if where.category is not None:
            query = query.where(
                _A.c.id.in_(
                    sa.select(_CATEGORIES.c.article_id).where(
                        _CATEGORIES.c.category == int(where.category)
                    )
                )
            )
        return query

    async def _page(self, query: Any, after: Position | None, size: int) -> list[Article]:
        if after is not None:
            query = query.where(_after(_A.c.sort_time, _A.c.id, after))
        query = query.order_by(_A.c.sort_time.desc(), _A.c.id.desc()).limit(size)
        return [_article(row) for row in await self.conn.execute(query)]

    async def list_articles(
        self, where: ArticleFilter, after: Position | None, size: int
    ) -> list[Article]:
        return await self._page(self._filtered(sa.select(_A), where), after, size)

    async def search_articles(
        self, query: Query, where: ArticleFilter, after: Position | None, size: int
    ) -> list[Article]:
        """Articles holding every bigram of the query (the index), then every term (LIKE)."""
        candidates = (
            sa.select(_GRAMS.c.article_id)
            .where(_GRAMS.c.gram.in_(sorted(query.grams)))
            .group_by(_GRAMS.c.article_id)
            .having(sa.func.count() == len(query.grams))
        )
        found = self._filtered(sa.select(_A), where).where(_A.c.id.in_(candidates))
        for term in query.terms:
            found = found.where(_A.c.search_text.contains(term, autoescape=True))
        return await self._page(found, after, size)

    # --- notices -----------------------------------------------------------------------------

    async def insert_notice(self, notice: Notice) -> None:
        await self.conn.execute(
            sa.insert(_N).values(
                id=notice.id,
                title=notice.title,
                body=notice.body,
                issuer=notice.issuer,
                region=notice.region,
                start_time=notice.start_time,
                end_time=notice.end_time,
                author=notice.author,
                create_time=notice.create_time,
            )
        )

    async def valid_notices(
        self, regions: Sequence[str], now: datetime, after: Position | None, size: int
    ) -> list[Notice]:
        query = sa.select(_N).where(
            _N.c.region.in_(regions), _N.c.end_time > now, _N.c.start_time <= now
        )
        if after is not None:
            query = query.where(_after(_N.c.start_time, _N.c.id, after))
        query = query.order_by(_N.c.start_time.desc(), _N.c.id.desc()).limit(size)
        return [_notice(row) for row in await self.conn.execute(query)]

    # --- announced calls ---------------------------------------------------------------------

    async def insert_call(
        self, call_id: str, new: NewCall, announcer: str, now: datetime
    ) -> AnnouncedCall:
        call = AnnouncedCall(
            id=call_id,
            caller_number=new.caller_number,
            masked_callee=new.masked_callee,
            reason=new.reason,
            station_name=new.station_name,
            announcer=announcer,
            create_time=now,
            expire_time=now + new.ttl,
        )
        await self.conn.execute(
            sa.insert(_CALLS).values(
                id=call.id,
                caller_number=call.caller_number,
                callee_user_id=new.callee_user_id,
                masked_callee=call.masked_callee,
                reason=call.reason,
                station_name=call.station_name,
                announcer=call.announcer,
                create_time=call.create_time,
                expire_time=call.expire_time,
            )
        )
        return call

    async def announced_call(
        self, callee_user_id: str, caller_number: str, now: datetime
    ) -> AnnouncedCall | None:
        """The newest unexpired call announced from ``caller_number`` to this user."""
        row = (
            await self.conn.execute(
                sa.select(_CALLS)
                .where(
                    _CALLS.c.callee_user_id == callee_user_id,
                    _CALLS.c.caller_number == caller_number,
                    _CALLS.c.expire_time > now,
                    _CALLS.c.create_time <= now,
                )
                .order_by(_CALLS.c.create_time.desc(), _CALLS.c.id.desc())
                .limit(1)
            )
        ).first()
        if row is None:
            return None
        return AnnouncedCall(
            id=row.id,
            caller_number=row.caller_number,
            masked_callee=row.masked_callee,
            reason=row.reason,
            station_name=row.station_name,
            announcer=row.announcer,
            create_time=utc(row.create_time),
            expire_time=utc(row.expire_time),
        )

    # --- the report context, read only -------------------------------------------------------

    async def confirmed_report_counts(
        self, start: datetime, end: datetime
    ) -> dict[FraudCategory, int]:
        """Confirmed reports received in [start, end), by category (ix_reports_status_time)."""
        r = t.reports
        rows = await self.conn.execute(
            sa.select(r.c.category, sa.func.count().label("n"))
            .where(
                r.c.status == int(ReportStatus.CONFIRMED),
                r.c.create_time >= start,
                r.c.create_time < end,
            )
            .group_by(r.c.category)
        )
        return {FraudCategory(row.category): int(row.n) for row in rows}
