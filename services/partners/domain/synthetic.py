"""Deterministic default data, so an unseeded simulator answers plausibly (``make run`` demos).

Every value is drawn from SHA-256 of the partner's name and the key asked about, so the
same question gets the same answer in every process and run, and two partners answer
independently. Seeded data always wins over these defaults.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from services.partners.domain.cards import Bin, CardType, luhn_check_digit

T = TypeVar("T")

_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕"
    "丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严"
)
_GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志文辉鹏飞宇浩然欣怡涵轩晨雨婷琪俊"
)
_ACCOUNT_CHARS = "abcdefghijkmnpqrstuvwxyz23456789"
_EPOCH = datetime(2008, 1, 1, 9, 0, tzinfo=UTC)
_SPAN_DAYS = 17 * 365  # activation and registration dates from 2008 to 2024


class Draws:
    """An endless stream of numbers from SHA-256 in counter mode over the seed parts."""

    def __init__(self, *parts: str) -> None:
        self._seed = "\x1f".join(parts).encode()
        self._block = 0
        self._buffer = b""

    def below(self, n: int) -> int:
        """A number from 0 to n - 1 (n >= 1)."""
        if len(self._buffer) < 8:
            self._buffer += hashlib.sha256(self._seed + self._block.to_bytes(4, "big")).digest()
            self._block += 1
        chunk, self._buffer = self._buffer[:8], self._buffer[8:]
        return int.from_bytes(chunk, "big") % n

    def digits(self, count: int) -> str:
        return "".join(str(self.below(10)) for _ in range(count))

    def pick(self, items: Sequence[T]) -> T:
        return items[self.below(len(items))]

    def moment(self) -> datetime:
        return _EPOCH + timedelta(days=self.below(_SPAN_DAYS), minutes=self.below(600))


def person_name(*parts: str) -> str:
    """A plausible Chinese name of two or three characters."""
    draws = Draws("name", *parts)
    given_length = 1 + draws.below(2)
    return draws.pick(_SURNAMES) + "".join(draws.pick(_GIVEN) for _ in range(given_length))


def default_lines(
    carrier: str, id_number: str, prefixes: Sequence[str]
) -> list[tuple[str, datetime]]:
    """0-2 numbers of the carrier registered to an ID: (E.164, activation time)."""
    draws = Draws("lines", carrier, id_number)
    count = draws.below(3) if prefixes else 0
    lines = [("+86" + draws.pick(prefixes) + draws.digits(8), draws.moment()) for _ in range(count)]
    return sorted(lines, key=lambda line: line[1])


def default_linked_accounts(
    carrier: str, phone: str, platforms: Sequence[T]
) -> list[tuple[T, str, datetime]]:
    """0-4 internet accounts on distinct platforms registered with a number."""
    draws = Draws("accounts", carrier, phone)
    remaining = list(platforms)
    found: list[tuple[T, str, datetime]] = []
    for _ in range(min(draws.below(5), len(remaining))):
        platform = remaining.pop(draws.below(len(remaining)))
        name = "".join(draws.pick(_ACCOUNT_CHARS) for _ in range(6 + draws.below(7)))
        found.append((platform, name, draws.moment()))
    return found


def default_cards(bank: str, id_number: str, bins: Sequence[Bin]) -> list[tuple[str, CardType]]:
    """0-2 Luhn-valid cards of the bank held by an ID: (card number, type)."""
    draws = Draws("cards", bank, id_number)
    count = draws.below(3) if bins else 0
    cards: list[tuple[str, CardType]] = []
    for _ in range(count):
        issuer = draws.pick(bins)
        body = issuer.prefix + draws.digits(issuer.length - len(issuer.prefix) - 1)
        cards.append((body + luhn_check_digit(body), issuer.card_type))
    return cards


def holder_name(bank: str, account: str) -> str:
    """The holder's name of an account the bank holds but nobody seeded."""
    return person_name("holder", bank, account)


def face_score(subject_reference: str, token_digest: str, passed: bool) -> float:
    """A similarity score: 0.90-0.9999 for a pass, 0.15-0.45 for a fail."""
    draws = Draws("face", subject_reference, token_digest)
    if passed:
        return round(0.90 + draws.below(1000) / 10_000, 4)
    return round(0.15 + draws.below(3000) / 10_000, 4)
