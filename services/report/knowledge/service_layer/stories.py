"""Turning a confirmed case into a draft case story."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from services.common import audit
from services.common.errors import FailedPrecondition, NotFound
from services.common.principals import Principal
from services.report.adapters import tables
from services.report.adapters.repository import ReportRepository
from services.report.domain.model import ReportStatus, case_name
from services.report.knowledge.domain import access, stories
from services.report.knowledge.domain.articles import Article
from services.report.knowledge.domain.redaction import RedactionKind
from services.report.knowledge.service_layer import articles
from services.report.knowledge.service_layer.unit_of_work import KnowledgeUnitOfWork


async def draft_from_case(
    uow: KnowledgeUnitOfWork, caller: Principal, case_id: str, now: datetime
) -> tuple[Article, dict[RedactionKind, int]]:
    access.require_staff(caller, "draft stories from cases")
    cases = ReportRepository(uow.conn)
    case = await cases.get_case(case_id)
    if case is None:
        raise NotFound(f"{case_name(case_id)} not found")
    # A case is confirmed through its report (the suspects it names), which analysts review.
    report = await cases.get_report(case.report_id) if case.report_id else None
    if report is None or report.status is not ReportStatus.CONFIRMED:
        raise FailedPrecondition(
            f"{case_name(case_id)} is not confirmed: an analyst must confirm its report first"
        )
    # The story is redacted from the text as typed (the stored one is masked, and a masked
    # card or number would survive into the story half-hidden); reading it is audited.
    original = await cases.original("cases", case_id)
    if original is not None:
        await audit.record(
            uow.conn,
            tables.audit_events,
            actor=caller.audit_actor,
            record=case_name(case_id),
            fields=("description",),
            purpose="draft a case story (redacted before anyone reads it)",
            now=now,
        )
        case = replace(case, description=original.description)
    story = stories.compose(case)
    article = await articles.insert(
        uow, story.content, caller.audit_actor, now, source_case=case_id
    )
    return article, story.redactions
