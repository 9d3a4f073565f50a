"""Fraud knowledge rules without I/O: regions, article moves, notices, calls, trends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.common import regions
from services.common.errors import PermissionDenied
from services.common.principals import Principal
from services.report.domain.model import FraudCategory
from services.report.knowledge.domain import access
from services.report.knowledge.domain.articles import (
    ArticleKind,
    ArticleState,
    Content,
    Transition,
    revise,
    snippet,
    transition,
)
from services.report.knowledge.domain.calls import (
    NOT_ANNOUNCED_ADVICE,
    AnnouncedCall,
    CallCheck,
)
from services.report.knowledge.domain.notices import period_problems
from services.report.knowledge.domain.trends import ranked

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("440305", ("440305", "440300", "440000", "")),
        ("440300", ("440300", "440000", "")),
        ("110000", ("110000", "")),
        ("", ("",)),
    ],
)
def test_a_region_lies_in_its_city_its_province_and_the_country(
    code: str, expected: tuple[str, ...]
) -> None:
    assert regions.enclosing(code) == expected


@pytest.mark.parametrize("code", ["44030", "4403051", "abcdef", "990000", "440012", "000000"])
def test_codes_that_name_no_region_are_refused(code: str) -> None:
    assert regions.problem(code) is not None


@pytest.mark.parametrize(
    ("current", "target", "step"),
    [
        (ArticleState.DRAFT, ArticleState.PUBLISHED, Transition.APPLY),
        (ArticleState.WITHDRAWN, ArticleState.PUBLISHED, Transition.APPLY),
        (ArticleState.PUBLISHED, ArticleState.PUBLISHED, Transition.NOTHING),
        (ArticleState.PUBLISHED, ArticleState.WITHDRAWN, Transition.APPLY),
        (ArticleState.WITHDRAWN, ArticleState.WITHDRAWN, Transition.NOTHING),
        (ArticleState.DRAFT, ArticleState.WITHDRAWN, Transition.REFUSE),
    ],
)
def test_articles_move_draft_published_withdrawn_and_back(
    current: ArticleState, target: ArticleState, step: Transition
) -> None:
    assert transition(current, target) is step


CONTENT = Content(
    kind=ArticleKind.TIP,
    title="警惕刷单返利",
    summary="先垫付、后返利的兼职都是诈骗。",
    body="对方先让你做几单小任务并返还佣金，随后以卡单为由要求垫付大额资金。" * 3,
    categories=(FraudCategory.ORDER_BRUSHING,),
    region="",
)


def test_an_edit_changes_only_the_fields_it_names() -> None:
    given = Content(ArticleKind.SCRIPT, "新标题", "", "", (), "440300")
    revised = revise(CONTENT, given, ["title", "region"])
    assert (revised.title, revised.region) == ("新标题", "440300")
    assert (revised.kind, revised.body, revised.categories) == (
        CONTENT.kind,
        CONTENT.body,
        CONTENT.categories,
    )


def test_a_snippet_shows_the_text_around_the_first_match() -> None:
    found = snippet(CONTENT, ["卡单"], width=20)
    assert "卡单" in found
    assert len(found) <= 20
    assert snippet(CONTENT, ["不在文中"], width=10) == CONTENT.summary[:10]


def test_a_notice_period_ends_after_it_starts_in_the_future_within_a_year() -> None:
    assert period_problems(NOW, NOW + timedelta(days=30), NOW) == []
    assert period_problems(NOW - timedelta(days=1), NOW + timedelta(hours=1), NOW) == []
    assert [f for f, _ in period_problems(NOW, NOW, NOW)] == ["notice.end_time"] * 2
    assert period_problems(NOW, NOW + timedelta(days=400), NOW)
    assert period_problems(NOW - timedelta(days=3), NOW - timedelta(days=1), NOW)


def test_the_callee_is_always_the_asking_citizen() -> None:
    assert access.callee_of(Principal.parse("citizen:u-17")) == "u-17"
    for raw in ["citizen:", "analyst:a1", "carrier:cmcc", "bank:icbc", ""]:
        with pytest.raises(PermissionDenied):
            access.callee_of(Principal.parse(raw))


def test_an_unannounced_call_gets_the_advice_to_hang_up_and_call_96110() -> None:
    unknown = CallCheck(None)
    assert not unknown.announced
    assert unknown.advice == NOT_ANNOUNCED_ADVICE
    assert "96110" in unknown.advice
    assert "挂断" in unknown.advice
    call = AnnouncedCall(
        "x", "96110", "+86139****5678", "您近期接触过诈骗号码", "深圳市反诈中心", "analyst:a1", NOW,
        NOW + timedelta(hours=1),
    )  # fmt: skip
    known = CallCheck(call)
    assert known.announced
    assert "深圳市反诈中心" in known.advice


def test_citizens_list_published_articles_only() -> None:
    citizen, analyst = Principal.parse("citizen:u1"), Principal.parse("analyst:a1")
    assert access.visible_states(citizen, None) == (ArticleState.PUBLISHED,)
    assert access.visible_states(analyst, None) == ()
    assert access.visible_states(analyst, ArticleState.DRAFT) == (ArticleState.DRAFT,)
    with pytest.raises(PermissionDenied):
        access.visible_states(citizen, ArticleState.DRAFT)


def test_trends_rank_by_count_then_category_and_skip_empty_and_unknown() -> None:
    counts = {
        FraudCategory.STOCK_TIPS: 4,
        FraudCategory.ONLINE_LOAN: 4,
        FraudCategory.FAKE_SHOPPING: 9,
        FraudCategory.UNSPECIFIED: 50,
        FraudCategory.GAME_CURRENCY: 0,
    }
    assert ranked(counts, 5) == [
        (FraudCategory.FAKE_SHOPPING, 9),
        (FraudCategory.ONLINE_LOAN, 4),
        (FraudCategory.STOCK_TIPS, 4),
    ]
    assert ranked(counts, 1) == [(FraudCategory.FAKE_SHOPPING, 9)]
