"""GB 11643 resident ID numbers: checksum, birth date, region, forms people type."""

from __future__ import annotations

from datetime import date

import pytest

from services.identity.domain.id_number import InvalidIdNumber, check_character, parse

TODAY = date(2026, 11, 23)


@pytest.mark.parametrize(
    ("raw", "birth"),
    [
        ("11010519491231002X", date(1949, 12, 31)),  # GB 11643 test vector
        ("440524188001010014", date(1880, 1, 1)),  # GB 11643 test vector
    ],
)
def test_the_standards_test_vectors_are_valid(raw: str, birth: date) -> None:
    resident = parse(raw, today=TODAY)
    assert resident.value == raw
    assert resident.birth_date == birth
    assert resident.region_code == raw[:6]
    assert resident.last_six == raw[-6:]


def test_check_character_is_iso_7064_mod_11_2() -> None:
    assert check_character("11010519491231002") == "X"
    assert check_character("44052418800101001") == "4"


def test_lower_case_x_is_the_same_number() -> None:
    assert parse("11010519491231002x", today=TODAY).value == "11010519491231002X"


def test_full_width_digits_and_spaces_are_accepted() -> None:
    assert parse(" １１０１０５ 19491231002X ", today=TODAY).value == "11010519491231002X"


@pytest.mark.parametrize("wrong", ["0", "1", "9", "5"])
def test_a_wrong_check_character_is_refused(wrong: str) -> None:
    with pytest.raises(InvalidIdNumber, match="check character"):
        parse("11010519491231002" + wrong, today=TODAY)


def test_every_single_digit_change_is_caught() -> None:
    valid = "440524188001010014"
    for position in range(6, 17):  # region and date changes fail their own checks first
        digit = valid[position]
        changed = valid[:position] + str((int(digit) + 1) % 10) + valid[position + 1 :]
        with pytest.raises(InvalidIdNumber):
            parse(changed, today=TODAY)


@pytest.mark.parametrize(
    "first17",
    [
        "11010519490230002",  # 30 February
        "11010519491301002",  # month 13
        "11010519491200002",  # day 0
        "11010518000101002",  # before 1850
    ],
)
def test_a_bad_birth_date_is_refused(first17: str) -> None:
    raw = first17 + check_character(first17)  # a correct check character: only the date is wrong
    with pytest.raises(InvalidIdNumber, match="birth"):
        parse(raw, today=TODAY)


def test_a_birth_date_in_the_future_is_refused() -> None:
    first17 = "11010520261124001"
    with pytest.raises(InvalidIdNumber, match="future"):
        parse(first17 + check_character(first17), today=TODAY)
    # The same number is fine once that day has come.
    assert parse(first17 + check_character(first17), today=date(2026, 11, 24))


@pytest.mark.parametrize("region", ["000000", "990101", "110005"[:2] + "0005", "710101"])
def test_an_implausible_region_is_refused(region: str) -> None:
    first17 = region + "19491231002"
    with pytest.raises(InvalidIdNumber, match="region"):
        parse(first17 + check_character(first17), today=TODAY)


def test_hong_kong_macao_taiwan_residence_permits_are_accepted() -> None:
    for region in ("810000", "820000", "830000"):
        first17 = region + "19900101001"
        assert parse(first17 + check_character(first17), today=TODAY).region_code == region


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "18 characters"),
        ("11010519491231002", "18 characters"),
        ("11010519491231002XX", "18 characters"),
        ("1101051949123100AX", "17 characters must be digits"),
        ("11010519491231002Y", "last character"),
    ],
)
def test_malformed_input_says_why(raw: str, reason: str) -> None:
    with pytest.raises(InvalidIdNumber, match=reason):
        parse(raw, today=TODAY)


def test_the_number_never_shows_in_repr() -> None:
    resident = parse("11010519491231002X", today=TODAY)
    assert "19491231" not in repr(resident)
