"""StreamCheckIndicators answers written as protobuf bytes directly, for the hot path of call
screening: the same bytes ``StreamCheckIndicatorsResponse.SerializeToString`` gives for the
verdicts ``convert.fill_verdict`` builds, without building a message per value.

A verdict's fields, in field-number order as protobuf writes them, are three parts:

- ``indicator`` (1): the value, a few bytes put together here;
- the explanation of the listed entry that matched (``level`` 2 to ``matched_value`` 10):
  serialised once per distinct entry and kept, keyed by the entry as stored (level, flags,
  categories, reporters, times, expiry), its label and the value matched. A change to an
  entry (a new level, expiry, reporter, label) is a new key, so a kept explanation is never
  stale; an unlisted value's is its level alone (NONE);
- ``notes`` (11).

Values seen a second time are kept prepared (``_Prepared``, per kind, bounded): the raw
(kind, value) normalised, its indicator and notes fields as bytes, its whole answer when
nothing matches, its look-up candidates and look-alike answer (kept while the index's
``epoch`` / ``looks_epoch`` stand), and its last answer, which stands while the index's
``version`` does and until the first second an entry it depends on lapses or enters its next
stage. Otherwise a value is looked up (``RiskIndex.decide``: a dict probe per candidate,
stages and expiry at this second) and its verdict joined from kept bytes.

A verdict that says more (an official number spoofed with an international prefix, a
look-alike of a verified domain: rare) is built as a message by ``convert`` and serialised.

The common case of a carrier's stream, a number never seen before, written as a Chinese
mobile number in its canonical form (``+861[3-9]`` and nine digits, in a range issued) and
listed neither as a number nor as an SMS sender, takes a shorter path in ``stream_response``:
no normalising, nothing kept, its first eight characters found among the issued ranges
(``_MOBILE_RANGES``), two dict probes of the index and the unlisted verdict's bytes with the
value put in. Its answer is the general path's (``tests/unit/test_risk_stream_wire.py``
compares both over many numbers, listed and not, valid and not).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from google.protobuf.message import Message

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.risk.v1 import risk_pb2
from services.common.indicators import (
    NOTE_SPOOFED_SERVICE_CODE,
    Indicator,
    IndicatorKind,
    InvalidIndicator,
    normalize,
)
from services.common.validation import MAX_INDICATOR_VALUE
from services.risk.domain.index import FOREVER, Hit, Lookalike, RiskIndex, snapshot_of
from services.risk.domain.model import RiskLevel
from services.risk.entrypoints import convert

#: Explanations of listed entries as bytes, keyed as ``convert`` keys its templates.
_EXPLAINED: dict[tuple[bytes, str, str], bytes] = {}
_EXPLAINED_MAX = 50_000
_KINDS = {int(kind): kind for kind in IndicatorKind if kind}
# Tags (field number << 3 | wire type): length-delimited fields and one varint.
_VERDICTS = b"\x0a"  # StreamCheckIndicatorsResponse.verdicts = 1
_CORRELATION = b"\x12"  # StreamCheckIndicatorsResponse.correlation_id = 2
_INDICATOR = b"\x0a"  # Verdict.indicator = 1
_NOTES = b"\x5a"  # Verdict.notes = 11
_KIND = b"\x08"  # Indicator.kind = 1 (varint)
_LEVEL_NONE = b"\x10" + bytes((int(RiskLevel.NONE),))  # Verdict.level = 2 (varint): NONE
_VALUE = b"\x12"  # Indicator.value = 2
#: The varints below 128 (every kind number, most lengths): one byte each.
_SMALL = [bytes((n,)) for n in range(128)]
#: Indicator.kind as written: tag and number.
_KIND_FIELD = {int(kind): _KIND + _SMALL[int(kind)] for kind in IndicatorKind if kind}


def _varint(n: int) -> bytes:
    if n < 128:
        return _SMALL[n]
    out = bytearray()
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _text(tag: bytes, text: str) -> bytes:
    """A string field: tag, length, UTF-8."""
    data = text.encode()
    return tag + _varint(len(data)) + data


def _explained(packed: bytes, label: str, matched: str) -> bytes:
    """Fields 2 to 10 of a listed entry's verdict, serialised once per distinct entry."""
    key = (packed, label, matched)
    found = _EXPLAINED.get(key)
    if found is None:
        if len(_EXPLAINED) >= _EXPLAINED_MAX:
            _EXPLAINED.clear()
        template = risk_pb2.Verdict()
        convert.explain(template, snapshot_of(packed, label), matched)
        found = _EXPLAINED[key] = template.SerializeToString()
    return found


