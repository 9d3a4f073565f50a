"""Masked forms and personal names: what may be shown, and how payee names compare."""

from __future__ import annotations

import pytest

from services.common.indicators import IndicatorKind, normalize
from services.identity.domain import names
from services.identity.domain.masking import mask_account, mask_id_number, mask_name, mask_phone
from services.identity.domain.names import NameMatch


def test_id_number_keeps_region_and_last_two() -> None:
    assert mask_id_number("11010519491231002X") == "110105**********2X"
    assert mask_id_number("440524188001010014") == "440524**********14"


@pytest.mark.parametrize(
    ("name", "masked"),
    [("张三", "张*"), ("欧阳娜娜", "欧***"), ("张", "张*"), ("阿沛·阿旺晋美", "阿******")],
)
def test_name_keeps_only_the_first_character(name: str, masked: str) -> None:
    assert mask_name(name) == masked


def test_phone_and_card_use_the_shared_display_form() -> None:
    assert mask_phone("+8613800138000") == "+86138****8000"
    card = normalize(IndicatorKind.BANK_ACCOUNT, "6222 0212 3456 1234")
    assert mask_account(card) == "6222********1234"


def test_masked_forms_do_not_contain_the_hidden_digits() -> None:
    masked = mask_id_number("11010519491231002X")
    assert "19491231" not in masked
    assert len(masked) == 18


@pytest.mark.parametrize(
    ("raw", "clean"),
    [("  张三 ", "张三"), ("阿沛·阿旺晋美", "阿沛·阿旺晋美"), ("Ｊｏｈｎ  Smith", "John Smith")],
)
def test_names_are_cleaned(raw: str, clean: str) -> None:
    assert names.clean(raw) == clean


@pytest.mark.parametrize("raw", ["", "   ", "张三1", "<script>", "·", "a" * 65])
def test_names_that_are_not_names_are_refused(raw: str) -> None:
    with pytest.raises(names.InvalidName):
        names.clean(raw)


@pytest.mark.parametrize(
    ("given", "actual", "expected"),
    [
        ("张三", "张三", NameMatch.MATCH),
        ("张 三", "张三", NameMatch.MATCH),
        ("阿沛阿旺晋美", "阿沛·阿旺晋美", NameMatch.MATCH),
        ("JOHN SMITH", "John Smith", NameMatch.MATCH),
        ("张珊", "张三", NameMatch.CLOSE_MATCH),  # a homophone from the input method
        ("张丰", "张三丰", NameMatch.CLOSE_MATCH),  # a middle character left out
        ("三丰", "张三丰", NameMatch.NO_MATCH),  # the first character missing is not a slip
        ("李四", "张三", NameMatch.NO_MATCH),
        ("", "张三", NameMatch.NO_MATCH),
    ],
)
def test_payee_name_comparison(given: str, actual: str, expected: NameMatch) -> None:
    assert names.compare(given, actual) is expected
