"""StreamCheckIndicators answers as bytes (``wire``), without I/O: the bytes are exactly what
the message path gives (``convert.fill_verdict``, then ``SerializeToString``) and parse to
the same verdicts, for listed values (direct, across kinds, by parent domain and by IP
range), unlisted ones, invalid ones, look-alikes of a verified domain, spoofed service
codes, a correlation id, and again after the index changes (a level raised, an expiry
moved, a label changed, an entry retired, an assertion lapsing into a later stage).

Also: a look-up tries only the IP prefix lengths the index lists, and finds the same
listed candidates, in the same order, as trying every one down to /8 (/16 for IPv6); values
kept between messages (normalised, their candidates and look-alike answer) follow the index
as it changes (a new prefix length, a domain verified or no longer, a copy's columns), and
their number is bounded.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.risk.v1 import risk_pb2
from services.common import validation
from services.common.indicators import Indicator, IndicatorKind, InvalidIndicator, normalize
from services.common.validation import MAX_INDICATOR_VALUE, Violations
from services.risk.domain.index import RiskIndex, candidates
from services.risk.domain.model import (
    Assertion,
    FraudCategory,
    RiskLevel,
    SourceType,
    compute_snapshot,
)
from services.risk.entrypoints import convert, wire

K = IndicatorKind
NOW = datetime.now(UTC)


def _assertion(
    level: RiskLevel,
    *,
    source: SourceType = SourceType.ANALYST,
    source_id: str = "analyst-1",
    days: float = 30,
    label: str = "",
    reporters: int = 0,
) -> Assertion:
    return Assertion(
        source,
        source_id,
        level,
        frozenset({FraudCategory.ONLINE_LOAN}) if level else frozenset(),
        "confirmed on review",
        NOW + timedelta(days=days),
        NOW - timedelta(days=1),
        NOW,
        reporters,
        label,
    )


def _put(index: RiskIndex, kind: K, raw: str, *assertions: Assertion) -> None:
    value = normalize(kind, raw).value
    index.put(kind, value, compute_snapshot(list(assertions), NOW))


def _index() -> RiskIndex:
    index = RiskIndex()
    _put(index, K.PHONE_NUMBER, "13800138000", _assertion(RiskLevel.HIGH))
    _put(index, K.SMS_SENDER, "+8613900139000", _assertion(RiskLevel.MEDIUM))
    _put(
        index,
        K.PHONE_NUMBER,
        "96110",
        _assertion(RiskLevel.NONE, source=SourceType.ALLOW_LIST, label="96110 anti-fraud"),
    )
    _put(index, K.DOMAIN, "scam.example", _assertion(RiskLevel.HIGH, reporters=3))
    _put(
        index,
        K.DOMAIN,
        "icbc.com.cn",
        _assertion(RiskLevel.NONE, source=SourceType.ALLOW_LIST, label="ICBC"),
    )
    _put(index, K.IP_ADDRESS, "10.1.2.0/24", _assertion(RiskLevel.LOW))
    _put(index, K.IP_ADDRESS, "10.0.0.0/8", _assertion(RiskLevel.MEDIUM))
    _put(index, K.IP_ADDRESS, "192.0.2.7", _assertion(RiskLevel.HIGH))
    _put(index, K.IP_ADDRESS, "2001:db8::/32", _assertion(RiskLevel.HIGH))
    _put(index, K.URL, "http://pay.example/login/", _assertion(RiskLevel.HIGH))
    _put(index, K.BANK_ACCOUNT, "6222021234567890128", _assertion(RiskLevel.HIGH))
    # High for an hour, then medium: a later stage.
    _put(
        index,
        K.QQ_NUMBER,
        "123456789",
        _assertion(RiskLevel.HIGH, source_id="analyst-2", days=1 / 24),
        _assertion(RiskLevel.MEDIUM),
    )
    return index


REQUESTS = [
    (K.PHONE_NUMBER, "138 0013 8000"),  # listed
    (K.PHONE_NUMBER, "+8613900139000"),  # listed as an SMS sender: matched across kinds
    (K.PHONE_NUMBER, "13012345678"),  # unlisted
    (K.PHONE_NUMBER, "96110"),  # verified, with a label and a note
    (K.PHONE_NUMBER, "+8695588"),  # a spoofed service code
    (K.PHONE_NUMBER, "garbage"),  # invalid
    (0, "13800138000"),  # no kind
    (99, "x"),  # unknown kind
    (K.DOMAIN, "a.b.scam.example"),  # by its parent
    (K.DOMAIN, "icbc.com.cn"),  # verified
    (K.DOMAIN, "icbc-com.cn"),  # unlisted
    (K.DOMAIN, "1cbc.com.cn"),  # a look-alike of a verified domain
    (K.URL, "http://10.1.2.3/x"),  # a URL whose host is in a listed range
    (K.URL, "https://pay.example/login/now?a=1"),  # by its path prefix
    (K.URL, "http://www.icbc.com.cn/"),  # under a verified domain
    (K.IP_ADDRESS, "10.1.2.3"),  # in /24 and /8: the higher level wins
    (K.IP_ADDRESS, "10.9.9.9"),  # in /8 only
    (K.IP_ADDRESS, "192.0.2.7"),
    (K.IP_ADDRESS, "192.0.2.8"),
    (K.IP_ADDRESS, "2001:db8::1"),
    (K.IP_ADDRESS, "::ffff:10.1.2.3"),  # IPv4-mapped, with its note
    (K.BANK_ACCOUNT, "6222 0212 3456 7890 128"),
    (K.QQ_NUMBER, "123456789"),
    (K.QQ_NUMBER, "987654321"),
    (K.WECHAT_ID, "wx_nobody"),
    (K.APP, "com.fraud.app#" + "ab" * 32),
    (K.URL, ""),  # empty
    (K.PHONE_NUMBER, "1" * 5000),  # far too long
]


def _request(correlation_id: str = "batch-7") -> risk_pb2.StreamCheckIndicatorsRequest:
    return risk_pb2.StreamCheckIndicatorsRequest(
        correlation_id=correlation_id,
        indicators=[
            common_pb2.Indicator(kind=int(kind), value=value)  # type: ignore[arg-type]
            for kind, value in REQUESTS
        ],
    )


def _by_messages(
    request: risk_pb2.StreamCheckIndicatorsRequest, index: RiskIndex, now: int
) -> risk_pb2.StreamCheckIndicatorsResponse:
    """The answer as messages, as every other look-up builds its verdicts."""
    response = risk_pb2.StreamCheckIndicatorsResponse(correlation_id=request.correlation_id[:128])
    for item in request.indicators:
        try:
            if not 0 < item.kind < len(IndicatorKind):
                raise InvalidIndicator("unknown indicator kind")
            indicator = normalize(IndicatorKind(item.kind), item.value)
        except InvalidIndicator as exc:
            response.verdicts.add().notes.append(exc.reason)
            continue
        convert.fill_verdict(
            response.verdicts.add(),
            indicator,
            index.lookup(indicator, now),
            index.lookalike(indicator),
        )
    return response


def _same_answer(index: RiskIndex, correlation_id: str = "batch-7", now: int | None = None) -> None:
    """The bytes equal the message path's, asked three times: a value's first sighting, its
    second (kept from then on, its answer with it) and its third (the answer kept)."""
    request = _request(correlation_id)
    at = int(time.time()) if now is None else now
    expected = _by_messages(request, index, at)
    for _ in range(3):
        got = wire.stream_response(request, index, at)
        parsed = risk_pb2.StreamCheckIndicatorsResponse.FromString(got)
        assert parsed == expected
        assert got == expected.SerializeToString()


def test_bytes_are_the_message_path_bytes() -> None:
    index = _index()
    _same_answer(index)
    parsed = risk_pb2.StreamCheckIndicatorsResponse.FromString(
        wire.stream_response(_request(), index)
    )
    levels = [v.level for v in parsed.verdicts]
    assert len(levels) == len(REQUESTS)
    # The cases above are what they say they are.
    high, medium, none, unspecified = RiskLevel.HIGH, RiskLevel.MEDIUM, RiskLevel.NONE, 0
    assert levels[:8] == [high, medium, none, none, medium] + [unspecified] * 3
    assert parsed.verdicts[3].verified
    assert parsed.verdicts[3].verified_label == "96110 anti-fraud"
    assert parsed.verdicts[5].notes == ["not a valid phone number"]
    assert parsed.verdicts[11].lookalike_of == "icbc.com.cn"
    assert parsed.verdicts[12].matched_value == "10.0.0.0/8"
    assert parsed.verdicts[15].level == common_pb2.RISK_LEVEL_MEDIUM
    assert parsed.verdicts[16].matched_value == "10.0.0.0/8"
    assert parsed.verdicts[19].matched_value == "2001:db8::/32"
    assert parsed.verdicts[22].level == common_pb2.RISK_LEVEL_HIGH
    assert parsed.correlation_id == "batch-7"


def test_no_correlation_id_and_a_long_one() -> None:
    index = _index()
    _same_answer(index, "")
    _same_answer(index, "é" * 300)


def test_changes_to_the_index_change_the_bytes() -> None:
    index = _index()
    _same_answer(index)  # explanations kept from here on
    _put(index, K.PHONE_NUMBER, "13800138000", _assertion(RiskLevel.LOW, days=2))  # level, expiry
    _put(index, K.DOMAIN, "scam.example", _assertion(RiskLevel.HIGH, reporters=4))  # reporters
    _put(
        index,
        K.PHONE_NUMBER,
        "96110",
        _assertion(RiskLevel.NONE, source=SourceType.ALLOW_LIST, label="96110 hotline"),
    )
    _put(index, K.IP_ADDRESS, "10.0.0.0/8", _assertion(RiskLevel.NONE))  # retired
    _put(index, K.IP_ADDRESS, "10.1.0.0/16", _assertion(RiskLevel.HIGH))  # a new length
    _same_answer(index)
    parsed = risk_pb2.StreamCheckIndicatorsResponse.FromString(
        wire.stream_response(_request(), index)
    )
    assert parsed.verdicts[0].level == common_pb2.RISK_LEVEL_LOW
    assert parsed.verdicts[3].verified_label == "96110 hotline"
    assert parsed.verdicts[8].sources.distinct_reporters == 0  # an analyst's: no citizens
    assert parsed.verdicts[15].matched_value == "10.1.0.0/16"
    assert parsed.verdicts[16].level == common_pb2.RISK_LEVEL_NONE


def test_a_lapsed_assertion_answers_its_later_stage() -> None:
    index = _index()
    request = _request()
    value = normalize(K.QQ_NUMBER, "123456789")
    later = int(time.time()) + 2 * 3600  # past the hour the high assertion stands
    hit = index.lookup(value, later)
    assert hit is not None
    assert hit.snapshot.level == RiskLevel.MEDIUM
    expected = _by_messages(request, index, later)
    verdict = wire.verdict_bytes(value, hit, None)
    assert risk_pb2.Verdict.FromString(verdict) == expected.verdicts[22]
    assert verdict == expected.verdicts[22].SerializeToString()


@pytest.mark.parametrize(
    "value",
    ["10.1.2.3", "10.1.2.0/24", "10.1.0.0/20", "10.200.1.1", "192.0.2.7", "2001:db8:1::5",
     "2001:db8::/48", "2001:db9::1", "8.8.8.8"],
)  # fmt: skip
def test_ip_lookups_try_only_listed_lengths_and_miss_nothing(value: str) -> None:
    index = _index()
    indicator = normalize(K.IP_ADDRESS, value)
    every = candidates(indicator)
    tried = index.candidates(indicator)
    assert set(tried) <= set(every)
    assert len(tried) <= 4  # the value itself and the lengths listed for its version

    def listed(forms: list[tuple[IndicatorKind, str]]) -> list[tuple[IndicatorKind, str]]:
        return [form for form in forms if index.packed(*form) is not None]

    assert listed(tried) == listed(every)
    # A length no longer listed is no longer tried; a new one is.
    _put(index, K.IP_ADDRESS, "10.0.0.0/8", _assertion(RiskLevel.NONE))
    _put(index, K.IP_ADDRESS, "10.1.0.0/20", _assertion(RiskLevel.LOW))
    assert listed(index.candidates(indicator)) == listed(candidates(indicator))
    assert not any(key.endswith("/8") for _, key in index.candidates(indicator))


def test_a_loaded_index_knows_its_lengths() -> None:
    index = RiskIndex()
    never = 0xFFFFFFFF
    index.load([
        (1, int(K.IP_ADDRESS), "172.16.0.0/12", 3, 0, 0, 0, 0, 0, never, False, "", None),
        (2, int(K.IP_ADDRESS), "198.51.100.0/24", "?", 0, 0, 0, 0, 0, never, False, "", None),
    ])  # fmt: skip
    index.load_listed(K.IP_ADDRESS, ["203.0.113.0/25"], [b"\x02" + bytes(15) + b"\xff" * 4])
    address = normalize(K.IP_ADDRESS, "172.20.1.1")
    # /25 from the copy's columns, /12 from the rows; not /24: that row was not loaded.
    assert [key for _, key in index.candidates(address)] == [
        "172.20.1.1",
        "172.20.1.0/25",
        "172.16.0.0/12",
    ]
    hit = index.lookup(normalize(K.IP_ADDRESS, "203.0.113.9"), int(time.time()))
    assert hit is not None
    assert hit.value == "203.0.113.0/25"


def test_verdict_bytes_of_an_unlisted_value_are_its_indicator_alone() -> None:
    indicator = Indicator(K.PHONE_NUMBER, "+8613012345678")
    expected = risk_pb2.Verdict(
        level=common_pb2.RISK_LEVEL_NONE,
        indicator=common_pb2.Indicator(
            kind=common_pb2.INDICATOR_KIND_PHONE_NUMBER, value=indicator.value
        ),
    )
    assert wire.verdict_bytes(indicator, None, None) == expected.SerializeToString()


def test_kept_values_follow_the_verified_domains() -> None:
    """A value's look-alike answer is kept between messages only while the verified domains
    stay as they were: a domain verified later makes a kept one its look-alike, and one no
    longer verified (retired, or unverified) stops it being one."""
    index = RiskIndex()
    _put(index, K.DOMAIN, "scam.example", _assertion(RiskLevel.HIGH))
    _same_answer(index)  # every value prepared and kept, nothing verified yet
    first = risk_pb2.StreamCheckIndicatorsResponse.FromString(
        wire.stream_response(_request(), index)
    )
    assert first.verdicts[11].lookalike_of == ""  # 1cbc.com.cn: nothing to imitate yet
    _put(
        index,
        K.DOMAIN,
        "icbc.com.cn",
        _assertion(RiskLevel.NONE, source=SourceType.ALLOW_LIST, label="ICBC"),
    )
    _same_answer(index)
    verified = risk_pb2.StreamCheckIndicatorsResponse.FromString(
        wire.stream_response(_request(), index)
    )
    assert verified.verdicts[11].lookalike_of == "icbc.com.cn"
    assert verified.verdicts[9].verified
    _put(index, K.DOMAIN, "icbc.com.cn", _assertion(RiskLevel.LOW))  # listed, no longer verified
    _same_answer(index)
    assert (
        risk_pb2.StreamCheckIndicatorsResponse.FromString(wire.stream_response(_request(), index))
        .verdicts[11]
        .lookalike_of
        == ""
    )


def test_a_local_copys_verified_domains_count_for_kept_values() -> None:
    """Entries loaded as a copy's columns (``load_listed``) change what a kept value imitates
    as entries put one by one do."""
    index = _index()
    _same_answer(index)
    never_verified = wire.stream_response(_request(), index)
    index.load_listed(K.DOMAIN, ["1cbc.com.cn"], [b"\x01\x80" + bytes(14) + b"\xff" * 4])
    _same_answer(index)  # 1cbc.com.cn is now verified itself: the real one, not a look-alike
    assert wire.stream_response(_request(), index) != never_verified


def test_kept_values_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The values kept between messages (from their second sighting) are bounded: when full
    they are let go and prepared again, with the same answers."""
    monkeypatch.setattr(wire, "_PREPARED_MAX", 2)
    monkeypatch.setattr(wire, "_SEEN_MAX", 3)
    monkeypatch.setattr(wire, "_PREPARED", {int(kind): {} for kind in K if kind})
    monkeypatch.setattr(wire, "_SEEN", {int(kind): set() for kind in K if kind})
    index = _index()
    for _ in range(4):
        _same_answer(index)
        assert all(len(kept) <= 2 for kept in wire._PREPARED.values())
        assert all(len(seen) <= 3 for seen in wire._SEEN.values())
    assert any(wire._PREPARED.values())  # some were kept


