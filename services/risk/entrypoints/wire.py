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

A verdict that says more (an official number spoofed with an international prefix, a
look-alike of a verified domain: rare) is built as a message by ``convert`` and serialised.
"""

from __future__ import annotations

import time

from services.api.antifraud.risk.v1 import risk_pb2
from services.common.indicators import (
    NOTE_SPOOFED_SERVICE_CODE,
    Indicator,
    IndicatorKind,
    InvalidIndicator,
    normalize,
)
from services.risk.domain.index import Hit, Lookalike, RiskIndex
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


def _explained(hit: Hit, matched: str) -> bytes:
    """Fields 2 to 10 of a listed entry's verdict, serialised once per distinct entry."""
    key = (hit.packed, hit.label, matched)
    found = _EXPLAINED.get(key)
    if found is None:
        if len(_EXPLAINED) >= _EXPLAINED_MAX:
            _EXPLAINED.clear()
        template = risk_pb2.Verdict()
        convert.explain(template, hit.snapshot, matched)
        found = _EXPLAINED[key] = template.SerializeToString()
    return found


def verdict_bytes(indicator: Indicator, hit: Hit | None, lookalike: Lookalike | None) -> bytes:
    """The serialised Verdict ``convert.fill_verdict`` would write for this look-up."""
    notes = indicator.notes
    if lookalike is not None or (notes and NOTE_SPOOFED_SERVICE_CODE in notes):
        return convert.hit_verdict_pb(indicator, hit, lookalike).SerializeToString()
    value = indicator.value.encode()
    fields = _KIND_FIELD[indicator.kind] + _VALUE + _varint(len(value)) + value
    out = _INDICATOR + _varint(len(fields)) + fields
    if hit is None:
        out += _LEVEL_NONE
    else:
        same = hit.kind is indicator.kind and hit.value == indicator.value
        out += _explained(hit, "" if same else hit.value)
    for note in notes:
        out += _text(_NOTES, note)
    return out


def stream_response(request: risk_pb2.StreamCheckIndicatorsRequest, index: RiskIndex) -> bytes:
    """The serialised StreamCheckIndicatorsResponse for ``request``: one verdict per value
    in request order, every one as of the same second; a value that cannot be normalised
    answered with its reason in ``notes`` alone; the correlation id echoed (at most 128
    characters)."""
    parts: list[bytes] = []
    add = parts.append
    kinds = _KINDS
    now = int(time.time())
    check, lookalike = index.lookup, index.lookalike
    for item in request.indicators:
        kind = kinds.get(item.kind)
        try:
            if kind is None:
                raise InvalidIndicator("unknown indicator kind")
            indicator = normalize(kind, item.value)
        except InvalidIndicator as exc:
            verdict = _text(_NOTES, exc.reason)
        else:
            verdict = verdict_bytes(indicator, check(indicator, now), lookalike(indicator))
        add(_VERDICTS)
        add(_varint(len(verdict)))
        add(verdict)
    correlation = request.correlation_id[:128]
    if correlation:
        add(_text(_CORRELATION, correlation))
    return b"".join(parts)


def serialize_response(response: bytes | risk_pb2.StreamCheckIndicatorsResponse) -> bytes:
    """The response serializer of StreamCheckIndicators: its answers are bytes already."""
    if isinstance(response, bytes):
        return response
    return response.SerializeToString()
