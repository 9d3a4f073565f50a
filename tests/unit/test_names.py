"""The shared name rule (services/common/names.py) of confirmation of payee, used by the
identity service and the bank simulators alike. Each case says why it answers as it does."""

from __future__ import annotations

import pytest

from services.common.names import NameMatch, compare, split_han_name

MATCH, CLOSE, NO = NameMatch.MATCH, NameMatch.CLOSE_MATCH, NameMatch.NO_MATCH


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("王芳", ("王", "芳")),
        ("欧阳娜娜", ("欧阳", "娜娜")),
        ("司马光", ("司马", "光")),
        ("诸葛亮", ("诸葛", "亮")),
        ("上官婉儿", ("上官", "婉儿")),
        # Two characters are a surname and a given name even when they spell a compound one.
        ("欧阳", ("欧", "阳")),
        # 马 alone is a surname; 司马 only at the start.
        ("马司光", ("马", "司光")),
        # Not a Han name of two characters or more: no split.
        ("johnsmith", None),
        ("王", None),
    ],
)
def test_a_han_name_splits_into_surname_and_given_name(
    name: str, parts: tuple[str, str] | None
) -> None:
    assert split_han_name(name) == parts


CASES: list[tuple[str, str, NameMatch, str]] = [
    # typed, holder, expected, why
    ("王芳", "王芳", MATCH, "the same name"),
    (" 王 芳 ", "王芳", MATCH, "spaces are not part of a name"),
    ("阿卜杜热合曼", "阿卜杜·热合曼", MATCH, "the separator of a minority name is optional"),
    ("ＪＯＨＮ ＳＭＩＴＨ", "john smith", MATCH, "width and case do not matter"),
    ("李芳", "王芳", NO, "a different surname is another person, however close the rest"),
    ("王阳娜娜", "欧阳娜娜", NO, "王阳 is not the compound surname 欧阳"),
    ("欧娜娜", "欧阳娜娜", NO, "欧 is a surname of its own, not 欧阳 with a slip"),
    ("司马光", "马光", NO, "司马 and 马 are different surnames"),
    ("马光", "司马光", NO, "司马 and 马 are different surnames (either way round)"),
    ("诸葛明", "诸葛亮", CLOSE, "the same compound surname; one character of the given name"),
    ("欧阳娜", "欧阳娜娜", CLOSE, "the same compound surname; a repeated character left out"),
    ("王方", "王芳", CLOSE, "a homophone from the input method in the given name"),
    ("张三风", "张三丰", CLOSE, "one character of a two-character given name"),
    ("张丰", "张三丰", CLOSE, "the given name's first character left out"),
    ("张三", "张三丰", NO, "missing the last character is another, shorter name"),
    ("三丰", "张三丰", NO, "no surname is not the holder's surname"),
    ("张四风", "张三丰", NO, "two characters of the given name differ"),
    ("张三丰丰", "张三丰", NO, "an extra character is not a slip this rule forgives"),
    ("王", "王芳", NO, "a surname alone names no one"),
    ("", "王芳", NO, "no name"),
    ("jon smith", "john smith", CLOSE, "a Latin name with one letter left out in the middle"),
    ("john smyth", "john smith", CLOSE, "a Latin name with one letter different"),
    ("bohn smith", "john smith", NO, "a Latin name's first letter is kept exact"),
]


@pytest.mark.parametrize(("typed", "holder", "expected", "why"), CASES, ids=[c[3] for c in CASES])
def test_confirmation_of_payee(typed: str, holder: str, expected: NameMatch, why: str) -> None:
    assert compare(typed, holder) is expected, why