def _head(indicator: Indicator) -> bytes:
    """A verdict's first field: its indicator (kind and value)."""
    value = indicator.value.encode()
    fields = _KIND_FIELD[indicator.kind] + _VALUE + _varint(len(value)) + value
    return _INDICATOR + _varint(len(fields)) + fields


def _tail(indicator: Indicator) -> bytes:
    """A verdict's last fields: the notes normalising found."""
    return b"".join(_text(_NOTES, note) for note in indicator.notes)


def _framed(verdict: bytes) -> bytes:
    """A verdict as an element of ``StreamCheckIndicatorsResponse.verdicts``."""
    return _VERDICTS + _varint(len(verdict)) + verdict


_LOOKALIKE_KINDS = frozenset({IndicatorKind.DOMAIN, IndicatorKind.URL})
#: The epoch of a look-alike answer that never goes stale (a kind that imitates nothing):
#: epochs are numbered from 1.
_ALWAYS = 0

#: A value prepared (``_prepare``), as a plain tuple of numbers, strings and bytes:
#:
#: (normalised value, kind number, head, tail, miss, spoofed, keys, keys epoch, look-alike,
#: look-alike epoch, version, since, until, answer): ``head`` and ``tail`` are the verdict's
#: indicator field and its notes as bytes; ``miss`` the whole verdict, framed, when nothing
#: matches (for a value that cannot be normalised, its answer: the reason in ``notes``, kind
#: 0); ``spoofed`` an official code with an international prefix (the message path); ``keys``
#: its look-up candidates as (kind number, value), computed under the index's ``epoch``; the
#: look-alike answer, for a domain or URL, as of the index's ``looks_epoch``; the last answer
#: (the verdict framed), which stands while the index's ``version`` is ``version`` and the
#: second is from ``since`` (the one it was found at) to before ``until``
#: (``RiskIndex.decide``): no entry it depends on has changed, lapsed or entered its next
#: stage in between.
_Prepared = tuple[
    str,
    int,
    bytes,
    bytes,
    bytes,
    bool,
    tuple[tuple[int, str], ...],
    int,
    Lookalike | None,
    int,
    int,
    int,
    int,
    bytes,
]
#: Prepared values kept, per kind number, by raw value: the hot values of a stream are
#: normalised and their bytes put together once. A value is kept from its second sighting
#: (``_SEEN``: raw values alone, per kind): values seen once (most numbers a carrier screens)
#: leave nothing the garbage collector must walk. Bounded: each emptied when full; values
#: longer than ``_KEPT_LONGEST`` are prepared afresh each time.
_PREPARED: dict[int, dict[str, _Prepared]] = {int(kind): {} for kind in IndicatorKind if kind}
_SEEN: dict[int, set[str]] = {int(kind): set() for kind in IndicatorKind if kind}
#: Kept values per kind: about 0.8 KB each for a phone number and 3.5 KB for a URL with its
#: candidates (normalising's own caches included), so a few tens of MB with every kind full.
_PREPARED_MAX = 4_096
_SEEN_MAX = 16_384
_KEPT_LONGEST = 256


def _is_canonical_mobile(value: str) -> bool:
    """``value`` is a Chinese mobile number as ``normalize`` writes it, with no note."""
    try:
        indicator = normalize(IndicatorKind.PHONE_NUMBER, value)
    except InvalidIndicator:
        return False
    return indicator.value == value and not indicator.notes


