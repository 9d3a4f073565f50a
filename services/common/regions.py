"""Regions as 6-digit administrative division codes (GB/T 2260): ``PPCCDD``, for every service.

``440305`` (Nanshan district) lies in ``440300`` (Shenzhen) in ``440000``
(Guangdong). What is meant for a city is meant for its districts too, and what is
meant for the whole country (the empty code) for everyone.
"""

from __future__ import annotations

import re

NATIONWIDE = ""

_CODE = re.compile(r"\d{6}")
#: The province-level divisions (provinces, municipalities, autonomous regions, SARs).
PROVINCES = frozenset(
    {"11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37"}
    | {"41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64"}
    | {"65", "71", "81", "82"}
)


def problem(code: str) -> str | None:
    """Why ``code`` is not a region code, or None when it is one."""
    if _CODE.fullmatch(code) is None:
        return "must be a 6-digit administrative division code (GB/T 2260), e.g. 440300"
    if code[:2] not in PROVINCES:
        return "names no province"
    if code[2:4] == "00" and code[4:] != "00":
        return "names a district of no city"
    return None


def enclosing(code: str) -> tuple[str, ...]:
    """The code, the regions that contain it, and the whole country, most specific first."""
    if not code:
        return (NATIONWIDE,)
    found = dict.fromkeys([code, code[:4] + "00", code[:2] + "0000", NATIONWIDE])
    return tuple(found)


def within(code: str, scope: str) -> bool:
    """True when region ``code`` lies in ``scope`` (a province, city or district; the empty
    scope is the whole country). An unknown region (empty code) lies only in the whole
    country."""
    if not scope:
        return True
    return bool(code) and code.startswith(prefix(scope))


def prefix(scope: str) -> str:
    """What every code inside ``scope`` starts with: ``44`` for a province ``440000``,
    ``4403`` for a city ``440300``, the code itself for a district."""
    if scope.endswith("0000"):
        return scope[:2]
    if scope.endswith("00"):
        return scope[:4]
    return scope