def test_kept_answers_change_at_the_second_an_entry_lapses_or_changes_stage() -> None:
    """An answer kept with a value stands only until the first second an entry it depends on
    lapses or enters its next stage: asked again at and after that second, the value is looked
    up afresh (expiry exact at read time)."""
    index = _index()
    _put(index, K.PHONE_NUMBER, "13700137000", _assertion(RiskLevel.HIGH, days=1))
    REQUESTS.append((K.PHONE_NUMBER, "13700137000"))
    try:
        start = int(time.time())
        _same_answer(index, now=start)  # kept, answers kept
        high = risk_pb2.StreamCheckIndicatorsResponse.FromString(
            wire.stream_response(_request(), index, start)
        )
        assert high.verdicts[22].level == common_pb2.RISK_LEVEL_HIGH
        assert high.verdicts[-1].level == common_pb2.RISK_LEVEL_HIGH
        # The QQ number's high assertion lapses after an hour: medium from then on.
        lapses = int((NOW + timedelta(hours=1)).timestamp())
        for at in (lapses - 1, lapses, lapses + 1):
            _same_answer(index, now=at)
        later = risk_pb2.StreamCheckIndicatorsResponse.FromString(
            wire.stream_response(_request(), index, lapses + 1)
        )
        assert later.verdicts[22].level == common_pb2.RISK_LEVEL_MEDIUM
        phone = index.lookup(normalize(K.PHONE_NUMBER, "13700137000"), start)
        assert phone is not None
        gone = phone.snapshot.expire
        for at in (gone - 1, gone, gone + 3600):
            _same_answer(index, now=at)
        assert (
            risk_pb2.StreamCheckIndicatorsResponse.FromString(
                wire.stream_response(_request(), index, gone)
            )
            .verdicts[-1]
            .level
            == common_pb2.RISK_LEVEL_NONE
        )
        _same_answer(index, now=start)  # the clock set back: an answer kept later stands not
    finally:
        REQUESTS.pop()