def _mobile_ranges() -> frozenset[str]:
    """The first eight characters (``+861[3-9]xxx``: five digits of the national number) of
    the issued mobile ranges in which every number is one ``normalize`` gives back as it is,
    with no note (a mobile number's canonical form). A range counts when its first and its
    last number are (issued ranges are 1[3-9]x, 149, 1610x, 1740[0-5]: five digits decide).
    A range that passes and yet holds a number ``normalize`` refuses or rewrites would make
    the fast path answer for it: the unit tests try every range with numbers between its
    first and last, so a change to the ranges in phonenumbers' metadata that splits a range
    below five digits fails them rather than passing here unseen."""
    return frozenset(
        f"+86{prefix}"
        for prefix in range(13000, 20000)
        if _is_canonical_mobile(f"+86{prefix}000000") and _is_canonical_mobile(f"+86{prefix}999999")
    )


#: ``_mobile_ranges``, computed once.
_MOBILE_RANGES = _mobile_ranges()
_MOBILE_EXAMPLE = "+8613800000000"
#: The framed verdict of an unlisted canonical mobile number, before and after its value:
#: every such number has 14 ASCII characters, so its lengths and tags are the same bytes.
_MOBILE_BEFORE, _MOBILE_AFTER = (
    _framed(_head(Indicator(IndicatorKind.PHONE_NUMBER, _MOBILE_EXAMPLE)) + _LEVEL_NONE)
).split(_MOBILE_EXAMPLE.encode())


def _prepare(kind_number: int, raw: str, index: RiskIndex) -> _Prepared:
    """``raw`` of ``kind_number`` prepared for ``index`` as it is now, kept when seen before."""
    kind = _KINDS.get(kind_number)
    try:
        if kind is None:
            raise InvalidIndicator("unknown indicator kind")
        indicator = normalize(kind, raw)
    except InvalidIndicator as exc:
        miss = _framed(_text(_NOTES, exc.reason))
        prepared: _Prepared = (
            "", 0, b"", b"", miss, False, (), index.epoch, None, _ALWAYS, 0, 0, 0, b"",
        )  # fmt: skip
    else:
        head, tail = _head(indicator), _tail(indicator)
        looks = indicator.kind in _LOOKALIKE_KINDS
        prepared = (
            indicator.value,
            int(indicator.kind),
            head,
            tail,
            _framed(head + _LEVEL_NONE + tail),
            NOTE_SPOOFED_SERVICE_CODE in indicator.notes,
            tuple([(int(k), v) for k, v in index.candidates(indicator)]),
            index.epoch,
            index.lookalike(indicator) if looks else None,
            index.looks_epoch if looks else _ALWAYS,
            0,  # no answer yet
            0,
            0,
            b"",
        )
    seen = _SEEN.get(kind_number)
    if seen is not None and len(raw) <= _KEPT_LONGEST:
        if raw in seen:
            kept = _PREPARED[kind_number]
            if len(kept) >= _PREPARED_MAX:
                kept.clear()
            kept[raw] = prepared
        else:
            if len(seen) >= _SEEN_MAX:
                seen.clear()
            seen.add(raw)
    return prepared


def verdict_bytes(indicator: Indicator, hit: Hit | None, lookalike: Lookalike | None) -> bytes:
    """The serialised Verdict ``convert.fill_verdict`` would write for this look-up."""
    notes = indicator.notes
    if lookalike is not None or (notes and NOTE_SPOOFED_SERVICE_CODE in notes):
        return convert.hit_verdict_pb(indicator, hit, lookalike).SerializeToString()
    if hit is None:
        return _head(indicator) + _LEVEL_NONE + _tail(indicator)
    same = hit.kind is indicator.kind and hit.value == indicator.value
    return (
        _head(indicator)
        + _explained(hit.packed, hit.label, "" if same else hit.value)
        + _tail(indicator)
    )


def _answer(
    kind_number: int, raw: str, prepared: _Prepared | None, index: RiskIndex, now: int
) -> bytes:
    """The framed verdict of a value at ``now``, looked up; kept with the value when it is kept
    (``_Prepared``: the answer, the index's version, the seconds it stands from and until)."""
    if (
        prepared is None
        or prepared[7] != index.epoch
        or prepared[9] not in (_ALWAYS, index.looks_epoch)
    ):
        prepared = _prepare(kind_number, raw, index)  # new, or kept under other epochs
    value, kind, head, tail, miss, spoofed, keys, _, lookalike, *_ = prepared
    until = FOREVER
    if not kind:  # cannot be normalised: its reason
        answer = miss
    else:
        found, until = index.decide(keys, now)
        if lookalike is not None or spoofed:  # rare: the message path
            indicator = normalize(_KINDS[kind], raw)
            hit = None if found is None else Hit(found[0], found[1], _KINDS[found[2]], found[3])
            answer = _framed(verdict_bytes(indicator, hit, lookalike))
        elif found is None:
            answer = miss
        else:
            packed, label, listed_kind, listed = found
            matched = "" if listed_kind == kind and listed == value else listed
            answer = _framed(head + _explained(packed, label, matched) + tail)
    kept = _PREPARED.get(kind_number)
    if kept is not None and raw in kept:
        kept[raw] = (*prepared[:10], index.version, now, until, answer)
    return answer


