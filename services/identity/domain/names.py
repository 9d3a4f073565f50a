"""Personal names: what is accepted at registration and how a payee name is compared.

A name is kept as typed (after Unicode NFKC and whitespace clean-up) because it
must match the national registry; comparison ignores case, spaces and the
separators people type differently (the middle dot of minority names, hyphens).
"""

from __future__ import annotations

import enum
import unicodedata

MAX_LENGTH = 64

# Separators inside names: the middle dot of minority names (阿沛·阿旺晋美) and its look-alikes.
_NAME_SEPARATORS = frozenset("·•‧・.-'’")


class InvalidName(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NameMatch(enum.IntEnum):
    """How a given name compares with the holder's name; numbers match the proto's PayeeMatch."""

    MATCH = 1
    CLOSE_MATCH = 2
    NO_MATCH = 3


def clean(raw: str) -> str:
    """The name as stored and sent to the registry, or ``InvalidName``."""
    name = " ".join(unicodedata.normalize("NFKC", raw).split())
    if not name:
        raise InvalidName("is required")
    if len(name) > MAX_LENGTH:
        raise InvalidName(f"must be at most {MAX_LENGTH} characters")
    for ch in name:
        if ch == " " or ch in _NAME_SEPARATORS:
            continue
        if not unicodedata.category(ch).startswith("L"):
            raise InvalidName("may contain only letters, spaces and name separators")
    if not any(unicodedata.category(ch).startswith("L") for ch in name):
        raise InvalidName("must contain a letter")
    return name


def _canonical(name: str) -> str:
    folded = unicodedata.normalize("NFKC", name).casefold()
    return "".join(ch for ch in folded if not ch.isspace() and ch not in _NAME_SEPARATORS)


def _one_substitution(given: str, actual: str) -> bool:
    if len(given) != len(actual) or len(actual) < 2:
        return False
    return sum(1 for a, b in zip(given, actual, strict=True) if a != b) == 1


def _middle_character_missing(given: str, actual: str) -> bool:
    if len(actual) < 3 or len(given) != len(actual) - 1:
        return False
    return any(given == actual[:i] + actual[i + 1 :] for i in range(1, len(actual) - 1))


def compare(given: str, actual: str) -> NameMatch:
    """Confirmation of payee for a typed name against the holder's name.

    The same rule as the banks' confirmation of payee, so the answer does not
    depend on whether a bound account or the bank answered: MATCH when equal
    ignoring width, case, spaces and separators; CLOSE_MATCH for one character
    different (a homophone picked from the input method) or one middle character
    left out; NO_MATCH otherwise. A close match shows the masked holder name so
    the payer can decide.
    """
    g, a = _canonical(given), _canonical(actual)
    if not g or not a:
        return NameMatch.NO_MATCH
    if g == a:
        return NameMatch.MATCH
    if _one_substitution(g, a) or _middle_character_missing(g, a):
        return NameMatch.CLOSE_MATCH
    return NameMatch.NO_MATCH