def _mobile_numbers(rng: random.Random, n: int) -> list[str]:
    """``n`` numbers written as a carrier's stream writes them, most in canonical mobile form
    (issued ranges or not), the rest in other forms, valid and not."""
    forms = [
        lambda: f"+86{rng.randrange(13000, 20000)}{rng.randrange(10**6):06d}",  # canonical?
        lambda: f"+86{rng.randrange(10000, 13000)}{rng.randrange(10**6):06d}",  # 10x-12x
        lambda: f"{rng.randrange(13000, 20000)}{rng.randrange(10**6):06d}",  # national
        lambda: f"+86 {rng.randrange(130, 200)} {rng.randrange(10**4):04d} 0{rng.randrange(999)}",
        lambda: f"0086{rng.randrange(13000, 20000)}{rng.randrange(10**6):06d}",
        lambda: f"+86{rng.randrange(1300, 2000)}{rng.randrange(10**6):06d}",  # a digit short
        lambda: f"+86{rng.randrange(13000, 20000)}{rng.randrange(10**7):07d}",  # one too many
        lambda: f"+87{rng.randrange(13000, 20000)}{rng.randrange(10**6):06d}",  # not +86
        lambda: f"+86138{rng.randrange(10**7):07d}".replace("0", "\u0660"),  # Arabic-Indic
        lambda: f"+86138{rng.randrange(10**7):07d}".replace("1", "\uff11"),  # full width
        lambda: f"+86138{rng.randrange(10**6):06d}x1",  # 14 characters, not all digits
        lambda: f"+86138-{rng.randrange(10**7):07d}",  # 14 characters, with a separator
        lambda: rng.choice(["+8695588", "+86 25 96110", "95588", "10690000", "+861065750123"]),
    ]
    weights = [40] + [5] * (len(forms) - 1)
    return [rng.choices(forms, weights)[0]() for _ in range(n)]