def stream_response(
    request: risk_pb2.StreamCheckIndicatorsRequest, index: RiskIndex, now: int | None = None
) -> bytes:
    """The serialised StreamCheckIndicatorsResponse for ``request``: one verdict per value
    in request order, every one as of the same second (``now``, this one unless given); a
    value that cannot be normalised answered with its reason in ``notes`` alone; the
    correlation id echoed (at most 128 characters)."""
    parts: list[bytes] = []
    add = parts.append
    _verdicts(request.indicators, index, int(time.time()) if now is None else now, add)
    correlation = request.correlation_id[:128]
    if correlation:
        add(_text(_CORRELATION, correlation))
    return b"".join(parts)


def check_response(
    request: risk_pb2.CheckIndicatorRequest, index: RiskIndex, now: int | None = None
) -> bytes | None:
    """The serialised CheckIndicatorResponse for ``request``, written as a stream's verdict is
    (a CheckIndicatorResponse is its verdict as field 1, as a stream response's verdicts are:
    the same bytes); None when the value is one CheckIndicator refuses (an unknown kind, a
    value that cannot be normalised, or may be longer than can be stored once normalised),
    for the caller to say why as every other method does (``validation.indicator``)."""
    parts: list[bytes] = []
    _verdicts((request.indicator,), index, int(time.time()) if now is None else now, parts.append)
    answer = b"".join(parts)
    if len(answer) > MAX_INDICATOR_VALUE or _notes_alone(answer):
        return None
    return answer


def _notes_alone(framed: bytes) -> bool:
    """A framed verdict that holds only notes: the answer of a value that cannot be
    normalised (every other verdict opens with its indicator)."""
    at = 1
    while framed[at] & 0x80:  # the verdict's length, a varint
        at += 1
    return framed[at + 1 : at + 2] == _NOTES


def _verdicts(
    items: Iterable[common_pb2.Indicator], index: RiskIndex, now: int, add: Callable[[bytes], None]
) -> None:
    """Each value's framed verdict at ``now``, passed to ``add`` in order.

    Per value: the prepared value (``_Prepared``, kept), and its answer kept there while the
    index and the second still give it; otherwise its candidates probed in the index
    (``RiskIndex.decide``) at this second, and the verdict's bytes joined from kept parts."""
    version = index.version
    kept_of = _PREPARED.get
    phones, senders = index.numbers()
    ranges, phone = _MOBILE_RANGES, int(IndicatorKind.PHONE_NUMBER)
    before, after = _MOBILE_BEFORE, _MOBILE_AFTER
    for item in items:
        kind_number, raw = item.kind, item.value
        kept = kept_of(kind_number)
        prepared = None if kept is None else kept.get(raw)
        if prepared is not None:
            if prepared[10] == version and prepared[11] <= now < prepared[12]:
                add(prepared[13])  # the index and the second still give the answer kept
                continue
        elif (
            kind_number == phone
            and len(raw) == 14
            and raw[:8] in ranges
            and (value := raw.encode())[8:].isdigit()  # ASCII digits only, as bytes
            and raw not in phones
            and raw not in senders
        ):  # a canonical mobile number, listed nowhere: the unlisted verdict, value put in
            add(before)
            add(value)
            add(after)
            continue
        add(_answer(kind_number, raw, prepared, index, now))


def serialize_response(response: bytes | Message) -> bytes:
    """The response serializer of CheckIndicator and StreamCheckIndicators: their answers are
    bytes already (a message only where CheckIndicator answers without ``check_response``)."""
    if isinstance(response, bytes):
        return response
    return response.SerializeToString()
