"""Fraud knowledge through the gateway only, with every process running as deployed
(see tests/e2e/deployment.py): articles found by Chinese substrings, case stories with
no personal value left, notices that expire, announced police calls that only their
callee can confirm, and a trend feed that counts what the analysts confirmed."""

from __future__ import annotations

import random
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from services.api.antifraud.common.v1 import common_pb2 as c
from services.api.antifraud.gateway.v1 import gateway_pb2 as gw
from services.api.antifraud.report.v1 import knowledge_pb2 as kn
from services.api.antifraud.report.v1 import knowledge_pb2_grpc
from services.api.antifraud.report.v1 import report_pb2 as rp
from tests.e2e.deployment import Citizen, Deployment, eventually, new_phone
from tests.factories import card

pytestmark = pytest.mark.slow

Metadata = tuple[tuple[str, str], ...]


def knowledge(suite: Deployment) -> knowledge_pb2_grpc.KnowledgeServiceStub:
    return knowledge_pb2_grpc.KnowledgeServiceStub(suite.channel)


def stamp(when: datetime) -> Timestamp:
    found = Timestamp()
    found.FromDatetime(when)
    return found


async def publish(suite: Deployment, analyst: Metadata, article: kn.Article) -> kn.Article:
    created = await knowledge(suite).CreateArticle(
        kn.CreateArticleRequest(request_id=str(uuid.uuid4()), article=article), metadata=analyst
    )
    published = await knowledge(suite).PublishArticle(
        kn.PublishArticleRequest(name=created.article.name), metadata=analyst
    )
    return published.article