def _numbers_request(numbers: list[str]) -> risk_pb2.StreamCheckIndicatorsRequest:
    return risk_pb2.StreamCheckIndicatorsRequest(
        indicators=[
            common_pb2.Indicator(kind=common_pb2.INDICATOR_KIND_PHONE_NUMBER, value=v)
            for v in numbers
        ]
    )


def _fast(numbers: list[str], index: RiskIndex, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The numbers ``stream_response`` answers without the general path (``_answer``)."""
    general: list[str] = []
    answer = wire._answer

    def recorded(kind: int, raw: str, *rest: Any) -> bytes:
        general.append(raw)
        return answer(kind, raw, *rest)

    monkeypatch.setattr(wire, "_answer", recorded)
    monkeypatch.setattr(wire, "_PREPARED", {int(kind): {} for kind in K if kind})
    wire.stream_response(_numbers_request(numbers), index)
    monkeypatch.setattr(wire, "_answer", answer)
    answered = set(general)
    return [number for number in numbers if number not in answered]


def test_the_fast_path_takes_only_canonical_mobile_numbers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every number the unlisted-mobile path takes is one ``normalize`` gives back as it is,
    with no note: tried in every range of five digits, at its ends and in between; and none
    listed as a number or an SMS sender."""
    rng = random.Random(20)
    numbers = [
        f"+86{prefix}{tail}"
        for prefix in range(13000, 20000)
        for tail in ("000000", "999999", *(f"{rng.randrange(10**6):06d}" for _ in range(3)))
    ]
    taken = _fast(numbers, RiskIndex(), monkeypatch)
    assert len(taken) > 20_000  # most ranges are issued ones
    for number in taken:
        assert normalize(K.PHONE_NUMBER, number) == Indicator(K.PHONE_NUMBER, number)
    others = _mobile_numbers(rng, 2_000)
    for number in _fast(others, RiskIndex(), monkeypatch):
        assert normalize(K.PHONE_NUMBER, number) == Indicator(K.PHONE_NUMBER, number)
    index = RiskIndex()
    _put(index, K.PHONE_NUMBER, "+8613800138000", _assertion(RiskLevel.HIGH))
    _put(index, K.SMS_SENDER, "+8613900139000", _assertion(RiskLevel.HIGH))
    assert _fast(["+8613800138000", "+8613900139000", "+8613700137000"], index, monkeypatch) == [
        "+8613700137000"
    ]


def test_the_fast_path_answers_what_the_general_path_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Over many numbers, listed (as numbers, as SMS senders, lapsed, allow-listed) and not,
    valid and not: the same bytes with the unlisted-mobile path and without it, and the
    message path's, asked three times (first sighting, second, kept), and again after the
    index lists some numbers the fast path answered and retires others."""
    rng = random.Random(4)
    numbers = _mobile_numbers(rng, 3_000)
    index = _index()
    canonical = _fast(numbers, RiskIndex(), monkeypatch)
    assert len(canonical) > 500
    for number in canonical[:40]:
        _put(index, K.PHONE_NUMBER, number, _assertion(RiskLevel.HIGH))
    for number in canonical[40:80]:
        _put(index, K.SMS_SENDER, number, _assertion(RiskLevel.MEDIUM, label="bulk"))
    for number in canonical[80:100]:
        _put(index, K.PHONE_NUMBER, number, _assertion(RiskLevel.HIGH, days=-1))  # lapsed
    for number in canonical[100:110]:
        allowed = _assertion(RiskLevel.NONE, source=SourceType.ALLOW_LIST)
        _put(index, K.PHONE_NUMBER, number, allowed)
    request = _numbers_request(numbers)
    now = int(time.time())

    def both_paths() -> None:
        expected = _by_messages(request, index, now).SerializeToString()
        for ranges in (wire._MOBILE_RANGES, frozenset()):
            monkeypatch.setattr(wire, "_MOBILE_RANGES", ranges)
            monkeypatch.setattr(wire, "_PREPARED", {int(kind): {} for kind in K if kind})
            monkeypatch.setattr(wire, "_SEEN", {int(kind): set() for kind in K if kind})
            for _ in range(3):
                assert wire.stream_response(request, index, now) == expected

    both_paths()
    for number in canonical[200:260]:  # answered by the fast path so far: listed now
        _put(index, K.PHONE_NUMBER, number, _assertion(RiskLevel.LOW))
    for number in canonical[:20]:  # retired
        _put(index, K.PHONE_NUMBER, number, _assertion(RiskLevel.NONE))
    both_paths()
    parsed = risk_pb2.StreamCheckIndicatorsResponse.FromString(
        wire.stream_response(request, index, now)
    )
    levels = {v.indicator.value: v.level for v in parsed.verdicts}
    assert levels[canonical[0]] == common_pb2.RISK_LEVEL_NONE
    assert levels[canonical[30]] == common_pb2.RISK_LEVEL_HIGH
    assert levels[canonical[50]] == common_pb2.RISK_LEVEL_MEDIUM
    assert levels[canonical[90]] == common_pb2.RISK_LEVEL_NONE
    assert levels[canonical[210]] == common_pb2.RISK_LEVEL_LOW


def _check_by_messages(kind: int, value: str, index: RiskIndex, now: int) -> bytes | None:
    """CheckIndicator's answer as messages (``validation``, then ``convert``), serialised;
    None when it refuses the value (INVALID_ARGUMENT)."""
    indicator = validation.indicator(Violations(), "indicator", kind, value)
    if indicator is None:
        return None
    verdict = convert.hit_verdict_pb(
        indicator, index.lookup(indicator, now), index.lookalike(indicator)
    )
    return risk_pb2.CheckIndicatorResponse(verdict=verdict).SerializeToString()


def _check_same_answer(values: list[tuple[int, str]], index: RiskIndex, now: int) -> None:
    """``check_response`` gives the message path's bytes, or None where CheckIndicator refuses
    the value or its answer is longer than the longest value stored (the servicer answers
    those as messages), asked three times (first sighting, second, kept)."""
    expected = [_check_by_messages(kind, value, index, now) for kind, value in values]
    for _ in range(3):
        for (kind, value), wanted in zip(values, expected, strict=True):
            request = risk_pb2.CheckIndicatorRequest(
                indicator=common_pb2.Indicator(kind=kind, value=value)  # type: ignore[arg-type]
            )
            got = wire.check_response(request, index, now)
            if wanted is not None and len(wanted) > MAX_INDICATOR_VALUE:
                assert got is None, (kind, value)
            else:
                assert got == wanted, (kind, value)


def test_check_answers_are_the_message_path_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """CheckIndicator's answers written as bytes, for every case of the stream above and many
    numbers as a carrier writes them (the unlisted-mobile path included), before and after
    the index changes: the bytes of the message path, and None exactly where it refuses the
    value (an unknown kind, a value that cannot be normalised or is too long to store)."""
    monkeypatch.setattr(wire, "_PREPARED", {int(kind): {} for kind in K if kind})
    monkeypatch.setattr(wire, "_SEEN", {int(kind): set() for kind in K if kind})
    index = _index()
    now = int(time.time())
    numbers = _mobile_numbers(random.Random(7), 400)
    values = [(int(kind), value) for kind, value in REQUESTS]
    values += [(int(K.PHONE_NUMBER), number) for number in numbers]
    # Values stored at most 2,048 characters long: one of 1,812 (its answer as bytes), one of
    # 2,022 (its answer longer than that: as a message), one within the limit as typed but
    # beyond it once normalised (each character percent-encoded: refused).
    values += [(int(K.URL), "http://example.com/" + "é" * n) for n in (300, 335, 400)]
    _check_same_answer(values, index, now)
    assert wire.check_response(risk_pb2.CheckIndicatorRequest(), index, now) is None
    listed = next(n for n in numbers if _check_by_messages(int(K.PHONE_NUMBER), n, index, now))
    _put(index, K.PHONE_NUMBER, listed, _assertion(RiskLevel.HIGH))
    _put(index, K.PHONE_NUMBER, "13800138000", _assertion(RiskLevel.LOW, days=2))
    _put(index, K.IP_ADDRESS, "10.0.0.0/8", _assertion(RiskLevel.NONE))
    _check_same_answer(values, index, now)
    _check_same_answer(values, index, now + 2 * 3600)  # the QQ number's later stage
