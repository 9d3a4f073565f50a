"""Resident ID numbers (GB 11643-1999): canonical form, ISO 7064 MOD 11-2 check
character, masks. The one implementation, for the identity service and the partner
simulators alike.

This module judges the form only; whether a number is plausible (region code, birth
date) is the identity service's rule (``services/identity/domain/id_number.py``).
The value is never logged: callers log :func:`mask` forms.
"""

from __future__ import annotations

import unicodedata

LENGTH = 18
#: ISO 7064 MOD 11-2 weights: 2^(17-i) mod 11 for the 17 leading digits.
_WEIGHTS = tuple(pow(2, LENGTH - 1 - i, 11) for i in range(LENGTH - 1))
#: The check character for each value of the weighted sum mod 11.
_CHECK = "10X98765432"


class InvalidResidentId(ValueError):
    """Not in the form of an ID number; ``reason`` says why without repeating the value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _compact(raw: str) -> str:
    # Full-width digits and a lower-case x are what people type; both are the same number.
    return "".join(unicodedata.normalize("NFKC", raw).split()).upper()


def _is_tail(ch: str) -> bool:
    return ch == "X" or (ch.isascii() and ch.isdigit())


def canonical(raw: str) -> str:
    """The ID number in canonical form (ASCII, upper-case ``X``); its check character unchecked."""
    value = _compact(raw)
    if len(value) != LENGTH:
        raise InvalidResidentId(f"must be {LENGTH} characters, got {len(value)}")
    if not (value[:-1].isascii() and value[:-1].isdigit()):
        raise InvalidResidentId("the first 17 characters must be digits")
    if not _is_tail(value[-1]):
        raise InvalidResidentId("the last character must be a digit or X")
    return value


def canonical_last_six(raw: str) -> str:
    """The last six characters of an ID number: five digits and a digit or ``X``."""
    value = _compact(raw)
    if len(value) != 6 or not (value[:-1].isascii() and value[:-1].isdigit()):
        raise InvalidResidentId("must be 6 characters: five digits and a digit or X")
    if not _is_tail(value[-1]):
        raise InvalidResidentId("must be 6 characters: five digits and a digit or X")
    return value


def check_character(first17: str) -> str:
    """The check character for 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


def with_check_character(first17: str) -> str:
    """A complete, valid ID number from its 17 leading digits (for seeds and synthetic data)."""
    if len(first17) != LENGTH - 1 or not (first17.isascii() and first17.isdigit()):
        raise InvalidResidentId("needs 17 digits")
    return first17 + check_character(first17)


def checksum_valid(value: str) -> bool:
    """Whether a canonical ID number's check character is right."""
    return len(value) == LENGTH and check_character(value[:-1]) == value[-1]


def mask(value: str) -> str:
    """``110105194912310021`` -> ``110105**********21``: region kept, birth and serial hidden."""
    if len(value) < 8:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 8) + value[-2:]