async def test_an_analyst_publishes_and_a_citizen_finds_it_by_substring_and_category(
    suite: Deployment,
) -> None:
    analyst = await suite.key(gw.ROLE_ANALYST, "analyst-k1")
    citizen = await suite.register()
    newcomer = await suite.key(gw.ROLE_CITIZEN)  # not registered yet: may read all the same
    article = await publish(
        suite,
        analyst,
        kn.Article(
            kind=kn.ARTICLE_KIND_TIP,
            title="警惕“刷单返利”新骗局",
            summary="先垫付、后返利的兼职都是诈骗。",
            body="对方先让你做几单“点赞任务”并返还佣金，随后以“卡单”为由要求垫付大额资金。",
            categories=[c.FRAUD_CATEGORY_ORDER_BRUSHING],
            region="440300",
        ),
    )
    stub = knowledge(suite)
    for who in (citizen.metadata, newcomer):
        for query in ["刷单返", "卡单", "垫付 佣金"]:
            found = await stub.SearchArticles(kn.SearchArticlesRequest(query=query), metadata=who)
            assert [r.article.name for r in found.results] == [article.name], query
            assert found.results[0].article.author == ""  # staff only
        assert query in found.results[0].snippet or "佣金" in found.results[0].snippet
    missing = await stub.SearchArticles(
        kn.SearchArticlesRequest(query="刷单返现"), metadata=citizen.metadata
    )
    assert list(missing.results) == []
    listed = await stub.ListArticles(
        kn.ListArticlesRequest(category=c.FRAUD_CATEGORY_ORDER_BRUSHING, region="440305"),
        metadata=citizen.metadata,
    )
    assert article.name in [a.name for a in listed.articles]
    other = await stub.ListArticles(
        kn.ListArticlesRequest(category=c.FRAUD_CATEGORY_STOCK_TIPS), metadata=citizen.metadata
    )
    assert article.name not in [a.name for a in other.articles]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CreateArticle(
            kn.CreateArticleRequest(request_id=str(uuid.uuid4()), article=article),
            metadata=citizen.metadata,
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


def values_of(message: Message, skip: frozenset[str]) -> Iterator[str]:
    """Every string and number a message holds (but the fields in ``skip``), recursively."""
    for field, value in message.ListFields():
        if field.name in skip or field.enum_type is not None:
            continue
        items = value if field.is_repeated else [value]
        for item in items:
            if isinstance(item, Message):
                if not isinstance(item, Timestamp):
                    yield from values_of(item, skip)
            elif isinstance(item, str) and item:
                yield item
            elif isinstance(item, int) and item >= 1000:
                yield str(item)


def assert_no_value_left(text: str, values: list[str]) -> None:
    """No value in the text, as written or with its digits spaced or dashed differently."""
    numbers = [re.sub(r"\D", "", n) for n in re.findall(r"\d(?:[ \-]?\d)*", text)]
    folded = text.casefold()
    for value in values:
        assert value.casefold() not in folded, value
        digits = re.sub(r"\D", "", value)
        if len(digits) >= 5 and re.fullmatch(r"[+\d \-]+", value):
            national = digits[2:] if value.startswith("+86") else digits
            assert not any(national in n for n in numbers), value


async def test_a_confirmed_case_becomes_a_story_with_no_personal_value_left(
    suite: Deployment,
) -> None:
    analyst = await suite.key(gw.ROLE_ANALYST, "analyst-k2")
    victim = await suite.register()
    payee = card(random.Random())
    fraudster = new_phone()
    local = fraudster.removeprefix("+86")
    description = (
        f"我叫{victim.name}，身份证号{victim.id_number}，手机{victim.phone}。"
        f"3月12日，一个自称王建国警官的人用{local[:3]}-{local[3:7]}-{local[7:]}给我打电话，"
        "说我涉嫌洗钱，让我打开 http://gov-safe.example.cn/verify 登记，"
        f"再把86,420元转到“安全账户”{payee}，又让我加他QQ 29384756。"
    )
    filed = await suite.report.FileCase(
        rp.FileCaseRequest(
            request_id=str(uuid.uuid4()),
            case=rp.Case(
                description=description,
                category=c.FRAUD_CATEGORY_IMPERSONATING_OFFICIALS,
                amount_lost=c.Money(currency_code="CNY", units=86_420),
                incident_time=stamp(datetime.now(UTC) - timedelta(days=2)),
                payees=[
                    rp.Payee(
                        account=c.Indicator(kind=c.INDICATOR_KIND_BANK_ACCOUNT, value=payee),
                        amount=c.Money(currency_code="CNY", units=86_420),
                    )
                ],
                suspect_indicators=[
                    c.Indicator(kind=c.INDICATOR_KIND_PHONE_NUMBER, value=fraudster),
                    c.Indicator(
                        kind=c.INDICATOR_KIND_URL, value="http://gov-safe.example.cn/verify"
                    ),
                    c.Indicator(kind=c.INDICATOR_KIND_QQ_NUMBER, value="29384756"),
                ],
            ),
        ),
        metadata=victim.metadata,
    )
    stub = knowledge(suite)
    draft_request = kn.DraftStoryFromCaseRequest(request_id=str(uuid.uuid4()), case=filed.case.name)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.DraftStoryFromCase(draft_request, metadata=analyst)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # not confirmed yet
    await suite.report.ReviewReport(
        rp.ReviewReportRequest(
            request_id=str(uuid.uuid4()),
            name=filed.case.report,
            decision=rp.REVIEW_DECISION_CONFIRM,
            reason="核实为冒充公检法诈骗",
        ),
        metadata=analyst,
    )
    draft_request.request_id = str(uuid.uuid4())
    drafted = await stub.DraftStoryFromCase(draft_request, metadata=analyst)
    assert drafted.article.state == kn.ARTICLE_STATE_DRAFT
    assert drafted.article.source_case == filed.case.name
    assert {r.kind for r in drafted.redactions} >= {
        kn.REDACTION_KIND_NAME,
        kn.REDACTION_KIND_ID_NUMBER,
        kn.REDACTION_KIND_PHONE_NUMBER,
        kn.REDACTION_KIND_ACCOUNT_NUMBER,
        kn.REDACTION_KIND_URL,
    }
    published = await stub.PublishArticle(
        kn.PublishArticleRequest(name=drafted.article.name), metadata=analyst
    )
    seen = await stub.GetArticle(
        kn.GetArticleRequest(name=published.article.name), metadata=victim.metadata
    )
    case = (
        await suite.report.GetCase(rp.GetCaseRequest(name=filed.case.name), metadata=analyst)
    ).case
    # Every value of the case as stored, and every personal value its description holds.
    values = list(values_of(case, frozenset({"description", "status_detail"})))
    values += [victim.name, victim.id_number, victim.phone, "王建国", "29384756", "86,420"]
    assert {victim.phone, payee, case.filer, case.report} <= set(values)
    story = seen.article
    assert_no_value_left("\n".join([story.title, story.summary, story.body]), values)
    assert story.source_case == ""  # citizens do not learn which case it was
    assert "冒充公检法" in story.title
    assert "约8.6万元" in story.body


async def test_an_expired_notice_is_gone(suite: Deployment) -> None:
    analyst = await suite.key(gw.ROLE_ANALYST, "analyst-k3")
    citizen = await suite.register()
    stub = knowledge(suite)
    now = datetime.now(UTC)
    names = {}
    for title, seconds in [("限时劝返通告", 4), ("全年反诈提醒", 86_400)]:
        created = await stub.CreateNotice(
            kn.CreateNoticeRequest(
                request_id=str(uuid.uuid4()),
                notice=kn.Notice(
                    title=title,
                    body="在境外从事电信网络诈骗的人员限期回国投案自首。",
                    issuer="深圳市公安局",
                    region="440300",
                    end_time=stamp(now + timedelta(seconds=seconds)),
                ),
            ),
            metadata=analyst,
        )
        names[title] = created.notice.name

    async def shown() -> set[str]:
        listed = await stub.ListNotices(
            kn.ListNoticesRequest(region="440305"), metadata=citizen.metadata
        )
        return {n.name for n in listed.notices}

    assert set(names.values()) <= await shown()
    elsewhere = await stub.ListNotices(
        kn.ListNoticesRequest(region="110105"), metadata=citizen.metadata
    )
    assert not set(names.values()) & {n.name for n in elsewhere.notices}

    async def expired() -> bool:
        return names["限时劝返通告"] not in await shown()

    await eventually(expired, timeout=20)
    assert names["全年反诈提醒"] in await shown()


async def test_an_announced_police_call_is_confirmed_to_its_callee_and_unknown_to_others(
    suite: Deployment,
) -> None:
    operator = await suite.key(gw.ROLE_ANALYST, "operator-96110")
    callee, other = await suite.register(), await suite.register()
    stub = knowledge(suite)
    announced = await stub.AnnounceCall(
        kn.AnnounceCallRequest(
            request_id=str(uuid.uuid4()),
            call=kn.AnnouncedCall(
                caller_number="0755-26681234",
                reason="您近期接触过诈骗号码，民警将来电提醒",
                station_name="深圳市公安局反诈中心",
            ),
            callee_phone_number=callee.phone,
            ttl=Duration(seconds=900),
        ),
        metadata=operator,
    )
    assert callee.phone not in str(announced)  # the operator sees it masked
    assert announced.call.masked_callee_phone_number.endswith(callee.phone[-4:])
    # The caller number as the phone shows it, in another format: the same number.
    ask = kn.VerifyIncomingCallRequest(caller_number="+86 755 2668 1234")
    yes = await stub.VerifyIncomingCall(ask, metadata=callee.metadata)
    assert yes.announced
    assert yes.station_name == "深圳市公安局反诈中心"
    assert yes.reason == "您近期接触过诈骗号码，民警将来电提醒"
    no = await stub.VerifyIncomingCall(ask, metadata=other.metadata)
    assert not no.announced
    assert (no.station_name, no.reason) == ("", "")
    assert "96110" in no.advice
    assert "挂断" in no.advice
    unknown = await stub.VerifyIncomingCall(
        kn.VerifyIncomingCallRequest(caller_number="0755-26680000"), metadata=callee.metadata
    )
    assert not unknown.announced
    # A call to a number nobody registered is confirmed to no one.
    await stub.AnnounceCall(
        kn.AnnounceCallRequest(
            request_id=str(uuid.uuid4()),
            call=kn.AnnouncedCall(
                caller_number="96110", reason="劝阻", station_name="96110反诈专线"
            ),
            callee_phone_number=new_phone(),
            ttl=Duration(seconds=900),
        ),
        metadata=operator,
    )
    for who in (callee, other):
        answer = await stub.VerifyIncomingCall(
            kn.VerifyIncomingCallRequest(caller_number="96110"), metadata=who.metadata
        )
        assert not answer.announced
    # Only a registered citizen asks, and only about themselves.
    for refused in (operator, await suite.key(gw.ROLE_CITIZEN)):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.VerifyIncomingCall(ask, metadata=refused)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.AnnounceCall(
            kn.AnnounceCallRequest(request_id=str(uuid.uuid4())), metadata=callee.metadata
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def report(suite: Deployment, who: Citizen, category: int) -> rp.Report:
    submitted = await suite.report.SubmitReport(
        rp.SubmitReportRequest(
            request_id=str(uuid.uuid4()),
            report=rp.Report(
                kind=rp.REPORT_KIND_FRAUD_CALL,
                indicators=[c.Indicator(kind=c.INDICATOR_KIND_PHONE_NUMBER, value=new_phone())],
                category=category,  # type: ignore[arg-type]
            ),
        ),
        metadata=who.metadata,
    )
    return submitted.report


async def test_the_trend_feed_counts_match_the_confirmed_reports(suite: Deployment) -> None:
    analyst = await suite.key(gw.ROLE_ANALYST, "analyst-k4")
    reporter = await suite.register()
    plan = [
        *[(c.FRAUD_CATEGORY_STOCK_TIPS, rp.REVIEW_DECISION_CONFIRM)] * 4,
        *[(c.FRAUD_CATEGORY_GAME_CURRENCY, rp.REVIEW_DECISION_CONFIRM)] * 2,
        (c.FRAUD_CATEGORY_GAME_CURRENCY, rp.REVIEW_DECISION_REJECT),
        (c.FRAUD_CATEGORY_ONLINE_LOAN, rp.REVIEW_DECISION_UNSPECIFIED),  # never reviewed
    ]
    for category, decision in plan:
        made = await report(suite, reporter, category)
        if decision != rp.REVIEW_DECISION_UNSPECIFIED:
            await suite.report.ReviewReport(
                rp.ReviewReportRequest(
                    request_id=str(uuid.uuid4()), name=made.name, decision=decision, reason="核实"
                ),
                metadata=analyst,
            )
    article = await publish(
        suite,
        analyst,
        kn.Article(
            kind=kn.ARTICLE_KIND_TIP,
            title="“荐股群”里没有内幕消息",
            body="所谓导师带你炒股，最后让你在虚假平台充值。",
            categories=[c.FRAUD_CATEGORY_STOCK_TIPS],
        ),
    )
    feed = await knowledge(suite).GetFraudTrends(
        kn.GetFraudTrendsRequest(max_categories=11), metadata=reporter.metadata
    )
    window = feed.window_end_time.ToDatetime(UTC) - feed.window_start_time.ToDatetime(UTC)
    assert window == timedelta(days=7)
    confirmed = await suite.report.ListReports(
        rp.ListReportsRequest(
            statuses=[rp.REPORT_STATUS_CONFIRMED],
            start_time=feed.window_start_time,
            end_time=feed.window_end_time,
            page_size=500,
        ),
        metadata=analyst,
    )
    expected = Counter(r.category for r in confirmed.reports if r.category)
    assert {t.category: t.confirmed_report_count for t in feed.trends} == dict(expected)
    counts = [t.confirmed_report_count for t in feed.trends]
    assert counts == sorted(counts, reverse=True)
    by_category = {t.category: t for t in feed.trends}
    assert by_category[c.FRAUD_CATEGORY_STOCK_TIPS].confirmed_report_count >= 4
    assert by_category[c.FRAUD_CATEGORY_STOCK_TIPS].article.name == article.name
    assert by_category[c.FRAUD_CATEGORY_STOCK_TIPS].article.body == ""  # BASIC view
    assert c.FRAUD_CATEGORY_ONLINE_LOAN not in by_category or (
        by_category[c.FRAUD_CATEGORY_ONLINE_LOAN].confirmed_report_count
        == expected[c.FRAUD_CATEGORY_ONLINE_LOAN]
    )
