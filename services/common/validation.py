"""Checks on request fields, turned into INVALID_ARGUMENT with the field and the reason.

A servicer converts a request into domain values with these helpers; a
``Violations`` collects every problem of one request so the caller sees them
all at once.

The limits are what the suite can store and compute with, checked at the edge so
that no value gets as far as a column, an index or an arithmetic it does not fit:

- times (``time_of``): 1970-01-01T00:00:00Z to 2099-12-31T23:59:59Z. The risk index
  packs epoch seconds into 32 unsigned bits (it ends at 2106-02-07), and lifetimes
  and windows are added to stored times; the years in between are that headroom.
- durations (``duration_of``): within the bounds each field names, checked on the
  protobuf's seconds before any ``timedelta`` is made (``timedelta`` overflows at
  about 2.7 million years; a Duration may hold 10,000 years, a raw int64 more).
- integers (``integer``): within the bounds the caller names; a count or a size
  must also fit the column it goes to (``INT32_MAX`` for an ``Integer``).
- indicator values (``indicator``): at most ``MAX_INDICATOR_VALUE`` characters once
  normalised, the shortest column any service stores one in (a URL's canonical
  form is longer than what was typed: every non-ASCII byte becomes ``%XX``).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.errors import FieldViolation, InvalidArgument
from services.common.indicators import Indicator, IndicatorKind, InvalidIndicator, normalize

E = TypeVar("E", bound=enum.IntEnum)

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50

#: The earliest and (exclusive) latest time a request may carry; see the module's docstring.
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
END_OF_TIME = datetime(2100, 1, 1, tzinfo=UTC)
#: The longest normalised indicator value: ``warnings.indicator_value`` is VARCHAR(2048),
#: the risk tables' ``value`` VARCHAR(2100), the report tables' TEXT.
MAX_INDICATOR_VALUE = 2048
#: What a SQL ``Integer`` column holds (32-bit signed on PostgreSQL).
INT32_MAX = 2**31 - 1
#: 10^13 yuan is more than any loss or order; a larger amount is a typo or an attack on
#: our arithmetic (and far inside the BIGINT that stores it).
MAX_MONEY_UNITS = 10**13
#: google.protobuf.Duration's own range: about 10,000 years.
_DURATION_MAX_SECONDS = 315_576_000_000
_NANOS = 10**9


class Violations:
    """Collects field violations; ``raise_if_any`` raises them as one INVALID_ARGUMENT."""

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.items.append(FieldViolation(field, description))

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(self.items)


#: Partner-facing references: at most this long, at most this many per request.
MAX_REFERENCE = 64
MAX_REFERENCES = 20


@contextmanager
def collecting() -> Iterator[Violations]:
    found = Violations()
    yield found
    found.raise_if_any()


def text(
    v: Violations,
    field: str,
    value: str,
    *,
    max_len: int,
    required: bool = False,
    multiline: bool = False,
) -> str:
    """A clean string: no NUL or control characters (newlines if multiline), within a length."""
    value = value.strip()
    if required and not value:
        v.add(field, "is required")
        return value
    if len(value) > max_len:
        v.add(field, f"must be at most {max_len} characters, got {len(value)}")
        return value[:max_len]
    allowed = {"\n", "\t", "\r"} if multiline else set()
    if any((ord(c) < 0x20 and c not in allowed) or ord(c) == 0x7F for c in value):
        v.add(field, "must not contain control characters")
    return value


def reference(v: Violations, field: str, value: str, *, required: bool = False) -> str:
    """A partner-facing reference (a transaction serial, a legal instrument number): 1-64
    printable ASCII characters, no spaces."""
    if not value:
        if required:
            v.add(field, "is required")
        return value
    if len(value) > MAX_REFERENCE or not all(0x21 <= ord(c) <= 0x7E for c in value):
        v.add(field, f"must be 1-{MAX_REFERENCE} printable ASCII characters without spaces")
    return value


def references(v: Violations, field: str, values: Sequence[str]) -> tuple[str, ...]:
    """Up to MAX_REFERENCES references, each as ``reference``; repeats kept once."""
    if len(values) > MAX_REFERENCES:
        v.add(field, f"at most {MAX_REFERENCES} references, got {len(values)}")
        return ()
    for i, value in enumerate(values):
        reference(v, f"{field}[{i}]", value, required=True)
    return tuple(dict.fromkeys(values))


def request_id(v: Violations, value: str, *, field: str = "request_id") -> str:
    """AIP-155: a UUID in its 36-character form."""
    if not value:
        v.add(field, "is required (a UUID)")
        return value
    try:
        if len(value) != 36:
            raise ValueError
        return str(uuid.UUID(value))
    except ValueError:
        v.add(field, "must be a UUID in its 36-character form")
        return value


def enum_value(
    v: Violations, field: str, value: int, enum_type: type[E], *, required: bool = True
) -> E | None:
    """An enum member; UNSPECIFIED (0) is missing, an unknown number is invalid."""
    if value == 0:
        if required:
            v.add(field, "is required")
        return None
    try:
        return enum_type(value)
    except ValueError:
        v.add(field, f"unknown value {value}")
        return None


def indicator(v: Violations, field: str, kind: int, value: str) -> Indicator | None:
    """A normalised indicator, or a violation naming the field and why."""
    kind_enum = enum_value(v, f"{field}.kind", kind, IndicatorKind)
    if kind_enum is None:
        return None
    try:
        found = normalize(kind_enum, value)
    except InvalidIndicator as exc:
        v.add(f"{field}.value", exc.reason)
        return None
    if len(found.value) > MAX_INDICATOR_VALUE:
        v.add(
            f"{field}.value",
            f"is {len(found.value)} characters once normalised; "
            f"at most {MAX_INDICATOR_VALUE} can be stored",
        )
        return None
    return found


def page_size(v: Violations, value: int, *, field: str = "page_size") -> int:
    if value < 0:
        v.add(field, "must not be negative")
        return DEFAULT_PAGE_SIZE
    if value == 0:
        return DEFAULT_PAGE_SIZE
    return min(value, MAX_PAGE_SIZE)


def non_negative(v: Violations, field: str, value: int) -> int:
    if value < 0:
        v.add(field, "must not be negative")
    return value


def integer(v: Violations, field: str, value: int, *, minimum: int, maximum: int) -> int:
    """An integer within ``minimum``..``maximum``; else a violation, and the nearest bound."""
    if not minimum <= value <= maximum:
        v.add(field, f"must be from {minimum} to {maximum}, got {value}")
        return min(max(value, minimum), maximum)
    return value


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


_EARLIEST_SECONDS = int(EARLIEST_TIME.timestamp())
_END_SECONDS = int(END_OF_TIME.timestamp())
_TIME_RANGE = f"{_iso(EARLIEST_TIME)} to {_iso(END_OF_TIME - timedelta(seconds=1))}"


def time_of(v: Violations, field: str, stamp: Timestamp) -> datetime | None:
    """A Timestamp as an aware datetime within ``EARLIEST_TIME``..``END_OF_TIME``."""
    if not 0 <= stamp.nanos < _NANOS:
        v.add(f"{field}.nanos", "must be from 0 to 999,999,999")
        return None
    if not _EARLIEST_SECONDS <= stamp.seconds < _END_SECONDS:
        v.add(field, f"must be from {_TIME_RANGE}")
        return None
    return stamp.ToDatetime(tzinfo=UTC)


def optional_time(
    v: Violations, field: str, stamp: Timestamp, present: bool, *, required: bool = False
) -> datetime | None:
    """``time_of`` for a message field that may be absent (None then, or "is required")."""
    if not present:
        if required:
            v.add(field, "is required")
        return None
    return time_of(v, field, stamp)


def duration_of(
    v: Violations, field: str, given: Duration, *, minimum: timedelta, maximum: timedelta
) -> timedelta | None:
    """A Duration within ``minimum``..``maximum``, checked before it becomes a timedelta."""
    seconds, nanos = given.seconds, given.nanos
    if not -_NANOS < nanos < _NANOS or (seconds > 0 > nanos) or (seconds < 0 < nanos):
        v.add(f"{field}.nanos", "must be within one second and have the sign of seconds")
        return None
    words = f"must be from {_words(minimum)} to {_words(maximum)}"
    # Whole seconds first: they are compared as integers, so no value can overflow.
    if not -_DURATION_MAX_SECONDS <= seconds <= _DURATION_MAX_SECONDS:
        v.add(field, words)
        return None
    value = timedelta(seconds=seconds, microseconds=nanos // 1000)
    if not minimum <= value <= maximum:
        v.add(field, words)
        return None
    return value


def _words(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("days", 86_400), ("hours", 3_600), ("minutes", 60)):
        if seconds and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit[:-1] if count == 1 else unit}"
    return f"{seconds} seconds" if seconds != 1 else "1 second"
