"""Protobuf <-> domain for the risk API. Field checks name the field and the reason."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.risk.v1 import risk_pb2
from services.common import validation
from services.common.errors import FailedPrecondition
from services.common.indicators import NOTE_SPOOFED_SERVICE_CODE, Indicator
from services.common.principals import Principal
from services.common.redaction import mask_identifiers
from services.common.validation import Violations
from services.risk.domain import provenance
from services.risk.domain.copies import ListColumns
from services.risk.domain.index import Hit, Lookalike
from services.risk.domain.model import (
    Assertion,
    Change,
    FraudCategory,
    RiskLevel,
    Snapshot,
    SourceFlag,
    SourceType,
    categories_of,
    reasons,
)
from services.risk.service_layer.handlers import AssertionInput, Record

MAX_REASON = 1000
MAX_SOURCE_ID = 128
MAX_LABEL = 200


def timestamp(seconds: int) -> Timestamp | None:
    return Timestamp(seconds=seconds) if seconds else None


def timestamp_of(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value.astimezone(UTC))
    return stamp


def indicator_pb(indicator: Indicator) -> common_pb2.Indicator:
    return common_pb2.Indicator(kind=int(indicator.kind), value=indicator.value)  # type: ignore[arg-type]


def verdict_pb(
    indicator: Indicator, snapshot: Snapshot | None, matched: str = ""
) -> risk_pb2.Verdict:
    verdict = risk_pb2.Verdict()
    if snapshot is not None and snapshot.listed:
        explain(verdict, snapshot, matched)
    else:
        verdict.level = RiskLevel.NONE  # type: ignore[assignment]
    _set_indicator(verdict, indicator)
    return verdict


def _set_indicator(verdict: risk_pb2.Verdict, indicator: Indicator) -> None:
    verdict.indicator.kind = indicator.kind  # type: ignore[assignment]
    verdict.indicator.value = indicator.value
    if indicator.notes:
        verdict.notes.extend(indicator.notes)


def explain(verdict: risk_pb2.Verdict, snapshot: Snapshot, matched: str) -> None:
    """Everything a verdict says beyond the value itself."""
    verdict.level = snapshot.level  # type: ignore[assignment]
    verdict.categories.extend(int(c) for c in categories_of(snapshot.categories))  # type: ignore[misc]
    verdict.reasons.extend(reasons(snapshot, matched))
    flags = SourceFlag(snapshot.flags)
    sources = verdict.sources
    sources.distinct_reporters = snapshot.reporters
    sources.police_confirmed = SourceFlag.POLICE in flags
    sources.carrier_feed = SourceFlag.CARRIER in flags
    sources.bank_feed = SourceFlag.BANK in flags
    sources.analyst_reviewed = SourceFlag.ANALYST in flags
    sources.case_reported = SourceFlag.CASE in flags
    if snapshot.first_seen:
        verdict.first_seen_time.seconds = snapshot.first_seen
    if snapshot.last_seen:
        verdict.last_seen_time.seconds = snapshot.last_seen
    verdict.verified = snapshot.verified
    verdict.verified_label = snapshot.label
    verdict.matched_value = matched


#: Verdicts of listed entries without their value, keyed by what they are built from.
#: Equal entries explain themselves equally, so a hot entry is explained once.
_EXPLAINED: dict[tuple[bytes, str, str], risk_pb2.Verdict] = {}
_EXPLAINED_MAX = 50_000


def fill_verdict(
    verdict: risk_pb2.Verdict,
    indicator: Indicator,
    hit: Hit | None,
    lookalike: Lookalike | None = None,
) -> None:
    """Write the verdict for ``indicator`` into ``verdict`` (fresh, or added to a response)."""
    if hit is None:
        verdict.level = RiskLevel.NONE  # type: ignore[assignment]
    else:
        matched = "" if (hit.kind, hit.value) == (indicator.kind, indicator.value) else hit.value
        key = (hit.packed, hit.label, matched)
        template = _EXPLAINED.get(key)
        if template is None:
            if len(_EXPLAINED) >= _EXPLAINED_MAX:
                _EXPLAINED.clear()
            template = _EXPLAINED[key] = risk_pb2.Verdict()
            explain(template, hit.snapshot, matched)
        verdict.MergeFrom(template)
    _set_indicator(verdict, indicator)
    if NOTE_SPOOFED_SERVICE_CODE in indicator.notes:
        if verdict.level < RiskLevel.MEDIUM:  # nothing listed says more: spoofing is a risk
            verdict.level = RiskLevel.MEDIUM  # type: ignore[assignment]
            impersonating = int(FraudCategory.IMPERSONATING_OFFICIALS)
            if impersonating not in verdict.categories:
                verdict.categories.append(impersonating)  # type: ignore[arg-type]
        verdict.reasons.append(SPOOFING_REASON)
    if lookalike is not None:
        verdict.lookalike_of = lookalike.domain
        verdict.reasons.append(lookalike_reason(lookalike))


SPOOFING_REASON = (
    "spoofing: an official service number shown with an international prefix (+86, 0086); "
    "real calls from it never carry one"
)


def lookalike_reason(lookalike: Lookalike) -> str:
    """Words fit to show a citizen for a look-alike of a verified domain."""
    name = f"{lookalike.domain} ({lookalike.label})" if lookalike.label else lookalike.domain
    how = "mixes alphabets to look like" if lookalike.mixed_script else "looks like"
    return f"look-alike: {lookalike.imitation} {how} the verified {name} but is not it"


def hit_verdict_pb(
    indicator: Indicator, hit: Hit | None, lookalike: Lookalike | None = None
) -> risk_pb2.Verdict:
    verdict = risk_pb2.Verdict()
    fill_verdict(verdict, indicator, hit, lookalike)
    return verdict


def assertion_pb(a: Assertion) -> risk_pb2.Assertion:
    return risk_pb2.Assertion(
        source_type=int(a.source_type),  # type: ignore[arg-type]
        source_id=a.source_id,
        level=int(a.level),  # type: ignore[arg-type]
        categories=[int(c) for c in sorted(a.categories)],  # type: ignore[misc]
        reason=a.reason,
        reporter_count=a.reporter_count,
        label=a.label,
        expire_time=timestamp_of(a.expire_time),
        create_time=timestamp_of(a.create_time),
        update_time=timestamp_of(a.update_time),
    )


def record_pb(record: Record) -> risk_pb2.IndicatorRecord:
    return risk_pb2.IndicatorRecord(
        verdict=verdict_pb(record.indicator, record.snapshot),
        assertions=[assertion_pb(a) for a in record.assertions],
    )


def columns_pb(columns: ListColumns) -> risk_pb2.RiskListColumns:
    """Entries as columns (RISK_LIST_ENCODING_COLUMNS): each column handed to protobuf whole."""
    return risk_pb2.RiskListColumns(
        kind=int(columns.kind),  # type: ignore[arg-type]
        values=columns.values,
        levels=columns.levels,  # type: ignore[arg-type]
        category_masks=columns.categories,
    )


def cursor_text(feed_id: str, change_id: int) -> str:
    """The cursor of a change: the feed's identity and the change's place in it."""
    return f"{feed_id}-{change_id}" if feed_id else str(change_id)


def change_pb(change: Change, feed_id: str = "") -> risk_pb2.IndicatorChange:
    return risk_pb2.IndicatorChange(
        cursor=cursor_text(feed_id, change.id),
        change_type=int(change.change_type),  # type: ignore[arg-type]
        verdict=verdict_pb(Indicator(change.kind, change.value), change.snapshot),
        source_type=int(change.source_type),  # type: ignore[arg-type]
        source_id=change.source_id,
        actor=change.actor,
        reason=change.reason,
        change_time=timestamp_of(change.time),
        trace_parent=change.trace_context or "",
    )


def cursor_of(v: Violations, raw: str, feed_id: str = "") -> int:
    """The change id of a cursor: ``<feed id>-<change id>``, or a plain change id as cursors
    were before they carried the feed's identity. A cursor of another feed (another database)
    is FAILED_PRECONDITION: its ids mean nothing here."""
    if not raw:
        return 0
    given_feed, dash, number = raw.rpartition("-")
    if not number.isdigit() or not number.isascii() or len(number) > 19:
        v.add("cursor", "is not a cursor from this feed")
        return 0
    if dash and feed_id and given_feed != feed_id:
        raise FailedPrecondition(
            "the cursor is from another feed (another database): start again without a cursor"
        )
    return int(number)


def categories_in(v: Violations, field: str, raw: list[int]) -> frozenset[FraudCategory]:
    found: set[FraudCategory] = set()
    for i, number in enumerate(raw):
        category = validation.enum_value(v, f"{field}[{i}]", number, FraudCategory)
        if category is not None:
            found.add(category)
    return frozenset(found)


def assertion_in(
    v: Violations, field: str, a: risk_pb2.Assertion, caller: Principal
) -> AssertionInput | None:
    """The assertion of a request, its source taken from ``caller``'s key (PermissionDenied
    for a source the caller does not hold)."""
    source_type = validation.enum_value(
        v, f"{field}.source_type", a.source_type, SourceType, required=False
    )
    level = validation.enum_value(v, f"{field}.level", a.level, RiskLevel)
    source_id = validation.text(v, f"{field}.source_id", a.source_id, max_len=MAX_SOURCE_ID)
    reason = validation.text(v, f"{field}.reason", a.reason, max_len=MAX_REASON, required=True)
    # Free text: identifiers someone typed into it are masked before it is stored (docs/data.md).
    reason = mask_identifiers(reason).text
    label = validation.text(v, f"{field}.label", a.label, max_len=MAX_LABEL)
    categories = categories_in(v, f"{field}.categories", list(a.categories))
    count = validation.non_negative(v, f"{field}.reporter_count", a.reporter_count)
    expire = (
        validation.time_of(v, f"{field}.expire_time", a.expire_time)
        if a.HasField("expire_time")
        else None
    )
    if level is None or v.items:
        return None
    source_type, source_id = provenance.source_of(caller, source_type, source_id, field)
    if source_type is not SourceType.CITIZEN_REPORTS:
        count = 0  # "reported by N citizens" is said only of citizens' reports
    return AssertionInput(
        source_type=source_type,
        source_id=source_id,
        level=level,
        categories=categories,
        reason=reason,
        reporter_count=count,
        label=label,
        expire_time=expire,
    )
