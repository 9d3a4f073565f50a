"""KnowledgeService over gRPC: check the request, call the service layer, convert the answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import grpc

from services.api.antifraud.report.v1 import knowledge_pb2 as kpb
from services.api.antifraud.report.v1 import knowledge_pb2_grpc
from services.common import validation
from services.common.db import Database
from services.common.validation import collecting
from services.report.entrypoints.callers import caller, once
from services.report.entrypoints.requests import resource_id
from services.report.knowledge.adapters.repository import KnowledgeRepository
from services.report.knowledge.domain import access
from services.report.knowledge.domain.articles import Article, ArticleState
from services.report.knowledge.entrypoints import convert, requests
from services.report.knowledge.service_layer import articles, calls, notices, stories, trends
from services.report.knowledge.service_layer.unit_of_work import KnowledgeUnitOfWork
from services.report.service_layer.unit_of_work import again_on_deadlock

Context = grpc.aio.ServicerContext[Any, Any]
T = TypeVar("T")


class KnowledgeServicer(knowledge_pb2_grpc.KnowledgeServiceServicer):
    def __init__(
        self,
        db: Database,
        directory: calls.Directory,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = db
        self.directory = directory
        self.clock = clock

    def _uow(self) -> KnowledgeUnitOfWork:
        return KnowledgeUnitOfWork(self.db)

    async def _change(self, work: Callable[[KnowledgeUnitOfWork], Awaitable[T]]) -> T:
        """Run one change in its own transaction and commit it."""

        async def attempt() -> T:
            async with self._uow() as uow:
                result = await work(uow)
                await uow.commit()
                return result

        return await again_on_deadlock(attempt)

    # --- articles ----------------------------------------------------------------------------

    async def CreateArticle(
        self, request: kpb.CreateArticleRequest, context: Context
    ) -> kpb.CreateArticleResponse:
        who = caller()
        access.require_staff(who, "write articles")
        with collecting() as v:
            request_id = validation.request_id(v, request.request_id)
            if not request.HasField("article"):
                v.add("article", "is required")
            content = requests.content(v, "article", request.article)

        async def work(uow: KnowledgeUnitOfWork) -> kpb.CreateArticleResponse:
            created = await articles.create(uow, who, content, self.clock())
            return kpb.CreateArticleResponse(article=convert.article(created, staff=True))

        return await once(
            self._uow, "CreateArticle", request_id, who, request, kpb.CreateArticleResponse, work
        )

    async def UpdateArticle(
        self, request: kpb.UpdateArticleRequest, context: Context
    ) -> kpb.UpdateArticleResponse:
        who = caller()
        access.require_staff(who, "edit articles")
        article_id = resource_id(request.article.name, "articles", field="article.name")
        with collecting() as v:
            fields = requests.update_fields(v, list(request.update_mask.paths))
            given = requests.content(v, "article", request.article, fields)
        now = self.clock()
        changed: Article = await self._change(
            lambda uow: articles.update(uow, who, article_id, given, fields, now)
        )
        return kpb.UpdateArticleResponse(article=convert.article(changed, staff=True))

    async def _move(self, name: str, target: ArticleState) -> kpb.Article:
        who = caller()
        article_id = resource_id(name, "articles")
        now = self.clock()
        moved: Article = await self._change(
            lambda uow: articles.move(uow, who, article_id, target, now)
        )
        return convert.article(moved, staff=True)

    async def PublishArticle(
        self, request: kpb.PublishArticleRequest, context: Context
    ) -> kpb.PublishArticleResponse:
        article = await self._move(request.name, ArticleState.PUBLISHED)
        return kpb.PublishArticleResponse(article=article)

    async def WithdrawArticle(
        self, request: kpb.WithdrawArticleRequest, context: Context
    ) -> kpb.WithdrawArticleResponse:
        article = await self._move(request.name, ArticleState.WITHDRAWN)
        return kpb.WithdrawArticleResponse(article=article)

    async def GetArticle(
        self, request: kpb.GetArticleRequest, context: Context
    ) -> kpb.GetArticleResponse:
        who = caller()
        article_id = resource_id(request.name, "articles")
        async with self.db.read() as conn:
            found = await articles.get(KnowledgeRepository(conn), who, article_id)
        return kpb.GetArticleResponse(article=convert.article(found, staff=who.staff))

    async def ListArticles(
        self, request: kpb.ListArticlesRequest, context: Context
    ) -> kpb.ListArticlesResponse:
        who = caller()
        with collecting() as v:
            size = validation.page_size(v, request.page_size)
            where = requests.article_filter(v, request.category, request.region, request.kind)
            state = requests.state(v, request.state)
            full = requests.full_view(v, request.view)
        async with self.db.read() as conn:
            page = await articles.list_page(
                KnowledgeRepository(conn), who, where, state, size, request.page_token
            )
        return kpb.ListArticlesResponse(
            articles=[convert.article(a, staff=who.staff, full=full) for a in page.articles],
            next_page_token=page.next_page_token,
        )

    async def SearchArticles(
        self, request: kpb.SearchArticlesRequest, context: Context
    ) -> kpb.SearchArticlesResponse:
        who = caller()
        with collecting() as v:
            query = requests.query(v, request.query)
            size = validation.page_size(v, request.page_size)
            where = requests.article_filter(v, request.category, request.region)
            full = requests.full_view(v, request.view)
        async with self.db.read() as conn:
            page = await articles.search_page(
                KnowledgeRepository(conn), query, where, size, request.page_token
            )
        return kpb.SearchArticlesResponse(
            results=[
                kpb.SearchResult(
                    article=convert.article(a, staff=who.staff, full=full),
                    snippet=page.snippets.get(a.id, ""),
                )
                for a in page.articles
            ],
            next_page_token=page.next_page_token,
        )

    async def DraftStoryFromCase(
        self, request: kpb.DraftStoryFromCaseRequest, context: Context
    ) -> kpb.DraftStoryFromCaseResponse:
        who = caller()
        access.require_staff(who, "draft stories from cases")
        with collecting() as v:
            request_id = validation.request_id(v, request.request_id)
        case_id = resource_id(request.case, "cases", field="case")

        async def work(uow: KnowledgeUnitOfWork) -> kpb.DraftStoryFromCaseResponse:
            draft, removed = await stories.draft_from_case(uow, who, case_id, self.clock())
            return kpb.DraftStoryFromCaseResponse(
                article=convert.article(draft, staff=True), redactions=convert.redactions(removed)
            )

        return await once(
            self._uow,
            "DraftStoryFromCase",
            request_id,
            who,
            request,
            kpb.DraftStoryFromCaseResponse,
            work,
        )

    # --- notices -----------------------------------------------------------------------------

    async def CreateNotice(
        self, request: kpb.CreateNoticeRequest, context: Context
    ) -> kpb.CreateNoticeResponse:
        who = caller()
        access.require_staff(who, "post notices")
        now = self.clock()
        with collecting() as v:
            request_id = validation.request_id(v, request.request_id)
            new = requests.notice(v, request.notice, request.HasField("notice"), now)
        assert new is not None

        async def work(uow: KnowledgeUnitOfWork) -> kpb.CreateNoticeResponse:
            created = await notices.create(uow, who, new, now)
            return kpb.CreateNoticeResponse(notice=convert.notice(created, staff=True))

        return await once(
            self._uow, "CreateNotice", request_id, who, request, kpb.CreateNoticeResponse, work
        )

    async def ListNotices(
        self, request: kpb.ListNoticesRequest, context: Context
    ) -> kpb.ListNoticesResponse:
        who = caller()
        with collecting() as v:
            size = validation.page_size(v, request.page_size)
            region = requests.region(v, "region", request.region)
        async with self.db.read() as conn:
            page = await notices.list_valid(
                KnowledgeRepository(conn), region, self.clock(), size, request.page_token
            )
        return kpb.ListNoticesResponse(
            notices=[convert.notice(n, staff=who.staff) for n in page.notices],
            next_page_token=page.next_page_token,
        )

    # --- announced calls ---------------------------------------------------------------------

    async def AnnounceCall(
        self, request: kpb.AnnounceCallRequest, context: Context
    ) -> kpb.AnnounceCallResponse:
        who = caller()
        access.require_staff(who, "announce calls")
        with collecting() as v:
            request_id = validation.request_id(v, request.request_id)
            found = requests.announcement(v, request)
        assert found is not None
        new, callee = found
        # Resolved before the transaction (a peer is never awaited while holding one). An
        # unregistered callee gets an announcement nobody can confirm: the safe answer.
        new = replace(new, callee_user_id=await self.directory.user_of_phone(callee.value))

        async def work(uow: KnowledgeUnitOfWork) -> kpb.AnnounceCallResponse:
            announced = await calls.announce(uow, who, new, self.clock())
            return kpb.AnnounceCallResponse(call=convert.announced_call(announced))

        return await once(
            self._uow, "AnnounceCall", request_id, who, request, kpb.AnnounceCallResponse, work
        )

    async def VerifyIncomingCall(
        self, request: kpb.VerifyIncomingCallRequest, context: Context
    ) -> kpb.VerifyIncomingCallResponse:
        who = caller()
        access.callee_of(who)  # before anything else: only a callee may ask at all
        with collecting() as v:
            number = requests.phone(v, "caller_number", request.caller_number)
        assert number is not None
        async with self.db.read() as conn:
            check = await calls.verify(KnowledgeRepository(conn), who, number.value, self.clock())
        return convert.call_check(check)

    # --- trends ------------------------------------------------------------------------------

    async def GetFraudTrends(
        self, request: kpb.GetFraudTrendsRequest, context: Context
    ) -> kpb.GetFraudTrendsResponse:
        who = caller()
        with collecting() as v:
            most = requests.max_categories(v, request.max_categories)
            region = requests.region(v, "region", request.region)
        async with self.db.read() as conn:
            found = await trends.trends(KnowledgeRepository(conn), region, most, self.clock())
        return convert.trends(found, staff=who.staff)
