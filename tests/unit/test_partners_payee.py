"""Confirmation of payee: the MATCH / CLOSE_MATCH / NO_MATCH rule."""

from __future__ import annotations

import pytest

from services.partners.domain.payee import PayeeNameMatch, compare_payee_name

MATCH, CLOSE, NO = PayeeNameMatch.MATCH, PayeeNameMatch.CLOSE_MATCH, PayeeNameMatch.NO_MATCH


@pytest.mark.parametrize(
    ("typed", "holder", "expected"),
    [
        # The same name, however it was typed.
        ("张三丰", "张三丰", MATCH),
        (" 张 三丰 ", "张三丰", MATCH),
        ("阿卜杜热合曼", "阿卜杜·热合曼", MATCH),
        ("john smith", "JOHN SMITH", MATCH),
        ("ＪＯＨＮ", "john", MATCH),
        # One character differs (a homophone from the input method).
        ("张三风", "张三丰", CLOSE),
        ("王方", "王芳", CLOSE),
        # A different surname is another person, never close (see tests/unit/test_names.py).
        ("李芳", "王芳", NO),
        ("jon smith", "john smith", CLOSE),  # the comparison form has no spaces
        ("john smyth", "john smith", CLOSE),
        # A middle character missing.
        ("欧阳娜", "欧阳娜娜", CLOSE),
        ("欧娜娜", "欧阳娜娜", NO),  # 欧 is not 欧阳
        ("张丰", "张三丰", CLOSE),
        # Missing the first or the last character is not close: it is another name.
        ("三丰", "张三丰", NO),
        ("张三", "张三丰", NO),
        # Two differences, an extra character, a different name altogether.
        ("张四风", "张三丰", NO),
        ("张三丰丰", "张三丰", NO),
        ("李四", "张三丰", NO),
        ("张", "李", NO),
        ("", "张三丰", NO),
    ],
)
def test_payee_name_rule(typed: str, holder: str, expected: PayeeNameMatch) -> None:
    assert compare_payee_name(typed, holder) is expected


def test_two_missing_middle_characters_are_no_match() -> None:
    assert compare_payee_name("欧娜", "欧阳娜娜") is NO
