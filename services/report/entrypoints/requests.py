"""Requests checked and turned into domain values; every problem names its field.

A servicer calls these inside ``validation.collecting()`` so the caller learns
every bad field of a request at once, as INVALID_ARGUMENT.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.report.v1 import report_pb2
from services.common import validation
from services.common.errors import InvalidArgument
from services.common.indicators import Indicator, IndicatorKind
from services.common.validation import Violations
from services.report.adapters.repository import CaseFilter, ReportFilter, ReviewQueueFilter
from services.report.domain.model import (
    Attachment,
    CaseStatus,
    Evidence,
    FraudCategory,
    Money,
    NewCase,
    NewPayee,
    NewReport,
    ReportKind,
    ReportStatus,
    ReviewDecision,
    Standing,
)

MAX_DESCRIPTION = 5_000
MAX_SMS_TEXT = 2_000
MAX_REASON = 1_000
MAX_REPLY = 2_000
MAX_INDICATORS = 20
MAX_PAYEES = 20
MAX_ATTACHMENTS = 10
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
MAX_MEDIA_TYPE = 100
MAX_REPORTER = 128
MAX_MONEY_UNITS = validation.MAX_MONEY_UNITS
#: Phones' clocks run ahead a little; more than this is a time in the future.
CLOCK_SKEW = timedelta(minutes=5)

_SHA256 = re.compile(r"[0-9a-f]{64}")
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+\-]*/[a-z0-9][a-z0-9!#$&^_.+\-]*")
_CURRENCY = re.compile(r"[A-Z]{3}")
_ID = re.compile(r"[0-9a-f]{32}")
PAYEE_KINDS = (IndicatorKind.BANK_ACCOUNT, IndicatorKind.PAYMENT_ACCOUNT)


def resource_id(name: str, collection: str, *, field: str = "name") -> str:
    """The id in ``{collection}/{id}``; INVALID_ARGUMENT for anything else."""
    prefix, _, rid = name.partition("/")
    if prefix != collection or _ID.fullmatch(rid) is None:
        raise InvalidArgument.field(field, f"must be a resource name {collection}/{{id}}")
    return rid


def timestamp(
    v: Violations,
    field: str,
    value: Timestamp,
    present: bool,
    now: datetime,
    *,
    required: bool = False,
    past: bool = False,
) -> datetime | None:
    """A valid timestamp, or None when absent; ``past`` refuses times in the future."""
    when = validation.optional_time(v, field, value, present, required=required)
    if when is None:
        return None
    if past and when > now + CLOCK_SKEW:
        v.add(field, "must not be in the future")
    return when


def money(
    v: Violations,
    field: str,
    value: common_pb2.Money,
    present: bool,
    *,
    required: bool = False,
) -> Money | None:
    """A non-negative amount in a currency (CNY when not given)."""
    if not present:
        if required:
            v.add(field, "is required")
        return None
    problems = len(v.items)
    currency = value.currency_code or "CNY"
    if _CURRENCY.fullmatch(currency) is None:
        v.add(f"{field}.currency_code", "must be an ISO 4217 code such as CNY")
    if not -999_999_999 <= value.nanos <= 999_999_999:
        v.add(f"{field}.nanos", "must be between -999,999,999 and 999,999,999")
    elif value.units < 0 or value.nanos < 0:
        v.add(field, "must not be negative")
    elif value.units > MAX_MONEY_UNITS:
        v.add(field, f"must be at most {MAX_MONEY_UNITS} units")
    if len(v.items) > problems:
        return None
    return Money(currency, value.units, value.nanos)


def _positive(amount: Money) -> bool:
    return amount.units > 0 or amount.nanos > 0


def indicators(
    v: Violations, field: str, given: Sequence[common_pb2.Indicator], *, required: bool, most: int
) -> tuple[Indicator, ...]:
    """Normalised indicators, each value once, in the order given."""
    if required and not given:
        v.add(field, "at least one indicator is required")
    if len(given) > most:
        v.add(field, f"at most {most} indicators, got {len(given)}")
        return ()
    found: dict[Indicator, None] = {}
    for i, raw in enumerate(given):
        indicator = validation.indicator(v, f"{field}[{i}]", raw.kind, raw.value)
        if indicator is not None:
            # Notes (e.g. a failed Luhn check) are facts about the input, not part of the value.
            found.setdefault(Indicator(indicator.kind, indicator.value), None)
    return tuple(found)


def _attachments(
    v: Violations, field: str, given: Sequence[report_pb2.Attachment]
) -> tuple[Attachment, ...]:
    if len(given) > MAX_ATTACHMENTS:
        v.add(field, f"at most {MAX_ATTACHMENTS} attachments, got {len(given)}")
        return ()
    found = []
    for i, a in enumerate(given):
        at = f"{field}[{i}]"
        sha = a.sha256.strip().lower()
        if _SHA256.fullmatch(sha) is None:
            v.add(f"{at}.sha256", "must be 64 hex digits (a SHA-256)")
        if not 1 <= a.size_bytes <= MAX_ATTACHMENT_BYTES:
            v.add(f"{at}.size_bytes", f"must be from 1 to {MAX_ATTACHMENT_BYTES} bytes (10 MiB)")
        media = validation.text(v, f"{at}.media_type", a.media_type, max_len=MAX_MEDIA_TYPE).lower()
        if media and _MEDIA_TYPE.fullmatch(media) is None:
            v.add(f"{at}.media_type", "must be a media type such as image/png")
        found.append(Attachment(sha, a.size_bytes, media))
    return tuple(found)


def _evidence(v: Violations, field: str, given: report_pb2.Evidence, now: datetime) -> Evidence:
    return Evidence(
        sms_text=validation.text(
            v, f"{field}.sms_text", given.sms_text, max_len=MAX_SMS_TEXT, multiline=True
        ),
        call_time=timestamp(
            v, f"{field}.call_time", given.call_time, given.HasField("call_time"), now, past=True
        ),
        amount_requested=money(
            v,
            f"{field}.amount_requested",
            given.amount_requested,
            given.HasField("amount_requested"),
        ),
        attachments=_attachments(v, f"{field}.attachments", given.attachments),
    )


def new_report(v: Violations, given: report_pb2.Report, now: datetime) -> NewReport | None:
    field = "report"
    kind = validation.enum_value(v, f"{field}.kind", given.kind, ReportKind)
    found = indicators(
        v, f"{field}.indicators", given.indicators, required=True, most=MAX_INDICATORS
    )
    description = validation.text(
        v, f"{field}.description", given.description, max_len=MAX_DESCRIPTION, multiline=True
    )
    evidence = _evidence(v, f"{field}.evidence", given.evidence, now)
    incident_time = timestamp(
        v,
        f"{field}.incident_time",
        given.incident_time,
        given.HasField("incident_time"),
        now,
        past=True,
    )
    category = validation.enum_value(
        v, f"{field}.category", given.category, FraudCategory, required=False
    )
    if kind is None or not found:
        return None
    return NewReport(
        kind=kind,
        indicators=found,
        description=description,
        evidence=evidence,
        incident_time=incident_time,
        category=category or FraudCategory.UNSPECIFIED,
    )


def _payees(
    v: Violations, field: str, given: Sequence[report_pb2.Payee], amount_lost: Money | None
) -> tuple[NewPayee, ...]:
    if len(given) > MAX_PAYEES:
        v.add(field, f"at most {MAX_PAYEES} payees, got {len(given)}")
        return ()
    found: dict[Indicator, NewPayee] = {}
    for i, raw in enumerate(given):
        at = f"{field}[{i}]"
        account = validation.indicator(v, f"{at}.account", raw.account.kind, raw.account.value)
        if account is not None and account.kind not in PAYEE_KINDS:
            v.add(f"{at}.account.kind", "must be BANK_ACCOUNT or PAYMENT_ACCOUNT")
            account = None
        amount = money(v, f"{at}.amount", raw.amount, raw.HasField("amount"))
        ordered = amount if amount is not None else amount_lost
        if ordered is not None and not _positive(ordered):
            v.add(
                f"{at}.amount",
                "a stop-payment needs a positive amount: the amount sent to this account, "
                "or a positive amount_lost",
            )
        references = validation.references(
            v, f"{at}.transaction_references", raw.transaction_references
        )
        if account is not None:
            key = Indicator(account.kind, account.value)
            found.setdefault(key, NewPayee(key, amount, references))
    return tuple(found.values())


def new_case(v: Violations, given: report_pb2.Case, now: datetime) -> NewCase | None:
    field = "case"
    description = validation.text(
        v,
        f"{field}.description",
        given.description,
        max_len=MAX_DESCRIPTION,
        required=True,
        multiline=True,
    )
    category = validation.enum_value(v, f"{field}.category", given.category, FraudCategory)
    amount_lost = money(
        v, f"{field}.amount_lost", given.amount_lost, given.HasField("amount_lost"), required=True
    )
    incident_time = timestamp(
        v,
        f"{field}.incident_time",
        given.incident_time,
        given.HasField("incident_time"),
        now,
        required=True,
        past=True,
    )
    payees = _payees(v, f"{field}.payees", given.payees, amount_lost)
    suspects = indicators(
        v,
        f"{field}.suspect_indicators",
        given.suspect_indicators,
        required=False,
        most=MAX_INDICATORS,
    )
    if category is None or amount_lost is None or incident_time is None:
        return None
    return NewCase(
        description=description,
        category=category,
        amount_lost=amount_lost,
        incident_time=incident_time,
        payees=payees,
        suspects=suspects,
    )


def review(
    v: Violations, request: report_pb2.ReviewReportRequest
) -> tuple[ReviewDecision | None, str]:
    decision = validation.enum_value(v, "decision", request.decision, ReviewDecision)
    reason = validation.text(
        v, "reason", request.reason, max_len=MAX_REASON, required=True, multiline=True
    )
    return decision, reason


def _order(v: Violations, order_by: str) -> bool:
    """True for oldest first."""
    normal = " ".join(order_by.split()).lower()
    if normal in ("", "create_time desc"):
        return False
    if normal in ("create_time", "create_time asc"):
        return True
    v.add("order_by", 'must be "create_time desc" (the default) or "create_time"')
    return False


def _range(v: Violations, start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and end <= start:
        v.add("end_time", "must be after start_time")


def report_filter(
    v: Violations, request: report_pb2.ListReportsRequest, now: datetime
) -> ReportFilter:
    statuses = []
    for i, raw in enumerate(request.statuses):
        status = validation.enum_value(v, f"statuses[{i}]", raw, ReportStatus)
        if status is not None:
            statuses.append(status)
    kind = validation.enum_value(v, "kind", request.kind, ReportKind, required=False)
    indicator = None
    if request.HasField("indicator"):
        found = validation.indicator(
            v, "indicator", request.indicator.kind, request.indicator.value
        )
        indicator = None if found is None else Indicator(found.kind, found.value)
    start = timestamp(v, "start_time", request.start_time, request.HasField("start_time"), now)
    end = timestamp(v, "end_time", request.end_time, request.HasField("end_time"), now)
    _range(v, start, end)
    reporter = validation.text(v, "reporter", request.reporter, max_len=MAX_REPORTER)
    return ReportFilter(
        statuses=tuple(sorted(set(statuses))),
        kind=kind,
        indicator=indicator,
        start=start,
        end=end,
        reporter=reporter or None,
        oldest_first=_order(v, request.order_by),
    )


def case_filter(v: Violations, request: report_pb2.ListCasesRequest, now: datetime) -> CaseFilter:
    category = validation.enum_value(v, "category", request.category, FraudCategory, required=False)
    start = timestamp(v, "start_time", request.start_time, request.HasField("start_time"), now)
    end = timestamp(v, "end_time", request.end_time, request.HasField("end_time"), now)
    _range(v, start, end)
    statuses = [
        status
        for i, raw in enumerate(request.statuses)
        if (status := validation.enum_value(v, f"statuses[{i}]", raw, CaseStatus)) is not None
    ]
    officer = validation.text(v, "officer", request.officer, max_len=MAX_REPORTER)
    return CaseFilter(
        category=category,
        start=start,
        end=end,
        statuses=tuple(sorted(set(statuses))),
        officer=officer or None,
    )


def officer(v: Violations, value: str) -> str:
    return validation.text(v, "officer", value, max_len=MAX_REPORTER)


def case_text(v: Violations, field: str, value: str, max_len: int) -> str:
    """An officer's reply or reason: required, multiline, bounded."""
    return validation.text(v, field, value, max_len=max_len, required=True, multiline=True)


