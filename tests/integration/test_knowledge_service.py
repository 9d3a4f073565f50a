"""KnowledgeService over gRPC on a real database: who may do what, what citizens see,
request ids, and hostile input answered with the field that is wrong.

The identity service is not running here: announcing a call fails cleanly with
UNAVAILABLE (the whole announce-and-verify path runs in tests/e2e/test_system_knowledge.py).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import TypeVar

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf.duration_pb2 import Duration

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.report.v1 import knowledge_pb2 as K
from services.api.antifraud.report.v1 import knowledge_pb2_grpc
from services.common.db import Database
from services.common.errors import field_violations
from services.report.adapters import tables
from services.report.bootstrap import build
from tests import harness
from tests.harness import serving

NOWHERE = "127.0.0.1:1"
ANALYST = (("x-principal", "analyst:a1"),)
CITIZEN = (("x-principal", "citizen:u1"),)
ANONYMOUS = (("x-principal", "citizen:"),)
T = TypeVar("T")


@dataclass
class Client:
    stub: knowledge_pb2_grpc.KnowledgeServiceStub
    db: Database

    async def create(self, **fields: object) -> K.Article:
        given: dict[str, object] = {
            "kind": K.ARTICLE_KIND_TIP,
            "title": "警惕冒充客服退款",
            "body": "自称客服要求屏幕共享的，都是诈骗。",
            "categories": [common_pb2.FRAUD_CATEGORY_FAKE_CUSTOMER_SERVICE],
        }
        created = await self.stub.CreateArticle(
            K.CreateArticleRequest(
                request_id=str(uuid.uuid4()),
                article=K.Article(**(given | fields)),  # type: ignore[arg-type]
            ),
            metadata=ANALYST,
        )
        return created.article


@pytest.fixture
async def client(db_target: tuple[str, str | None]) -> AsyncIterator[Client]:
    url, schema = db_target
    component = build(
        url=url,
        schema=schema,
        risk_target=NOWHERE,
        warning_target=NOWHERE,
        identity_target=NOWHERE,
    )
    async with (
        serving(component) as running,
        harness.channel(running.address) as channel,
    ):
        yield Client(knowledge_pb2_grpc.KnowledgeServiceStub(channel), component.db)


async def refused(call: Awaitable[T]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def test_only_staff_write_and_citizens_see_only_what_is_published(client: Client) -> None:
    error = await refused(
        client.stub.CreateArticle(
            K.CreateArticleRequest(request_id=str(uuid.uuid4()), article=K.Article()),
            metadata=CITIZEN,
        )
    )
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED  # before looking at the input
    draft = await client.create()
    assert draft.state == K.ARTICLE_STATE_DRAFT
    assert draft.author == "analyst:a1"
    error = await refused(
        client.stub.GetArticle(K.GetArticleRequest(name=draft.name), metadata=CITIZEN)
    )
    assert error.code() is grpc.StatusCode.NOT_FOUND
    error = await refused(
        client.stub.ListArticles(
            K.ListArticlesRequest(state=K.ARTICLE_STATE_DRAFT), metadata=CITIZEN
        )
    )
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    error = await refused(
        client.stub.WithdrawArticle(K.WithdrawArticleRequest(name=draft.name), metadata=ANALYST)
    )
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION

    await client.stub.PublishArticle(K.PublishArticleRequest(name=draft.name), metadata=ANALYST)
    seen = await client.stub.GetArticle(K.GetArticleRequest(name=draft.name), metadata=ANONYMOUS)
    assert seen.article.title == draft.title
    assert seen.article.body == draft.body
    assert (seen.article.author, seen.article.source_case) == ("", "")  # staff only
    listed = await client.stub.ListArticles(K.ListArticlesRequest(), metadata=ANONYMOUS)
    assert [a.name for a in listed.articles] == [draft.name]
    assert listed.articles[0].body == ""  # BASIC view
    full = await client.stub.ListArticles(
        K.ListArticlesRequest(view=K.ARTICLE_VIEW_FULL), metadata=ANONYMOUS
    )
    assert full.articles[0].body == draft.body


async def test_an_update_changes_the_masked_fields_only(client: Client) -> None:
    created = await client.create(region="440300")
    updated = await client.stub.UpdateArticle(
        K.UpdateArticleRequest(
            article=K.Article(name=created.name, title="新标题", region=""),
            update_mask={"paths": ["title"]},
        ),
        metadata=ANALYST,
    )
    assert (updated.article.title, updated.article.region) == ("新标题", "440300")
    assert updated.article.body == created.body
    error = await refused(
        client.stub.UpdateArticle(
            K.UpdateArticleRequest(
                article=K.Article(name=created.name), update_mask={"paths": ["state"]}
            ),
            metadata=ANALYST,
        )
    )
    assert [f for f, _ in field_violations(error)] == ["update_mask"]


async def test_a_repeated_create_returns_the_first_article(client: Client) -> None:
    request = K.CreateArticleRequest(
        request_id=str(uuid.uuid4()),
        article=K.Article(
            kind=K.ARTICLE_KIND_SCRIPT,
            title="“安全账户”话术",
            body="第一步：自称公安……",
            categories=[common_pb2.FRAUD_CATEGORY_IMPERSONATING_OFFICIALS],
        ),
    )
    first = await client.stub.CreateArticle(request, metadata=ANALYST)
    again = await client.stub.CreateArticle(request, metadata=ANALYST)
    assert again == first
    request.article.title = "别的标题"
    error = await refused(client.stub.CreateArticle(request, metadata=ANALYST))
    assert error.code() is grpc.StatusCode.ABORTED


@pytest.mark.parametrize(
    ("article", "fields"),
    [
        (K.Article(), {"article.kind", "article.title", "article.body", "article.categories"}),
        (
            K.Article(
                kind=99,  # type: ignore[arg-type]
                title="x" * 201,
                body="正文",
                categories=[common_pb2.FRAUD_CATEGORY_ONLINE_LOAN] * 2,
                region="999999",
            ),
            {"article.kind", "article.title", "article.categories[1]", "article.region"},
        ),
        (
            K.Article(
                kind=K.ARTICLE_KIND_TIP,
                title="标题\x00",
                body="正文",
                categories=[42],  # type: ignore[list-item]
            ),
            {"article.title", "article.categories[0]"},
        ),
    ],
)
async def test_bad_articles_are_refused_naming_every_bad_field(
    client: Client, article: K.Article, fields: set[str]
) -> None:
    error = await refused(
        client.stub.CreateArticle(
            K.CreateArticleRequest(request_id=str(uuid.uuid4()), article=article),
            metadata=ANALYST,
        )
    )
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert {f for f, _ in field_violations(error)} == fields


async def test_bad_reads_are_refused_naming_the_field(client: Client) -> None:
    cases: list[tuple[Awaitable[object], str]] = [
        (
            client.stub.SearchArticles(K.SearchArticlesRequest(query="骗"), metadata=CITIZEN),
            "query",
        ),
        (client.stub.SearchArticles(K.SearchArticlesRequest(), metadata=CITIZEN), "query"),
        (
            client.stub.ListArticles(K.ListArticlesRequest(page_token="nope"), metadata=CITIZEN),
            "page_token",
        ),
        (client.stub.ListNotices(K.ListNoticesRequest(region="44"), metadata=CITIZEN), "region"),
        (
            client.stub.GetFraudTrends(
                K.GetFraudTrendsRequest(max_categories=-1), metadata=CITIZEN
            ),
            "max_categories",
        ),
        (
            client.stub.VerifyIncomingCall(
                K.VerifyIncomingCallRequest(caller_number="not a number"), metadata=CITIZEN
            ),
            "caller_number",
        ),
        (client.stub.GetArticle(K.GetArticleRequest(name="articles/x"), metadata=CITIZEN), "name"),
    ]
    for call, field in cases:
        error = await refused(call)
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, field
        assert [f for f, _ in field_violations(error)] == [field]


async def test_a_page_token_is_tied_to_its_filters(client: Client) -> None:
    for _ in range(3):
        created = await client.create()
        await client.stub.PublishArticle(
            K.PublishArticleRequest(name=created.name), metadata=ANALYST
        )
    first = await client.stub.ListArticles(K.ListArticlesRequest(page_size=2), metadata=CITIZEN)
    assert first.next_page_token
    error = await refused(
        client.stub.ListArticles(
            K.ListArticlesRequest(
                page_size=2,
                page_token=first.next_page_token,
                category=common_pb2.FRAUD_CATEGORY_ONLINE_LOAN,
            ),
            metadata=CITIZEN,
        )
    )
    assert [f for f, _ in field_violations(error)] == ["page_token"]


async def test_a_notice_needs_a_future_end_and_citizens_do_not_see_its_author(
    client: Client,
) -> None:
    notice = K.Notice(
        title="劝返通告", body="限期回国投案自首。", issuer="某市公安局", region="440300"
    )
    error = await refused(
        client.stub.CreateNotice(
            K.CreateNoticeRequest(request_id=str(uuid.uuid4()), notice=notice), metadata=ANALYST
        )
    )
    assert [f for f, _ in field_violations(error)] == ["notice.end_time"]
    notice.end_time.FromSeconds(notice.end_time.seconds + 4_000_000_000)  # year 2096
    error = await refused(
        client.stub.CreateNotice(
            K.CreateNoticeRequest(request_id=str(uuid.uuid4()), notice=notice), metadata=ANALYST
        )
    )
    assert [f for f, _ in field_violations(error)] == ["notice.end_time"]  # over a year


async def test_announcing_a_call_without_the_identity_service_stores_nothing(
    client: Client,
) -> None:
    request = K.AnnounceCallRequest(
        request_id=str(uuid.uuid4()),
        call=K.AnnouncedCall(caller_number="96110", reason="劝阻", station_name="反诈中心"),
        callee_phone_number="13912345678",
        ttl=Duration(seconds=600),
    )
    error = await refused(client.stub.AnnounceCall(request, metadata=ANALYST))
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    async with client.db.read() as conn:
        stored = await conn.scalar(
            sa.select(sa.func.count()).select_from(tables.knowledge_announced_calls)
        )
    assert stored == 0
    error = await refused(client.stub.AnnounceCall(request, metadata=CITIZEN))
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    bad = K.AnnounceCallRequest(
        request_id=str(uuid.uuid4()),
        call=K.AnnouncedCall(caller_number="x"),
        callee_phone_number="96110",
        ttl=Duration(seconds=10),
    )
    error = await refused(client.stub.AnnounceCall(bad, metadata=ANALYST))
    assert {f for f, _ in field_violations(error)} == {
        "call.caller_number",
        "callee_phone_number",
        "ttl",
        "call.reason",
        "call.station_name",
    }


async def test_only_a_registered_citizen_may_ask_about_a_call_and_only_about_their_own(
    client: Client,
) -> None:
    ask = K.VerifyIncomingCallRequest(caller_number="96110")
    for who in (ANALYST, ANONYMOUS, (("x-principal", "carrier:cmcc"),)):
        error = await refused(client.stub.VerifyIncomingCall(ask, metadata=who))
        assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    answer = await client.stub.VerifyIncomingCall(ask, metadata=CITIZEN)
    assert not answer.announced
    assert "96110" in answer.advice
    assert answer.station_name == ""
