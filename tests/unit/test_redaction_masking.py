"""Free text masked on the way in: ID numbers, cards, phone numbers, long numbers and names
introduced by a cue, each in its masked form; what is harmless stays."""

from __future__ import annotations

import random

import pytest

from services.common.indicators import IndicatorKind
from services.common.redaction import mask_identifiers
from tests.factories import card

ID_NUMBER = "11010519491231002X"
CARD = card(random.Random(7))


@pytest.mark.parametrize(
    ("typed", "hidden", "shown"),
    [
        (f"身份证号{ID_NUMBER}", ID_NUMBER, "110105**********2X"),
        (f"身份证号{ID_NUMBER.lower()}", ID_NUMBER.lower(), "110105"),
        (f"卡号{CARD}", CARD, CARD[-4:]),
        (
            f"卡号 {CARD[:4]} {CARD[4:8]} {CARD[8:12]} {CARD[12:]}",
            CARD[4:8] + " " + CARD[8:12],
            CARD[-4:],
        ),
        ("手机13912345678", "13912345678", "+86139****5678"),
        ("手机 139-1234-5678", "1234-5678", "****5678"),
        ("电话+86 139 1234 5678", "139 1234 5678", "****5678"),
        ("对方账户6222020000000000000008888", "6222020000000000000008888", "8888"),
        ("我叫王芳，", "王芳", "我叫王*"),
        ("自称李明警官", "李明", "李*警官"),
    ],
)
def test_identifiers_are_masked(typed: str, hidden: str, shown: str) -> None:
    masked = mask_identifiers(typed).text
    assert hidden not in masked
    assert shown in masked


@pytest.mark.parametrize(
    "kept",
    [
        "转了5000元，约1.3万元",
        "请拨打96110或12381",
        "2026年3月5日晚上8点",
        "王警官说不要挂电话",  # a surname alone names nobody
        "",
    ],
)
def test_harmless_text_is_left_alone(kept: str) -> None:
    assert mask_identifiers(kept).text == kept


def test_what_was_found_comes_back_normalised() -> None:
    found = mask_identifiers(f"我的身份证{ID_NUMBER}，卡{CARD}，电话13912345678，又是13912345678")
    assert found.id_numbers == (ID_NUMBER,)
    assert [(i.kind, i.value) for i in found.indicators] == [
        (IndicatorKind.BANK_ACCOUNT, CARD),
        (IndicatorKind.PHONE_NUMBER, "+8613912345678"),
    ]
