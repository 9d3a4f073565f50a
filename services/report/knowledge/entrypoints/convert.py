"""Knowledge domain values to protobuf messages (the way in is requests.py)."""

from __future__ import annotations

from services.api.antifraud.report.v1 import knowledge_pb2 as kpb
from services.report.domain.model import case_name
from services.report.entrypoints.convert import timestamp
from services.report.knowledge.domain.articles import Article, article_name
from services.report.knowledge.domain.calls import AnnouncedCall, CallCheck, call_name
from services.report.knowledge.domain.notices import Notice, notice_name
from services.report.knowledge.domain.redaction import RedactionKind
from services.report.knowledge.service_layer.trends import Trends


def article(value: Article, *, staff: bool, full: bool = True) -> kpb.Article:
    """An article as the caller may see it: who wrote it and from which case, staff only."""
    content = value.content
    message = kpb.Article(
        name=article_name(value.id),
        kind=int(content.kind),  # type: ignore[arg-type]
        title=content.title,
        summary=content.summary,
        body=content.body if full else "",
        categories=[int(c) for c in content.categories],  # type: ignore[misc]
        region=content.region,
        state=int(value.state),  # type: ignore[arg-type]
        create_time=timestamp(value.create_time),
        update_time=timestamp(value.update_time),
    )
    if staff:
        message.author = value.author
        message.source_case = case_name(value.source_case) if value.source_case else ""
    if value.publish_time is not None:
        message.publish_time.CopyFrom(timestamp(value.publish_time))
    return message


def redactions(counts: dict[RedactionKind, int]) -> list[kpb.RedactionCount]:
    return [
        kpb.RedactionCount(kind=int(kind), count=count)  # type: ignore[arg-type]
        for kind, count in sorted(counts.items())
        if count
    ]


def notice(value: Notice, *, staff: bool) -> kpb.Notice:
    return kpb.Notice(
        name=notice_name(value.id),
        title=value.title,
        body=value.body,
        issuer=value.issuer,
        region=value.region,
        start_time=timestamp(value.start_time),
        end_time=timestamp(value.end_time),
        author=value.author if staff else "",
        create_time=timestamp(value.create_time),
    )


def announced_call(value: AnnouncedCall) -> kpb.AnnouncedCall:
    return kpb.AnnouncedCall(
        name=call_name(value.id),
        caller_number=value.caller_number,
        masked_callee_phone_number=value.masked_callee,
        reason=value.reason,
        station_name=value.station_name,
        announcer=value.announcer,
        create_time=timestamp(value.create_time),
        expire_time=timestamp(value.expire_time),
    )


def call_check(value: CallCheck) -> kpb.VerifyIncomingCallResponse:
    message = kpb.VerifyIncomingCallResponse(announced=value.announced, advice=value.advice)
    if value.call is not None:
        message.station_name = value.call.station_name
        message.reason = value.call.reason
        message.announce_time.CopyFrom(timestamp(value.call.create_time))
    return message


def trends(value: Trends, *, staff: bool) -> kpb.GetFraudTrendsResponse:
    message = kpb.GetFraudTrendsResponse(
        window_start_time=timestamp(value.start), window_end_time=timestamp(value.end)
    )
    for trend in value.trends:
        item = message.trends.add(
            category=int(trend.category),  # type: ignore[arg-type]
            confirmed_report_count=trend.confirmed_reports,
        )
        if trend.article is not None:
            item.article.CopyFrom(article(trend.article, staff=staff, full=False))
    return message
