"""Case stories without personal details: every value of the case, in every way it is
written, is gone; names, numbers and links are removed by shape; amounts are rounded."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from services.common.indicators import Indicator, IndicatorKind, normalize
from services.report.domain.model import (
    Case,
    FraudCategory,
    Money,
    Payee,
    StopPaymentStatus,
)
from services.report.knowledge.domain.articles import ArticleKind
from services.report.knowledge.domain.redaction import (
    RedactionKind,
    leaks,
    redact,
    rounded_amount,
)
from services.report.knowledge.domain.stories import case_values, compose
from tests.factories import card, raw_indicator

PHONE = "13912345678"
CARD = card(random.Random(4))
ID_NUMBER = "11010519900307123X"
NAMES = ["王建国", "李秀英", "陈志明", "张伟"]


def spaced(digits: str, group: int, sep: str) -> str:
    return sep.join(digits[i : i + group] for i in range(0, len(digits), group))


DESCRIPTION = (
    f"2026-03-05下午，一个自称王建国警官的人用{spaced(PHONE, 4, '-')}给我打电话，"
    f"说我（我叫李秀英，身份证{ID_NUMBER}）涉嫌洗钱，"
    "让我登录 https://safe-gov.example.cn/check?id=7 核实，"
    "又让我加QQ 88776655 和微信号 police_wang88。对方的陈志明经理让我把128,640.50元"
    f"转到{spaced(CARD, 4, ' ')}，后来又转了3.5万元和¥8640。"
    "小张说他的邮箱是 zhang.wei@mail.example，"
    "还发来网址 pay-check.top/x 。另一个号码 +86 137 0000 1111，座机0755-12345678，"
    "账号 abc123xyz。后来我拨打96110报警。"
)


def the_case() -> Case:
    payee = normalize(IndicatorKind.BANK_ACCOUNT, CARD)
    return Case(
        id="c" * 32,
        filer="citizen:victim-1",
        description=DESCRIPTION,
        category=FraudCategory.IMPERSONATING_OFFICIALS,
        amount_lost=Money("CNY", 128_640, 500_000_000),
        incident_time=datetime(2026, 3, 5, 7, 30, tzinfo=UTC),
        payees=(
            Payee(
                0, payee, Money("CNY", 128_640, 500_000_000), "", StopPaymentStatus.SENT, None, ""
            ),
        ),
        suspects=(
            normalize(IndicatorKind.PHONE_NUMBER, PHONE),
            normalize(IndicatorKind.URL, "https://safe-gov.example.cn/check?id=7"),
            normalize(IndicatorKind.QQ_NUMBER, "88776655"),
            normalize(IndicatorKind.WECHAT_ID, "police_wang88"),
        ),
        report_id="r" * 32,
        create_time=datetime(2026, 3, 5, 9, 0, tzinfo=UTC),
    )


def digit_runs(text: str) -> list[str]:
    """Every number in the text with its spaces and dashes taken out."""
    return [re.sub(r"\D", "", m) for m in re.findall(r"\d(?:[ \-]?\d)*", text)]


def test_a_story_keeps_no_value_of_its_case_in_any_written_form() -> None:
    case = the_case()
    story = compose(case).content
    text = "\n".join([story.title, story.summary, story.body])
    numbers = digit_runs(text)
    for indicator in case_values(case):
        digits = re.sub(r"\D", "", indicator.value)
        if len(digits) >= 5:
            assert not any(digits[-9:] in n for n in numbers), indicator.kind
        assert indicator.value.lower() not in text.lower()
    for value in [
        ID_NUMBER,
        "137 0000 1111",
        "13700001111",
        "0755-12345678",
        "zhang.wei",
        "pay-check.top",
        "abc123xyz",
        "128,640",
        "128640",
        "8640",
        "35000",
        case.id,
        case.report_id,
        case.filer,
        "3月5日",
        "2026-03-05",
        *NAMES,
    ]:
        assert value not in text, value
    # What teaches stays: the category, the rounded loss, the month, the hotline.
    assert story.kind is ArticleKind.CASE_STORY
    assert story.categories == (FraudCategory.IMPERSONATING_OFFICIALS,)
    assert "冒充公检法" in story.title
    assert "约13万元" in story.title
    assert "2026年3月" in story.body
    assert "96110" in story.body
    assert "安全账户" in story.body


def test_the_draft_says_what_it_removed() -> None:
    counts = compose(the_case()).redactions
    assert counts[RedactionKind.NAME] >= 3
    assert counts[RedactionKind.PHONE_NUMBER] == 3  # the suspect, +86 137..., the landline
    assert counts[RedactionKind.ID_NUMBER] == 1
    assert counts[RedactionKind.ACCOUNT_NUMBER] == 1
    assert counts[RedactionKind.URL] == 2
    assert counts[RedactionKind.EMAIL] == 1
    assert counts[RedactionKind.AMOUNT] == 4  # three in the text and the loss
    assert counts[RedactionKind.DATE] == 1


@pytest.mark.parametrize("seed", range(5))
def test_values_of_every_kind_are_removed_as_a_citizen_would_write_them(seed: int) -> None:
    rng = random.Random(seed)
    raws = [raw_indicator(rng, i) for i in range(seed * 10, seed * 10 + 10)]
    known = [normalize(kind, raw) for kind, raw in raws]
    text = "，".join(f"对方给了{raw}让我联系" for _kind, raw in raws)
    redacted = redact(text, known).text
    assert leaks(redacted, known) == []
    for _kind, raw in raws:
        assert raw not in redacted


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("公安局的刘警官说", "公安局的某警官说"),
        ("王建国警官", "某警官"),
        ("我叫李秀英，家住", "我叫某某，家住"),
        ("收款人：赵小龙", "收款人：某某"),
        ("老张说先别急", "老某说先别急"),
        ("小王，你好", "小某，你好"),
        # Not names: ordinary words that only look like a surname and a role.
        ("对方客服马上给经理打电话", "对方客服马上给经理打电话"),
        ("我是学生，老师说", "我是学生，老师说"),
    ],
)
def test_names_are_found_by_how_chinese_introduces_them(text: str, expected: str) -> None:
    assert redact(text).text == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("转了38500元", "转了约3.9万元"),
        ("约5万元", "约5万元"),
        ("¥8640", "约8600元"),
        ("人民币1,234,567.89", "约120万元"),
        ("2024-03-05报警", "2024年3月报警"),
        ("3月5日下午", "3月下午"),
        ("2026年3月15号", "2026年3月"),
        ("拨打96110或95588", "拨打96110或95588"),
        ("编号 20240305123", "编号 【号码】"),
        ("卡号6222 0212 3456 7890 128", "卡号【账号】"),
        ("第3次转账", "第3次转账"),
    ],
)
def test_amounts_are_rounded_and_public_numbers_and_dates_kept(text: str, expected: str) -> None:
    assert redact(text).text == expected


@pytest.mark.parametrize(
    ("yuan", "shown"),
    [
        ("0", "0元"),
        ("38", "约38元"),
        ("8640", "约8600元"),
        ("38500", "约3.9万元"),
        ("99999", "约10万元"),
        ("128640.5", "约13万元"),
        ("1234567", "约120万元"),
    ],
)
def test_amounts_keep_two_significant_figures(yuan: str, shown: str) -> None:
    assert rounded_amount(Decimal(yuan)) == shown


def test_leaks_finds_a_value_however_it_is_spaced() -> None:
    phone = normalize(IndicatorKind.PHONE_NUMBER, PHONE)
    assert leaks(f"号码 {spaced(PHONE, 3, ' ')}", [phone]) == [phone]
    assert leaks(f"号码 +86-{PHONE}", [phone]) == [phone]
    assert leaks("号码 【电话号码】", [phone]) == []
    site = Indicator(IndicatorKind.DOMAIN, "scam.example")
    assert leaks("see WWW.SCAM.EXAMPLE/pay", [site]) == [site]
