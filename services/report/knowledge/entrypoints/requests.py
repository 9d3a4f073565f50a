"""Knowledge requests checked and turned into domain values; every problem names its field."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from google.protobuf.duration_pb2 import Duration

from services.api.antifraud.report.v1 import knowledge_pb2 as kpb
from services.common import regions, validation
from services.common.indicators import (
    Indicator,
    IndicatorKind,
    InvalidIndicator,
    display,
    normalize,
)
from services.common.validation import Violations
from services.report.domain.model import FraudCategory
from services.report.entrypoints.requests import timestamp
from services.report.knowledge.adapters.repository import ArticleFilter
from services.report.knowledge.domain import calls, ngrams, trends
from services.report.knowledge.domain.articles import EDITABLE, ArticleKind, ArticleState, Content
from services.report.knowledge.domain.notices import NewNotice

MAX_TITLE = 200
MAX_SUMMARY = 500
MAX_BODY = 20_000
MAX_NOTICE_BODY = 5_000
MAX_ISSUER = 100
MAX_QUERY = 100
MAX_REASON = 500
MAX_STATION = 100


def region(v: Violations, field: str, value: str) -> str:
    value = value.strip()
    if value:
        problem = regions.problem(value)
        if problem is not None:
            v.add(field, problem)
    return value


def _categories(v: Violations, field: str, given: Sequence[int]) -> tuple[FraudCategory, ...]:
    if not given:
        v.add(field, "at least one category is required")
    found: dict[FraudCategory, None] = {}
    for i, raw in enumerate(given):
        category = validation.enum_value(v, f"{field}[{i}]", raw, FraudCategory)
        if category is not None:
            if category in found:
                v.add(f"{field}[{i}]", "is given twice")
            found[category] = None
    return tuple(found)


def content(
    v: Violations, field: str, article: kpb.Article, fields: Sequence[str] = EDITABLE
) -> Content:
    """The article's content; only ``fields`` are checked (the others are placeholders)."""
    kind = ArticleKind.UNSPECIFIED
    if "kind" in fields:
        kind = validation.enum_value(v, f"{field}.kind", article.kind, ArticleKind) or kind
    return Content(
        kind=kind,
        title=validation.text(
            v, f"{field}.title", article.title, max_len=MAX_TITLE, required="title" in fields
        ),
        summary=validation.text(
            v, f"{field}.summary", article.summary, max_len=MAX_SUMMARY, multiline=True
        ),
        body=validation.text(
            v,
            f"{field}.body",
            article.body,
            max_len=MAX_BODY,
            required="body" in fields,
            multiline=True,
        ),
        categories=(
            _categories(v, f"{field}.categories", article.categories)
            if "categories" in fields
            else ()
        ),
        region=region(v, f"{field}.region", article.region),
    )


def update_fields(v: Violations, paths: Sequence[str]) -> tuple[str, ...]:
    """The fields an update mask names; all editable fields when it names none."""
    if not paths:
        return EDITABLE
    for path in paths:
        if path not in EDITABLE:
            v.add("update_mask", f"{path!r} cannot be changed; use any of {', '.join(EDITABLE)}")
    return tuple(dict.fromkeys(p for p in paths if p in EDITABLE))


def article_filter(v: Violations, category: int, region_code: str, kind: int = 0) -> ArticleFilter:
    code = region(v, "region", region_code)
    return ArticleFilter(
        category=validation.enum_value(v, "category", category, FraudCategory, required=False),
        kind=validation.enum_value(v, "kind", kind, ArticleKind, required=False),
        regions=regions.enclosing(code) if code else None,
    )


def state(v: Violations, value: int) -> ArticleState | None:
    return validation.enum_value(v, "state", value, ArticleState, required=False)


def full_view(v: Violations, value: int) -> bool:
    if value not in (kpb.ARTICLE_VIEW_UNSPECIFIED, kpb.ARTICLE_VIEW_BASIC, kpb.ARTICLE_VIEW_FULL):
        v.add("view", f"unknown value {value}")
    return value == kpb.ARTICLE_VIEW_FULL


def query(v: Violations, text: str) -> ngrams.Query:
    text = validation.text(v, "query", text, max_len=MAX_QUERY, required=True)
    parsed = ngrams.parse_query(text)
    if text and not parsed.searchable:
        v.add("query", "needs at least one word of two or more letters or digits")
    return parsed


def notice(v: Violations, given: kpb.Notice, present: bool, now: datetime) -> NewNotice | None:
    if not present:
        v.add("notice", "is required")
        return None
    start = timestamp(v, "notice.start_time", given.start_time, given.HasField("start_time"), now)
    end = timestamp(
        v, "notice.end_time", given.end_time, given.HasField("end_time"), now, required=True
    )
    new = NewNotice(
        title=validation.text(v, "notice.title", given.title, max_len=MAX_TITLE, required=True),
        body=validation.text(
            v, "notice.body", given.body, max_len=MAX_NOTICE_BODY, required=True, multiline=True
        ),
        issuer=validation.text(v, "notice.issuer", given.issuer, max_len=MAX_ISSUER, required=True),
        region=region(v, "notice.region", given.region),
        start_time=start,
        end_time=end or now,
    )
    return new if end is not None else None


def phone(v: Violations, field: str, value: str) -> Indicator | None:
    """A phone number or service short code, normalised (E.164 or digits)."""
    if not value.strip():
        v.add(field, "is required")
        return None
    try:
        return normalize(IndicatorKind.PHONE_NUMBER, value)
    except InvalidIndicator as exc:
        v.add(field, exc.reason)
        return None


def mobile(v: Violations, field: str, value: str) -> Indicator | None:
    """A Chinese mobile number (the only kind a citizen registers with)."""
    found = phone(v, field, value)
    if found is not None and not (found.value.startswith("+861") and len(found.value) == 14):
        v.add(field, "must be a Chinese mobile number")
        return None
    return found


def ttl(v: Violations, given: Duration, present: bool) -> timedelta | None:
    if not present:
        v.add("ttl", "is required")
        return None
    return validation.duration_of(v, "ttl", given, minimum=calls.MIN_TTL, maximum=calls.MAX_TTL)


def announcement(
    v: Violations, request: kpb.AnnounceCallRequest
) -> tuple[calls.NewCall, Indicator] | None:
    """The announcement (its callee not yet resolved to a user) and the callee's number."""
    if not request.HasField("call"):
        v.add("call", "is required")
        return None
    caller = phone(v, "call.caller_number", request.call.caller_number)
    callee = mobile(v, "callee_phone_number", request.callee_phone_number)
    duration = ttl(v, request.ttl, request.HasField("ttl"))
    reason = validation.text(
        v, "call.reason", request.call.reason, max_len=MAX_REASON, required=True
    )
    station = validation.text(
        v, "call.station_name", request.call.station_name, max_len=MAX_STATION, required=True
    )
    if caller is None or callee is None or duration is None:
        return None
    new = calls.NewCall(
        caller_number=caller.value,
        callee_user_id=None,
        masked_callee=display(callee),
        reason=reason,
        station_name=station,
        ttl=duration,
    )
    return new, callee


def max_categories(v: Violations, value: int) -> int:
    if value < 0:
        v.add("max_categories", "must not be negative")
    if value <= 0:
        return trends.DEFAULT_CATEGORIES
    return min(value, trends.MAX_CATEGORIES)
