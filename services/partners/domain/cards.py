"""Bank cards: their types, the BIN table the simulators and the directory route by, Luhn.

The table holds enough real-looking BINs (the first six digits, the issuer
identification number) of the three simulated banks to route demo and test data;
it is not an authoritative list of Chinese BINs. A number whose BIN is not here
belongs to no simulated bank unless a bank simulator was seeded with it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from services.common.indicators import luhn_valid


class CardType(enum.IntEnum):
    """Numbers match antifraud.partner.v1.CardType."""

    DEBIT = 1
    CREDIT = 2


@dataclass(frozen=True, slots=True)
class Bin:
    """An issuer prefix: which bank issues cards starting with it, of what type and length."""

    prefix: str
    bank: str
    card_type: CardType
    length: int


_D, _C = CardType.DEBIT, CardType.CREDIT

BINS: tuple[Bin, ...] = (
    # 中国工商银行 (ICBC)
    Bin("622202", "bank-icbc", _D, 19),
    Bin("622208", "bank-icbc", _D, 19),
    Bin("621226", "bank-icbc", _D, 19),
    Bin("621225", "bank-icbc", _D, 19),
    Bin("955880", "bank-icbc", _D, 19),
    Bin("427020", "bank-icbc", _C, 16),
    Bin("427030", "bank-icbc", _C, 16),
    # 中国建设银行 (CCB)
    Bin("621700", "bank-ccb", _D, 19),
    Bin("622700", "bank-ccb", _D, 19),
    Bin("436742", "bank-ccb", _D, 19),
    Bin("622280", "bank-ccb", _D, 19),
    Bin("436728", "bank-ccb", _C, 16),
    Bin("489592", "bank-ccb", _C, 16),
    # 中国农业银行 (ABC)
    Bin("622848", "bank-abc", _D, 19),
    Bin("622845", "bank-abc", _D, 19),
    Bin("955990", "bank-abc", _D, 19),
    Bin("622823", "bank-abc", _D, 19),
    Bin("622836", "bank-abc", _C, 16),
    Bin("625996", "bank-abc", _C, 16),
)

_BY_PREFIX = {b.prefix: b for b in BINS}
_PREFIX_LENGTHS = sorted({len(b.prefix) for b in BINS}, reverse=True)


def bin_of(number: str) -> Bin | None:
    """The BIN entry a card or account number starts with (longest prefix first), or None."""
    for length in _PREFIX_LENGTHS:
        found = _BY_PREFIX.get(number[:length])
        if found is not None:
            return found
    return None


def bins_of(bank: str) -> tuple[Bin, ...]:
    return tuple(b for b in BINS if b.bank == bank)


def luhn_check_digit(partial: str) -> str:
    """The digit that makes ``partial + digit`` pass the Luhn check."""
    for digit in "0123456789":
        if luhn_valid(partial + digit):
            return digit
    raise ValueError("not a digit string")  # unreachable for digit strings


def is_card_number(number: str) -> bool:
    """Card-length (13-19 digits) and Luhn valid: a number a bank could have issued as a card."""
    return 13 <= len(number) <= 19 and luhn_valid(number)