def indicator_review(
    v: Violations, request: report_pb2.ReviewIndicatorReportsRequest
) -> tuple[Indicator | None, ReviewDecision | None, str]:
    found = None
    if not request.HasField("indicator"):
        v.add("indicator", "is required")
    else:
        found = validation.indicator(
            v, "indicator", request.indicator.kind, request.indicator.value
        )
    decision = validation.enum_value(v, "decision", request.decision, ReviewDecision)
    reason = case_text(v, "reason", request.reason, MAX_REASON)
    return (None if found is None else Indicator(found.kind, found.value)), decision, reason


def review_queue_filter(
    v: Violations, request: report_pb2.ListReviewIndicatorsRequest
) -> ReviewQueueFilter:
    kind = validation.enum_value(v, "kind", request.kind, IndicatorKind, required=False)
    standing = validation.enum_value(v, "standing", request.standing, Standing, required=False)
    return ReviewQueueFilter(kind=kind, standing=standing)


def time_range(
    v: Violations, request: report_pb2.GetReportStatsRequest, now: datetime
) -> tuple[datetime | None, datetime | None]:
    start = timestamp(v, "start_time", request.start_time, request.HasField("start_time"), now)
    end = timestamp(v, "end_time", request.end_time, request.HasField("end_time"), now)
    _range(v, start, end)
    return start, end
