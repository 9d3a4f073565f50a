"""Fraud knowledge on a real database (SQLite, and PostgreSQL when reachable): Chinese
substring search through the bigram index, notice validity, and trend counts that match
the confirmed reports."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from services.common import regions
from services.common.db import Database
from services.common.errors import FailedPrecondition, NotFound
from services.common.indicators import IndicatorKind, normalize
from services.common.principals import Principal
from services.report.bootstrap import VERSIONS
from services.report.domain.corroboration import Rules
from services.report.domain.model import (
    FraudCategory,
    Money,
    NewCase,
    NewPayee,
    NewReport,
    ReportKind,
    ReviewDecision,
)
from services.report.knowledge.adapters.repository import ArticleFilter, KnowledgeRepository
from services.report.knowledge.domain.articles import Article, ArticleKind, ArticleState, Content
from services.report.knowledge.domain.ngrams import parse_query
from services.report.knowledge.domain.notices import NewNotice
from services.report.knowledge.domain.redaction import leaks
from services.report.knowledge.service_layer import articles, notices, stories, trends
from services.report.knowledge.service_layer.unit_of_work import KnowledgeUnitOfWork
from services.report.service_layer import cases, reports
from services.report.service_layer.unit_of_work import ReportUnitOfWork
from tests.factories import card

ANALYST = Principal.parse("analyst:a1")
CITIZEN = Principal.parse("citizen:u1")
NOW = datetime.now(UTC).replace(microsecond=0)
RULES = Rules()
CARD = card(random.Random(11))


@pytest.fixture
async def db(db_target: tuple[str, str | None]) -> AsyncIterator[Database]:
    url, schema = db_target
    found = Database("report", url=url, schema=schema)
    await found.migrate(VERSIONS)
    yield found
    await found.dispose()


def tip(
    title: str,
    body: str,
    *categories: FraudCategory,
    region: str = "",
    summary: str = "",
) -> Content:
    return Content(ArticleKind.TIP, title, summary, body, categories, region)


async def write(db: Database, content: Content, at: datetime, *, publish: bool = True) -> Article:
    async with KnowledgeUnitOfWork(db) as uow:
        article = await articles.create(uow, ANALYST, content, at)
        if publish:
            article = await articles.move(uow, ANALYST, article.id, ArticleState.PUBLISHED, at)
        await uow.commit()
    return article


async def search(db: Database, text: str, where: ArticleFilter | None = None) -> list[str]:
    async with db.read() as conn:
        page = await articles.search_page(
            KnowledgeRepository(conn), parse_query(text), where or ArticleFilter(), 50, ""
        )
    return [a.content.title for a in page.articles]


# --- search --------------------------------------------------------------------------------------


async def test_chinese_substrings_find_published_articles_newest_first(db: Database) -> None:
    await write(
        db,
        tip("警惕网络刷单返利", "先垫付后返利的兼职都是诈骗。", FraudCategory.ORDER_BRUSHING),
        NOW - timedelta(hours=2),
    )
    await write(
        db,
        tip("刷单陷阱", "所谓“刷单返利”，第一单返钱，第二单卡单。", FraudCategory.ORDER_BRUSHING),
        NOW - timedelta(hours=1),
    )
    await write(
        db,
        tip("冒充公检法", "没有所谓的安全账户。", FraudCategory.IMPERSONATING_OFFICIALS),
        NOW,
    )
    await write(db, tip("草稿：刷单", "未发布", FraudCategory.ORDER_BRUSHING), NOW, publish=False)

    assert await search(db, "刷单") == ["刷单陷阱", "警惕网络刷单返利"]
    assert await search(db, "单返") == ["刷单陷阱", "警惕网络刷单返利"]  # inside a word
    assert await search(db, "刷单 卡单") == ["刷单陷阱"]  # every term
    assert await search(db, "安全账户") == ["冒充公检法"]
    assert await search(db, "返刷") == []
    assert await search(db, "单返利刷") == []
    assert await search(db, "刷单", ArticleFilter(category=FraudCategory.STOCK_TIPS)) == []


async def test_width_and_case_do_not_matter_and_punctuation_separates_words(
    db: Database,
) -> None:
    await write(db, tip("下载ＡＰＰ领补贴", "是诈骗", FraudCategory.OTHER), NOW)
    await write(db, tip("100%返利", "高收益_稳赚", FraudCategory.STOCK_TIPS), NOW)
    assert await search(db, "app") == ["下载ＡＰＰ领补贴"]
    assert await search(db, "ＡＰＰ领") == ["下载ＡＰＰ领补贴"]
    # "%" and "_" separate words (and are never LIKE wildcards): 00 and 返 are both there.
    assert await search(db, "00%返") == ["100%返利"]
    assert await search(db, "收益_稳赚") == ["100%返利"]
    assert await search(db, "收益稳赚") == []


async def test_the_index_only_narrows_a_term_must_occur_whole(db: Database) -> None:
    await write(db, tip("刷单，单返", "拆开写的词", FraudCategory.ORDER_BRUSHING), NOW)
    # Both bigrams of 刷单返 are indexed for this article; the term itself is not in it.
    assert await search(db, "刷单返") == []
    assert await search(db, "单返") == ["刷单，单返"]


async def test_an_edit_is_found_by_its_new_text_only_and_a_withdrawal_hides_it(
    db: Database,
) -> None:
    article = await write(
        db, tip("旧标题", "虚假客服退款", FraudCategory.FAKE_CUSTOMER_SERVICE), NOW
    )
    async with KnowledgeUnitOfWork(db) as uow:
        await articles.update(
            uow, ANALYST, article.id, tip("新标题", "注销校园贷"), ["title", "body"], NOW
        )
        await uow.commit()
    assert await search(db, "退款") == []
    assert await search(db, "校园贷") == ["新标题"]
    async with KnowledgeUnitOfWork(db) as uow:
        await articles.move(uow, ANALYST, article.id, ArticleState.WITHDRAWN, NOW)
        await uow.commit()
    assert await search(db, "校园贷") == []
    async with db.read() as conn:
        with pytest.raises(NotFound):
            await articles.get(KnowledgeRepository(conn), CITIZEN, article.id)
        seen = await articles.get(KnowledgeRepository(conn), ANALYST, article.id)
    assert seen.state is ArticleState.WITHDRAWN


async def test_lists_filter_by_category_and_region_and_page_newest_first(db: Database) -> None:
    written = []
    for i, region in enumerate(["", "440000", "440300", "440305", "110000", "440300"]):
        category = FraudCategory.PIG_BUTCHERING if i % 2 else FraudCategory.FAKE_SHOPPING
        written.append(
            await write(db, tip(f"第{i}篇", "正文", category, region=region), NOW + timedelta(i))
        )
    in_shenzhen = ArticleFilter(regions=regions.enclosing("440305"))
    async with db.read() as conn:
        repo = KnowledgeRepository(conn)
        titles, token = [], ""
        while True:
            page = await articles.list_page(repo, CITIZEN, in_shenzhen, None, 2, token)
            titles += [a.content.title for a in page.articles]
            token = page.next_page_token
            if not token:
                break
        by_category = await articles.list_page(
            repo,
            CITIZEN,
            ArticleFilter(category=FraudCategory.PIG_BUTCHERING),
            None,
            50,
            "",
        )
    assert titles == ["第5篇", "第3篇", "第2篇", "第1篇", "第0篇"]  # not Beijing's
    assert [a.content.title for a in by_category.articles] == ["第5篇", "第3篇", "第1篇"]


# --- notices -------------------------------------------------------------------------------------


async def test_a_notice_shows_only_within_its_period_and_region(db: Database) -> None:
    async with KnowledgeUnitOfWork(db) as uow:
        for title, region, start, end in [
            ("深圳：劝返通告", "440300", NOW, NOW + timedelta(days=30)),
            ("全国：反诈提醒", "", NOW - timedelta(days=1), NOW + timedelta(hours=1)),
            ("北京：通告", "110000", NOW, NOW + timedelta(days=30)),
            ("深圳：下月起", "440300", NOW + timedelta(days=3), NOW + timedelta(days=9)),
        ]:
            await notices.create(
                uow, ANALYST, NewNotice(title, "正文", "公安局", region, start, end), NOW
            )
        await uow.commit()

    async def shown(region: str, at: datetime) -> list[str]:
        async with db.read() as conn:
            page = await notices.list_valid(KnowledgeRepository(conn), region, at, 50, "")
        return [n.title for n in page.notices]

    assert await shown("440305", NOW) == ["深圳：劝返通告", "全国：反诈提醒"]
    assert await shown("", NOW) == ["全国：反诈提醒"]
    # An hour later the nationwide one has expired; three days later the next one starts.
    assert await shown("440305", NOW + timedelta(hours=1)) == ["深圳：劝返通告"]
    assert await shown("440305", NOW + timedelta(days=3)) == ["深圳：下月起", "深圳：劝返通告"]
    assert await shown("440305", NOW + timedelta(days=31)) == []


# --- case stories -------------------------------------------------------------------------------


async def file_case(db: Database, description: str) -> str:
    async with ReportUnitOfWork(db) as uow:
        case = await cases.file(
            uow,
            Principal.parse("citizen:victim"),
            NewCase(
                description=description,
                category=FraudCategory.FAKE_CUSTOMER_SERVICE,
                amount_lost=Money("CNY", 23_456),
                incident_time=NOW - timedelta(days=1),
                payees=(NewPayee(normalize(IndicatorKind.BANK_ACCOUNT, CARD)),),
                suspects=(normalize(IndicatorKind.PHONE_NUMBER, "17012345678"),),
            ),
            RULES,
            NOW,
        )
        await uow.commit()
    return case.id


async def test_only_a_confirmed_case_becomes_a_story_and_it_names_nothing(db: Database) -> None:
    case_id = await file_case(
        db, f"自称快递客服的刘先生用170-1234-5678联系我，让我转23,456元到{CARD}。"
    )
    async with KnowledgeUnitOfWork(db) as uow:
        with pytest.raises(FailedPrecondition):
            await stories.draft_from_case(uow, ANALYST, case_id, NOW)
    async with ReportUnitOfWork(db) as uow:
        case = await uow.repo.get_case(case_id)
        assert case is not None
        await reports.review(
            uow, ANALYST, case.report_id, ReviewDecision.CONFIRM, "核实", RULES, NOW
        )
        await uow.commit()
    async with KnowledgeUnitOfWork(db) as uow:
        story, _removed = await stories.draft_from_case(uow, ANALYST, case_id, NOW)
        await uow.commit()
    text = "\n".join([story.content.title, story.content.summary, story.content.body])
    assert story.state is ArticleState.DRAFT
    assert story.source_case == case_id
    assert leaks(text, [p.account for p in case.payees] + list(case.suspects)) == []
    for value in ["刘先生", "23,456", "23456", "1234-5678", CARD]:
        assert value not in text


# --- trends --------------------------------------------------------------------------------------


async def confirmed_reports(
    db: Database, plan: list[tuple[FraudCategory, bool]], at: datetime
) -> None:
    async with ReportUnitOfWork(db) as uow:
        for i, (category, confirm) in enumerate(plan):
            report = await reports.submit(
                uow,
                Principal.parse(f"citizen:t{i}"),
                NewReport(
                    kind=ReportKind.FRAUD_CALL,
                    indicators=(normalize(IndicatorKind.PHONE_NUMBER, f"1860000{i:04d}"),),
                    category=category,
                ),
                RULES,
                at,
            )
            decision = ReviewDecision.CONFIRM if confirm else ReviewDecision.REJECT
            await reports.review(uow, ANALYST, report.id, decision, "核实", RULES, at)
        await uow.commit()


async def test_trends_count_the_confirmed_reports_of_the_last_7_days(db: Database) -> None:
    recent = [
        *[(FraudCategory.ORDER_BRUSHING, True)] * 3,
        (FraudCategory.ORDER_BRUSHING, False),
        *[(FraudCategory.STOCK_TIPS, True)] * 2,
        (FraudCategory.UNSPECIFIED, True),
        (FraudCategory.GAME_CURRENCY, False),
    ]
    await confirmed_reports(db, recent, NOW - timedelta(days=1))
    # Just over 7 days ago: outside the window.
    await confirmed_reports(
        db, [(FraudCategory.GAME_CURRENCY, True)] * 5, NOW - timedelta(days=7, minutes=1)
    )
    newest = await write(
        db, tip("刷单新套路", "正文", FraudCategory.ORDER_BRUSHING), NOW - timedelta(hours=1)
    )
    await write(
        db, tip("刷单老套路", "正文", FraudCategory.ORDER_BRUSHING), NOW - timedelta(days=2)
    )

    async with db.read() as conn:
        feed = await trends.trends(KnowledgeRepository(conn), "", 5, NOW)
    expected = Counter(c for c, ok in recent if ok and c is not FraudCategory.UNSPECIFIED)
    assert [(t.category, t.confirmed_reports) for t in feed.trends] == [
        (FraudCategory.ORDER_BRUSHING, expected[FraudCategory.ORDER_BRUSHING]),
        (FraudCategory.STOCK_TIPS, expected[FraudCategory.STOCK_TIPS]),
    ]
    assert feed.trends[0].article is not None
    assert feed.trends[0].article.id == newest.id
    assert feed.trends[1].article is None  # nothing written on stock tips yet
    assert feed.end - feed.start == timedelta(days=7)
