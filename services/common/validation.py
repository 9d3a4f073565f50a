"""Checks on request fields, turned into INVALID_ARGUMENT with the field and the reason.

A servicer converts a request into domain values with these helpers; a
``Violations`` collects every problem of one request so the caller sees them
all at once.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from services.common.errors import FieldViolation, InvalidArgument
from services.common.indicators import Indicator, IndicatorKind, InvalidIndicator, normalize

E = TypeVar("E", bound=enum.IntEnum)

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50


class Violations:
    """Collects field violations; ``raise_if_any`` raises them as one INVALID_ARGUMENT."""

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.items.append(FieldViolation(field, description))

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(self.items)


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
        return normalize(kind_enum, value)
    except InvalidIndicator as exc:
        v.add(f"{field}.value", exc.reason)
        return None


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


#: 0001-01-01 .. 9999-12-31, the range google.protobuf.Timestamp allows.
_MIN_SECONDS, _MAX_SECONDS = -62135596800, 253402300799


def time_of(v: Violations, field: str, stamp: Timestamp) -> datetime | None:
    """A Timestamp as an aware datetime; out-of-range values are a violation, not a crash."""
    if not (_MIN_SECONDS <= stamp.seconds <= _MAX_SECONDS) or not (0 <= stamp.nanos < 10**9):
        v.add(field, "is not a valid timestamp")
        return None
    return stamp.ToDatetime(tzinfo=UTC)
