"""Request fields of the partner contracts, checked and converted to domain values.

Each helper adds a violation naming the field (never repeating a personal value) to a
``Violations`` and returns a placeholder, so one request reports all its problems at once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeAlias

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from services.api.antifraud.common.v1 import common_pb2
from services.common import pagination, resident_id
from services.common.indicators import Indicator, IndicatorKind, InvalidIndicator, normalize
from services.common.validation import Violations, enum_value, page_size, text, time_of
from services.partners.domain.bank import Amount

#: The servicer context as grpc-stubs types it (a string: the class is not subscriptable).
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"

MAX_IDEMPOTENCY_KEY = 128
MAX_NAME = 64
MAX_REFERENCE = 128
MAX_SEED_ITEMS = 1000
_NANOS = 1_000_000_000


def now() -> datetime:
    return datetime.now(UTC)


def timestamp(moment: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(moment)
    return ts


def moment(v: Violations, field: str, present: bool, ts: Timestamp, default: datetime) -> datetime:
    """A Timestamp field as an aware datetime (``default`` when it is not set or not valid:
    then a violation names it)."""
    if not present:
        return default
    found = time_of(v, field, ts)
    return default if found is None else found


def idempotency_key(v: Violations, value: str, *, field: str = "idempotency_key") -> str:
    """1-128 printable ASCII characters without spaces (a UUID fits; so does a derived key)."""
    if not value:
        v.add(field, "is required")
    elif len(value) > MAX_IDEMPOTENCY_KEY:
        v.add(field, f"must be at most {MAX_IDEMPOTENCY_KEY} characters")
    elif not all("!" <= ch <= "~" for ch in value):
        v.add(field, "must be printable ASCII without spaces")
    return value


def resident_id_number(v: Violations, field: str, value: str, *, checked: bool = False) -> str:
    """A canonical ID number; with ``checked`` its check character must be right too."""
    if not value.strip():
        v.add(field, "is required")
        return value
    try:
        canonical = resident_id.canonical(value)
    except resident_id.InvalidResidentId as exc:
        v.add(field, exc.reason)
        return value
    if checked and not resident_id.checksum_valid(canonical):
        v.add(field, "the check character does not match (GB 11643)")
    return canonical


def resident_id_last_six(v: Violations, field: str, value: str) -> str:
    if not value.strip():
        v.add(field, "is required")
        return value
    try:
        return resident_id.canonical_last_six(value)
    except resident_id.InvalidResidentId as exc:
        v.add(field, exc.reason)
        return value


def mobile_number(v: Violations, field: str, value: str) -> str:
    """A phone number in E.164 (short service codes do not receive SMS or own accounts)."""
    if not value.strip():
        v.add(field, "is required")
        return value
    try:
        e164 = normalize(IndicatorKind.PHONE_NUMBER, value).value
    except InvalidIndicator as exc:
        v.add(field, exc.reason)
        return value
    if not e164.startswith("+"):
        v.add(field, "must be a subscriber number in E.164, not a service code")
    return e164


def sms_sender(v: Violations, field: str, value: str) -> str:
    if not value.strip():
        v.add(field, "is required")
        return value
    try:
        return normalize(IndicatorKind.SMS_SENDER, value).value
    except InvalidIndicator as exc:
        v.add(field, exc.reason)
        return value


ACCOUNT_KINDS = (IndicatorKind.BANK_ACCOUNT, IndicatorKind.PAYMENT_ACCOUNT)
HOLDER_KINDS = (*ACCOUNT_KINDS, IndicatorKind.WECHAT_ID, IndicatorKind.QQ_NUMBER)


def account(
    v: Violations,
    field: str,
    present: bool,
    message: common_pb2.Indicator,
    *,
    kinds: tuple[IndicatorKind, ...] = ACCOUNT_KINDS,
) -> Indicator:
    """A canonical indicator of one of ``kinds`` (by default BANK_ACCOUNT or PAYMENT_ACCOUNT)."""
    placeholder = Indicator(IndicatorKind.BANK_ACCOUNT, "")
    if not present:
        v.add(field, "is required")
        return placeholder
    kind = enum_value(v, f"{field}.kind", message.kind, IndicatorKind)
    if kind is None:
        return placeholder
    if kind not in kinds:
        v.add(f"{field}.kind", "must be " + " or ".join(k.name for k in kinds))
        return placeholder
    try:
        return normalize(kind, message.value)
    except InvalidIndicator as exc:
        v.add(f"{field}.value", exc.reason)
        return placeholder


def amount(
    v: Violations, field: str, present: bool, message: common_pb2.Money, *, required: bool
) -> Amount | None:
    """A positive amount (google.type.Money rules), or None when optional and not set."""
    if not present:
        if required:
            v.add(field, "is required")
        return None
    currency = message.currency_code or "CNY"
    if len(currency) != 3 or not (currency.isascii() and currency.isalpha() and currency.isupper()):
        v.add(f"{field}.currency_code", "must be an ISO 4217 code such as CNY")
    if not -_NANOS < message.nanos < _NANOS:
        v.add(f"{field}.nanos", "must be from -999,999,999 to 999,999,999")
        return None
    if (message.units > 0 and message.nanos < 0) or (message.units < 0 and message.nanos > 0):
        v.add(f"{field}.nanos", "must have the sign of units")
        return None
    value = Decimal(message.units) + Decimal(message.nanos) / _NANOS
    if value <= 0:
        v.add(field, "must be positive")
    return Amount(currency, value)


def person_name(v: Violations, field: str, value: str) -> str:
    return text(v, field, value, max_len=MAX_NAME, required=True)


def page(v: Violations, size: int, token: str) -> tuple[int, int]:
    """(page size, offset) of an offset-paged list."""
    limit = page_size(v, size)
    position = pagination.decode(token) or {"offset": 0}
    offset = position.get("offset")
    if not isinstance(offset, int) or offset < 0:
        v.add("page_token", "is not a page token from this API")
        return limit, 0
    return limit, offset


def next_page_token(offset: int, limit: int, total: int) -> str:
    end = offset + limit
    return pagination.encode({"offset": end}) if end < total else ""


def seed_count(v: Violations, field: str, count: int, *, required: bool = True) -> None:
    if required and count == 0:
        v.add(field, "needs at least one item")
    if count > MAX_SEED_ITEMS:
        v.add(field, f"must have at most {MAX_SEED_ITEMS} items")


def consent_reference(v: Violations, value: str) -> str:
    """The caller's record of the person's consent to a look-up (recorded, not checked)."""
    return text(v, "consent_reference", value, max_len=MAX_REFERENCE)


def money_pb(amount: Amount) -> common_pb2.Money:
    """An amount as google.type.Money (units and nanos with the same sign)."""
    units = int(amount.value)
    nanos = int((amount.value - units) * _NANOS)
    return common_pb2.Money(currency_code=amount.currency, units=units, nanos=nanos)


def balance(v: Violations, field: str, present: bool, message: common_pb2.Money) -> Decimal | None:
    """A seeded balance: zero or more, in CNY; None when not set."""
    if not present:
        return None
    if message.units < 0 or message.nanos < 0:
        v.add(field, "must not be negative")
        return None
    return Decimal(message.units) + Decimal(message.nanos) / _NANOS
