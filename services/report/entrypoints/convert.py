"""Domain values to protobuf messages (the way in is requests.py)."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.report.v1 import report_pb2
from services.common.audit import AuditEntry
from services.common.indicators import Indicator
from services.report.adapters.repository import QueuedIndicator, Stats
from services.report.domain import case_lifecycle
from services.report.domain.model import (
    Case,
    CaseEvent,
    Evidence,
    Finding,
    Money,
    Payee,
    Report,
    Review,
    case_name,
    report_name,
)


def timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def indicator(value: Indicator) -> common_pb2.Indicator:
    return common_pb2.Indicator(kind=int(value.kind), value=value.value)  # type: ignore[arg-type]


def money(value: Money) -> common_pb2.Money:
    return common_pb2.Money(currency_code=value.currency, units=value.units, nanos=value.nanos)


def _evidence(value: Evidence) -> report_pb2.Evidence:
    message = report_pb2.Evidence(
        sms_text=value.sms_text,
        attachments=[
            report_pb2.Attachment(sha256=a.sha256, size_bytes=a.size_bytes, media_type=a.media_type)
            for a in value.attachments
        ],
    )
    if value.call_time is not None:
        message.call_time.CopyFrom(timestamp(value.call_time))
    if value.amount_requested is not None:
        message.amount_requested.CopyFrom(money(value.amount_requested))
    return message


def _review(value: Review) -> report_pb2.Review:
    return report_pb2.Review(
        decision=int(value.decision),  # type: ignore[arg-type]
        reason=value.reason,
        reviewer=value.reviewer,
        review_time=timestamp(value.time),
    )


def report(value: Report, *, staff: bool) -> report_pb2.Report:
    """A report as its caller may see it: the review history is for staff only."""
    message = report_pb2.Report(
        name=report_name(value.id),
        kind=int(value.kind),  # type: ignore[arg-type]
        indicators=[indicator(i) for i in value.indicators],
        description=value.description,
        evidence=_evidence(value.evidence),
        category=int(value.category),  # type: ignore[arg-type]
        status=int(value.status),  # type: ignore[arg-type]
        reporter=value.reporter,
        anonymous=value.anonymous,
        duplicate_of=report_name(value.duplicate_of) if value.duplicate_of else "",
        case=case_name(value.case_id) if value.case_id else "",
        create_time=timestamp(value.create_time),
        update_time=timestamp(value.update_time),
        findings=[finding(f) for f in value.findings],
    )
    if value.incident_time is not None:
        message.incident_time.CopyFrom(timestamp(value.incident_time))
    resolution = value.resolution
    if resolution is not None:
        message.resolution.CopyFrom(_review(resolution))
    if staff:
        message.reviews.extend(_review(r) for r in value.reviews)
    return message


def _payee(value: Payee) -> report_pb2.Payee:
    message = report_pb2.Payee(
        account=indicator(value.account),
        bank_order=value.bank_order,
        stop_payment_status=int(value.status),  # type: ignore[arg-type]
        status_detail=value.status_detail,
    )
    if value.amount is not None:
        message.amount.CopyFrom(money(value.amount))
    if value.status_time is not None:
        message.status_time.CopyFrom(timestamp(value.status_time))
    if value.held_amount is not None:
        message.held_amount.CopyFrom(money(value.held_amount))
    if value.hold_expire_time is not None:
        message.hold_expire_time.CopyFrom(timestamp(value.hold_expire_time))
    message.transaction_references.extend(value.transaction_references)
    return message


def _case_event(value: CaseEvent) -> report_pb2.CaseEvent:
    return report_pb2.CaseEvent(
        type=int(value.type),  # type: ignore[arg-type]
        status=int(value.status),  # type: ignore[arg-type]
        text=value.text,
        actor=value.actor,
        create_time=timestamp(value.time),
    )


def case(value: Case) -> report_pb2.Case:
    message = _case_fields(value)
    message.status = int(value.status)  # type: ignore[assignment]
    message.officer = value.officer
    message.events.extend(_case_event(e) for e in value.events)
    message.held_amount.CopyFrom(money(case_lifecycle.held_amount(value.payees)))
    message.update_time.CopyFrom(timestamp(value.update_time or value.create_time))
    return message


def finding(value: Finding) -> report_pb2.ReportedIndicator:
    return report_pb2.ReportedIndicator(
        indicator=indicator(value.indicator),
        standing=int(value.standing),  # type: ignore[arg-type]
        reporter_count=value.reporter_count,
    )


def queued_indicator(value: QueuedIndicator) -> report_pb2.ReviewIndicator:
    return report_pb2.ReviewIndicator(
        indicator=finding(value.finding),
        open_report_count=value.open_reports,
        distinct_reporter_count=value.distinct_reporters,
        oldest_report_time=timestamp(value.oldest),
        newest_report_time=timestamp(value.newest),
    )


def _case_fields(value: Case) -> report_pb2.Case:
    return report_pb2.Case(
        name=case_name(value.id),
        description=value.description,
        category=int(value.category),  # type: ignore[arg-type]
        amount_lost=money(value.amount_lost),
        incident_time=timestamp(value.incident_time),
        payees=[_payee(p) for p in value.payees],
        suspect_indicators=[indicator(i) for i in value.suspects],
        filer=value.filer,
        report=report_name(value.report_id) if value.report_id else "",
        create_time=timestamp(value.create_time),
    )


def stats(value: Stats) -> report_pb2.GetReportStatsResponse:
    return report_pb2.GetReportStatsResponse(
        total_count=sum(value.by_status.values()),
        status_counts=[
            report_pb2.StatusCount(status=int(s), count=n)  # type: ignore[arg-type]
            for s, n in sorted(value.by_status.items())
        ],
        kind_counts=[
            report_pb2.KindCount(kind=int(k), count=n)  # type: ignore[arg-type]
            for k, n in sorted(value.by_kind.items())
        ],
        corroborated_indicator_count=value.corroborated,
        confirmed_indicator_count=value.confirmed,
    )


def audit_event(value: AuditEntry) -> report_pb2.AuditEvent:
    return report_pb2.AuditEvent(
        name=f"auditEvents/{value.id}",
        event_time=timestamp(value.event_time),
        actor=value.actor,
        record=value.record,
        fields=list(value.fields),
        purpose=value.purpose,
        request_id=value.request_id,
    )
