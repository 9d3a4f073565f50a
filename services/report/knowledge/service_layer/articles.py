"""Handlers for articles: create, edit, publish, withdraw, read, list and search.

Writers take a unit of work and do not commit (``run_once`` or the servicer does);
readers take a repository on a read connection.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass, replace
from datetime import datetime

from services.common.errors import FailedPrecondition, NotFound
from services.common.principals import Principal
from services.report.knowledge.adapters.repository import ArticleFilter, KnowledgeRepository
from services.report.knowledge.domain import access
from services.report.knowledge.domain.articles import (
    Article,
    ArticleState,
    Content,
    Transition,
    article_name,
    revise,
    snippet,
    transition,
)
from services.report.knowledge.domain.ngrams import Query
from services.report.knowledge.service_layer.unit_of_work import KnowledgeUnitOfWork
from services.report.service_layer import paging
from services.report.service_layer.reports import new_id


def _not_found(article_id: str) -> NotFound:
    # The same answer whether the article does not exist or is not published yet.
    return NotFound(f"{article_name(article_id)} not found")


async def insert(
    uow: KnowledgeUnitOfWork,
    content: Content,
    author: str,
    now: datetime,
    *,
    source_case: str = "",
) -> Article:
    article = Article(
        id=new_id(),
        content=content,
        state=ArticleState.DRAFT,
        source_case=source_case,
        author=author,
        create_time=now,
        update_time=now,
        publish_time=None,
    )
    await uow.repo.insert_article(article)
    return article


async def create(
    uow: KnowledgeUnitOfWork, caller: Principal, content: Content, now: datetime
) -> Article:
    access.require_staff(caller, "write articles")
    return await insert(uow, content, caller.audit_actor, now)


async def _locked(uow: KnowledgeUnitOfWork, article_id: str) -> Article:
    article = await uow.repo.get_article(article_id, lock=True)
    if article is None:
        raise _not_found(article_id)
    return article


async def update(
    uow: KnowledgeUnitOfWork,
    caller: Principal,
    article_id: str,
    given: Content,
    fields: Collection[str],
    now: datetime,
) -> Article:
    access.require_staff(caller, "edit articles")
    article = await _locked(uow, article_id)
    content = revise(article.content, given, fields)
    if content == article.content:
        return article
    changed = replace(article, content=content, update_time=now)
    await uow.repo.save_article(changed, reindex=True)
    return changed


async def move(
    uow: KnowledgeUnitOfWork,
    caller: Principal,
    article_id: str,
    target: ArticleState,
    now: datetime,
) -> Article:
    """Publish (``target`` PUBLISHED) or withdraw (WITHDRAWN) an article."""
    access.require_staff(caller, "publish and withdraw articles")
    article = await _locked(uow, article_id)
    step = transition(article.state, target)
    if step is Transition.REFUSE:
        raise FailedPrecondition(f"{article_name(article_id)} is a draft: it was never published")
    if step is Transition.NOTHING:
        return article
    publish_time = now if target is ArticleState.PUBLISHED else article.publish_time
    moved = replace(article, state=target, publish_time=publish_time, update_time=now)
    await uow.repo.save_article(moved, reindex=False)
    return moved


async def get(repo: KnowledgeRepository, caller: Principal, article_id: str) -> Article:
    article = await repo.get_article(article_id)
    if article is None or not access.may_read(caller, article.state):
        raise _not_found(article_id)
    return article


@dataclass(frozen=True, slots=True)
class ArticlePage:
    articles: list[Article]
    next_page_token: str
    #: For searches: the text around the first match, by article id.
    snippets: dict[str, str]


def _paged(found: list[Article], size: int, digest: str) -> tuple[list[Article], str]:
    return paging.trim(found, size, digest, lambda a: (a.sort_time, a.id))


async def list_page(
    repo: KnowledgeRepository,
    caller: Principal,
    where: ArticleFilter,
    asked_state: ArticleState | None,
    size: int,
    token: str,
) -> ArticlePage:
    where = replace(where, states=access.visible_states(caller, asked_state))
    digest = paging.digest(asdict(where))
    found = await repo.list_articles(where, paging.position(token, digest), size + 1)
    articles, next_token = _paged(found, size, digest)
    return ArticlePage(articles, next_token, {})


async def search_page(
    repo: KnowledgeRepository,
    query: Query,
    where: ArticleFilter,
    size: int,
    token: str,
) -> ArticlePage:
    """Published articles only, for everyone: search is the citizens' way in."""
    where = replace(where, states=(ArticleState.PUBLISHED,))
    digest = paging.digest({**asdict(where), "terms": list(query.terms)})
    found = await repo.search_articles(query, where, paging.position(token, digest), size + 1)
    articles, next_token = _paged(found, size, digest)
    return ArticlePage(
        articles, next_token, {a.id: snippet(a.content, query.terms) for a in articles}
    )
