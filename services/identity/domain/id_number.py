"""Resident identity card numbers (居民身份证号码) as GB 11643-1999 defines them.

An ID number is 18 characters: a 6-digit administrative region code (GB/T 2260),
an 8-digit birth date (YYYYMMDD), a 3-digit sequence code (odd for men) and an
ISO 7064 MOD 11-2 check character (0-9 or X). Only this module decides whether
a string is an ID number; the rest of the service works with ``ResidentId``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from services.common import resident_id
from services.common.resident_id import LENGTH, check_character

__all__ = ["LENGTH", "InvalidIdNumber", "ResidentId", "check_character", "parse"]

#: Province-level codes of GB/T 2260 that issue resident ID numbers.
_PROVINCES = frozenset(
    {
        "11", "12", "13", "14", "15",
        "21", "22", "23",
        "31", "32", "33", "34", "35", "36", "37",
        "41", "42", "43", "44", "45", "46",
        "50", "51", "52", "53", "54",
        "61", "62", "63", "64", "65",
    }
)  # fmt: skip
#: Residence permits for Hong Kong, Macao and Taiwan residents use these whole codes.
_PERMIT_REGIONS = frozenset({"810000", "820000", "830000"})

#: The oldest birth year accepted; the GB 11643 test vector 440524188001010014 is from 1880.
MIN_BIRTH_YEAR = 1850


class InvalidIdNumber(ValueError):
    """Not a valid resident ID number; ``reason`` says why, without repeating the value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ResidentId:
    """A checked ID number in canonical form (ASCII, upper-case ``X``)."""

    value: str
    region_code: str
    birth_date: date

    @property
    def last_six(self) -> str:
        """The last six characters, which carriers use with the phone number (一证通查2.0)."""
        return self.value[-6:]

    def __repr__(self) -> str:
        # Never let the full number reach a log line or a traceback through repr().
        return f"ResidentId(region_code={self.region_code!r}, ...)"


def parse(raw: str, *, today: date) -> ResidentId:
    """A checked ``ResidentId`` from user input, or ``InvalidIdNumber``.

    Full-width digits and a lower-case ``x`` are accepted (people type them);
    spaces around and inside are ignored.
    """
    try:
        value = resident_id.canonical(raw)
    except resident_id.InvalidResidentId as exc:
        raise InvalidIdNumber(exc.reason) from None
    region = value[:6]
    if not _plausible_region(region):
        raise InvalidIdNumber("the region code is not a valid administrative region")
    birth = _birth_date(value[6:14])
    if birth > today:
        raise InvalidIdNumber("the birth date is in the future")
    if not resident_id.checksum_valid(value):
        raise InvalidIdNumber("the check character does not match (GB 11643)")
    return ResidentId(value=value, region_code=region, birth_date=birth)


def _plausible_region(region: str) -> bool:
    if region in _PERMIT_REGIONS:
        return True
    # A county-level code: a known province and a prefecture part other than 00.
    return region[:2] in _PROVINCES and region[2:4] != "00"


def _birth_date(digits: str) -> date:
    year, month, day = int(digits[:4]), int(digits[4:6]), int(digits[6:8])
    if year < MIN_BIRTH_YEAR:
        raise InvalidIdNumber(f"the birth year is before {MIN_BIRTH_YEAR}")
    try:
        return date(year, month, day)
    except ValueError:
        raise InvalidIdNumber("the birth date is not a real date") from None
