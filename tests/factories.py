"""Test data: indicators of every kind, as citizens and partners would write them."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator

from services.common.indicators import Indicator, IndicatorKind, luhn_valid, normalize

_CN_PREFIXES = ["138", "139", "150", "186", "189", "177", "199", "170"]


def request_id() -> str:
    return str(uuid.uuid4())


def phone(rng: random.Random) -> str:
    return rng.choice(_CN_PREFIXES) + f"{rng.randrange(10**8):08d}"


def card(rng: random.Random) -> str:
    body = rng.choice(["622202", "621700", "622848"]) + f"{rng.randrange(10**12):012d}"
    for check in "0123456789":
        if luhn_valid(body + check):
            return body + check
    raise AssertionError("unreachable")


#: How each kind's i-th raw value is written (``raw_indicator``), given the generator, i and
#: the word made of i; only the chosen kind's draws from the generator.
_RAW: dict[IndicatorKind, Callable[[random.Random, int, str], str]] = {
    IndicatorKind.PHONE_NUMBER: lambda rng, i, word: phone(rng),
    IndicatorKind.SMS_SENDER: lambda rng, i, word: f"10657{rng.randrange(10**7):07d}",
    IndicatorKind.URL: lambda rng, i, word: f"http://{word}.fraud-{i % 97}.example/pay/{i}",
    IndicatorKind.DOMAIN: lambda rng, i, word: f"{word}.scam.example",
    IndicatorKind.IP_ADDRESS: lambda rng, i, word: (
        f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
    ),
    IndicatorKind.BANK_ACCOUNT: lambda rng, i, word: card(rng),
    IndicatorKind.PAYMENT_ACCOUNT: lambda rng, i, word: f"alipay:{word}@mail.example",
    IndicatorKind.QQ_NUMBER: lambda rng, i, word: str(10_000 + i * 7 + rng.randrange(7)),
    IndicatorKind.WECHAT_ID: lambda rng, i, word: f"wx_{word}",
    IndicatorKind.APP: lambda rng, i, word: f"com.fraud.app{i}",
}
_KINDS = tuple(IndicatorKind)


def raw_indicator(rng: random.Random, i: int) -> tuple[IndicatorKind, str]:
    """The i-th value of a data set that cycles through every kind."""
    kind = _KINDS[1 + i % 10]
    return kind, _RAW[kind](rng, i, f"x{i:07d}")


def dataset(n: int, seed: int = 7) -> Iterator[Indicator]:
    """``n`` distinct normalised indicators of all kinds."""
    rng = random.Random(seed)
    seen: set[tuple[IndicatorKind, str]] = set()
    i = 0
    while len(seen) < n:
        kind, raw = raw_indicator(rng, i)
        i += 1
        indicator = normalize(kind, raw)
        if (indicator.kind, indicator.value) in seen:
            continue
        seen.add((indicator.kind, indicator.value))
        yield indicator
