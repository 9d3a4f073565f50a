"""Who may call which ReportService and KnowledgeService method (deny by default; admin
everywhere). Roles are callers the gateway vouches for."""

from __future__ import annotations

from services.common.auth import Callers, roles, services, table
from services.common.principals import Role

_CITIZEN = roles(Role.CITIZEN)
_ANALYST = roles(Role.ANALYST)
_CITIZEN_OR_ANALYST = roles(Role.CITIZEN, Role.ANALYST)

POLICY: dict[str, Callers] = {
    **table(
        "antifraud.report.v1.ReportService",
        {
            "SubmitReport": _CITIZEN_OR_ANALYST,
            "GetReport": _CITIZEN_OR_ANALYST,
            "ListReports": _CITIZEN_OR_ANALYST,
            "ReviewReport": _ANALYST,
            "GetReportStats": _ANALYST,
            # Police file a case for a victim at the counter; citizens file their own.
            "FileCase": _CITIZEN_OR_ANALYST,
            "GetCase": _CITIZEN_OR_ANALYST,
            "ListCases": _CITIZEN_OR_ANALYST,
            # Officers work the cases: assign, reply to the victim, close.
            "AssignCase": _ANALYST,
            "ReplyToCase": _ANALYST,
            "CloseCase": _ANALYST,
            # Review per indicator, and the queue grouped by indicator.
            "ReviewIndicatorReports": _ANALYST,
            "ListReviewIndicators": _ANALYST,
            # The text as typed, for an analyst with a purpose (audited).
            "RevealOriginalText": _ANALYST,
            # Who revealed what, and why.
            "ListAuditEvents": _ANALYST,
            # A citizen's export and erasure, composed by the gateway for the citizen.
            "ExportPersonalData": services("gateway"),
            "ErasePersonalData": services("gateway"),
        },
    ),
    **table(
        "antifraud.report.v1.KnowledgeService",
        {
            # Police and 96110 operators hold analyst keys: they write, publish, announce.
            "CreateArticle": _ANALYST,
            "UpdateArticle": _ANALYST,
            "PublishArticle": _ANALYST,
            "WithdrawArticle": _ANALYST,
            "DraftStoryFromCase": _ANALYST,
            "CreateNotice": _ANALYST,
            "AnnounceCall": _ANALYST,
            "GetArticle": _CITIZEN_OR_ANALYST,
            "ListArticles": _CITIZEN_OR_ANALYST,
            "SearchArticles": _CITIZEN_OR_ANALYST,
            "ListNotices": _CITIZEN_OR_ANALYST,
            "GetFraudTrends": _CITIZEN_OR_ANALYST,
            "VerifyIncomingCall": _CITIZEN,
        },
    ),
}
