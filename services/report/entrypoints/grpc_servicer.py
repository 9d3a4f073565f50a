"""ReportService over gRPC: check the request, call the service layer, convert the answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from services.api.antifraud.report.v1 import report_pb2, report_pb2_grpc
from services.common import tracing, validation
from services.common.db import Database
from services.common.errors import InvalidArgument, PermissionDenied
from services.common.idempotency import fingerprint
from services.common.principals import Principal, Role
from services.common.validation import collecting
from services.report.adapters.repository import ReportRepository
from services.report.domain import access
from services.report.domain.corroboration import Rules
from services.report.domain.model import Report
from services.report.entrypoints import convert, requests
from services.report.entrypoints.callers import caller as _caller
from services.report.entrypoints.callers import once, scoped
from services.report.service_layer import cases, events, privacy, reports
from services.report.service_layer.intake import Intake, Submission
from services.report.service_layer.unit_of_work import ReportUnitOfWork

Context = grpc.aio.ServicerContext[Any, Any]
R = TypeVar("R", bound=Message)


class ReportServicer(report_pb2_grpc.ReportServiceServicer):
    def __init__(
        self,
        db: Database,
        rules: Rules,
        orders: cases.CaseOrders,
        wake: Callable[[], None],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        intake: Intake | None = None,
    ) -> None:
        self.db = db
        self.rules = rules
        self.orders = orders
        self.wake = wake
        self.clock = clock
        self.intake = intake or Intake(db, rules)

    def _uow(self) -> ReportUnitOfWork:
        return ReportUnitOfWork(self.db)

    async def _once(
        self,
        method: str,
        request_id: str,
        caller: Principal,
        request: Message,
        response_type: type[R],
        work: Callable[[ReportUnitOfWork], Awaitable[R]],
    ) -> R:
        """Run a create once per request id, then wake the relay for the events it wrote."""
        events.forget()
        response = await once(self._uow, method, request_id, caller, request, response_type, work)
        if events.written():
            self.wake()
        return response

    async def SubmitReport(
        self, request: report_pb2.SubmitReportRequest, context: Context
    ) -> report_pb2.SubmitReportResponse:
        caller = _caller()
        with collecting() as v:
            request_id = validation.request_id(v, request.request_id)
            new = requests.new_report(v, request.report, self.clock())
        assert new is not None

        staff = caller.staff

        def respond(report: Report) -> report_pb2.SubmitReportResponse:
            return report_pb2.SubmitReportResponse(report=convert.report(report, staff=staff))

        # Accepted together with the reports that arrive at the same time (intake.py).
        accepted = await self.intake.submit(
            Submission(
                caller=caller,
                new=new,
                request_id=scoped(request_id, caller),
                fingerprint=fingerprint(request),
                now=self.clock(),
                respond=respond,
                response_type=report_pb2.SubmitReportResponse,
                trace=tracing.current_traceparent(),
            )
        )
        if accepted.events:
            self.wake()
        assert isinstance(accepted.response, report_pb2.SubmitReportResponse)
        return accepted.response

    async def GetReport(
        self, request: report_pb2.GetReportRequest, context: Context
    ) -> report_pb2.GetReportResponse:
        caller = _caller()
        report_id = requests.resource_id(request.name, "reports")
        async with self.db.read() as conn:
            report = await reports.get(ReportRepository(conn), caller, report_id)
        return report_pb2.GetReportResponse(report=convert.report(report, staff=caller.staff))

    async def ListReports(
        self, request: report_pb2.ListReportsRequest, context: Context
    ) -> report_pb2.ListReportsResponse:
        caller = _caller()
        with collecting() as v:
            size = validation.page_size(v, request.page_size)
            where = requests.report_filter(v, request, self.clock())
        async with self.db.read() as conn:
            page = await reports.list_page(
                ReportRepository(conn), caller, where, size, request.page_token
            )
        return report_pb2.ListReportsResponse(
            reports=[convert.report(r, staff=caller.staff) for r in page.reports],
            next_page_token=page.next_page_token,
        )

    async def ReviewReport(
        self, request: report_pb2.ReviewReportRequest, context: Context
    ) -> report_pb2.ReviewReportResponse:
        caller = _caller()
        if not caller.staff:
            raise PermissionDenied("only analysts review reports")
        with collecting() as v:
            request_id = validation.request_id(v, request.request_id)
            decision, reason = requests.review(v, request)
        report_id = requests.resource_id(request.name, "reports")
        assert decision is not None

        async def work(uow: ReportUnitOfWork) -> report_pb2.ReviewReportResponse:
            report = await reports.review(
                uow, caller, report_id, decision, reason, self.rules, self.clock()
            )
            return report_pb2.ReviewReportResponse(report=convert.report(report, staff=True))

        return await self._once(
            "ReviewReport", request_id, caller, request, report_pb2.ReviewReportResponse, work
        )

    async def GetReportStats(
        self, request: report_pb2.GetReportStatsRequest, context: Context
    ) -> report_pb2.GetReportStatsResponse:
        caller = _caller()
        with collecting() as v:
            start, end = requests.time_range(v, request, self.clock())
        async with self.db.read() as conn:
            found = await reports.stats(ReportRepository(conn), caller, start, end)
        return convert.stats(found)

    async def FileCase(
        self, request: report_pb2.FileCaseRequest, context: Context
    ) -> report_pb2.FileCaseResponse:
        caller = _caller()
        if not access.may_file_case(caller):
            raise PermissionDenied("filing a case needs a registered user")
        with collecting() as v:
            request_id = validation.request_id(v, request.request_id)
            new = requests.new_case(v, request.case, self.clock())
        assert new is not None

        async def work(uow: ReportUnitOfWork) -> report_pb2.FileCaseResponse:
            case = await cases.file(uow, caller, new, self.rules, self.clock())
            return report_pb2.FileCaseResponse(case=convert.case(case))

        return await self._once(
            "FileCase", request_id, caller, request, report_pb2.FileCaseResponse, work
        )

    async def GetCase(
        self, request: report_pb2.GetCaseRequest, context: Context
    ) -> report_pb2.GetCaseResponse:
        caller = _caller()
        case_id = requests.resource_id(request.name, "cases")
        case = await cases.get_with_orders(self.db, caller, case_id, self.orders, self.clock())
        return report_pb2.GetCaseResponse(case=convert.case(case))

    async def ListCases(
        self, request: report_pb2.ListCasesRequest, context: Context
    ) -> report_pb2.ListCasesResponse:
        caller = _caller()
        with collecting() as v:
            size = validation.page_size(v, request.page_size)
            where = requests.case_filter(v, request, self.clock())
        async with self.db.read() as conn:
            page = await cases.list_page(
                ReportRepository(conn), caller, where, size, request.page_token
            )
        return report_pb2.ListCasesResponse(
            cases=[convert.case(c) for c in page.cases], next_page_token=page.next_page_token
        )

    async def AssignCase(
        self, request: report_pb2.AssignCaseRequest, context: Context
    ) -> report_pb2.AssignCaseResponse:
        caller = _caller()
        case_id = requests.resource_id(request.name, "cases")
        with collecting() as v:
            officer = requests.officer(v, request.officer)
        async with self._uow() as uow:
            case = await cases.assign(uow, caller, case_id, officer, self.clock())
            await uow.commit()
        return report_pb2.AssignCaseResponse(case=convert.case(case))

    async def ReplyToCase(
        self, request: report_pb2.ReplyToCaseRequest, context: Context
    ) -> report_pb2.ReplyToCaseResponse:
        caller = _caller()
        if not caller.staff:
            raise PermissionDenied("only officers reply to cases")
        with collecting() as v:
            request_id = validation.request_id(v, request.request_id)
            text = requests.case_text(v, "text", request.text, requests.MAX_REPLY)
        case_id = requests.resource_id(request.name, "cases")

        async def work(uow: ReportUnitOfWork) -> report_pb2.ReplyToCaseResponse:
            case = await cases.reply(uow, caller, case_id, text, self.clock())
            return report_pb2.ReplyToCaseResponse(case=convert.case(case))

        return await self._once(
            "ReplyToCase", request_id, caller, request, report_pb2.ReplyToCaseResponse, work
        )

    async def CloseCase(
        self, request: report_pb2.CloseCaseRequest, context: Context
    ) -> report_pb2.CloseCaseResponse:
        caller = _caller()
        if not caller.staff:
            raise PermissionDenied("only officers close cases")
        with collecting() as v:
            request_id = validation.request_id(v, request.request_id)
            reason = requests.case_text(v, "reason", request.reason, requests.MAX_REASON)
        case_id = requests.resource_id(request.name, "cases")
        # The banks' latest answers first: a hold that ended lets the case close.
        async with self.db.read() as conn:
            found = await cases.get(ReportRepository(conn), caller, case_id)
        await cases.refresh(self.db, found, self.orders, self.clock())

        async def work(uow: ReportUnitOfWork) -> report_pb2.CloseCaseResponse:
            case = await cases.close(uow, caller, case_id, reason, self.clock())
            return report_pb2.CloseCaseResponse(case=convert.case(case))

        return await self._once(
            "CloseCase", request_id, caller, request, report_pb2.CloseCaseResponse, work
        )

    async def ReviewIndicatorReports(
        self, request: report_pb2.ReviewIndicatorReportsRequest, context: Context
    ) -> report_pb2.ReviewIndicatorReportsResponse:
        caller = _caller()
        if not caller.staff:
            raise PermissionDenied("only analysts review reports")
        with collecting() as v:
            request_id = validation.request_id(v, request.request_id)
            indicator, decision, reason = requests.indicator_review(v, request)
        assert indicator is not None
        assert decision is not None

        async def work(uow: ReportUnitOfWork) -> report_pb2.ReviewIndicatorReportsResponse:
            done = await reports.review_indicator(
                uow, caller, indicator, decision, reason, self.rules, self.clock()
            )
            return report_pb2.ReviewIndicatorReportsResponse(
                indicator=convert.finding(done.finding),
                resolved_report_count=done.resolved_reports,
                reporter_count=done.reporters,
            )

        return await self._once(
            "ReviewIndicatorReports",
            request_id,
            caller,
            request,
            report_pb2.ReviewIndicatorReportsResponse,
            work,
        )

    async def ListReviewIndicators(
        self, request: report_pb2.ListReviewIndicatorsRequest, context: Context
    ) -> report_pb2.ListReviewIndicatorsResponse:
        caller = _caller()
        with collecting() as v:
            size = validation.page_size(v, request.page_size)
            where = requests.review_queue_filter(v, request)
        async with self.db.read() as conn:
            page = await reports.review_queue(
                ReportRepository(conn), caller, where, size, request.page_token
            )
        return report_pb2.ListReviewIndicatorsResponse(
            review_indicators=[convert.queued_indicator(e) for e in page.entries],
            next_page_token=page.next_page_token,
        )

    async def RevealOriginalText(
        self, request: report_pb2.RevealOriginalTextRequest, context: Context
    ) -> report_pb2.RevealOriginalTextResponse:
        caller = _caller()
        async with self._uow() as uow:
            found = await privacy.reveal(
                uow, caller, request.name, request.purpose[:200], self.clock()
            )
            # The audit event is durable before the text leaves the service.
            await uow.commit()
        return report_pb2.RevealOriginalTextResponse(
            description=found.description, sms_text=found.sms_text
        )

    async def ListAuditEvents(
        self, request: report_pb2.ListAuditEventsRequest, context: Context
    ) -> report_pb2.ListAuditEventsResponse:
        caller = _caller()
        with collecting() as v:
            record = validation.text(v, "record", request.record, max_len=160)
            actor = validation.text(v, "actor", request.actor, max_len=160)
            size = validation.page_size(v, request.page_size)
        found, token = await privacy.audit_log(
            self.db, caller, record, actor, size, request.page_token
        )
        return report_pb2.ListAuditEventsResponse(
            audit_events=[convert.audit_event(e) for e in found], next_page_token=token
        )

    async def ExportPersonalData(
        self, request: report_pb2.ExportPersonalDataRequest, context: Context
    ) -> report_pb2.ExportPersonalDataResponse:
        user_id = _internal_user(request.user_id)
        async with self._uow() as uow:
            found = await privacy.export(uow, user_id, self.clock())
            await uow.commit()
        return report_pb2.ExportPersonalDataResponse(
            reports=[convert.report(r, staff=False) for r in found.reports],
            cases=[convert.case(c) for c in found.cases],
        )

    async def ErasePersonalData(
        self, request: report_pb2.ErasePersonalDataRequest, context: Context
    ) -> report_pb2.ErasePersonalDataResponse:
        user_id = _internal_user(request.user_id)
        async with self._uow() as uow:
            erased = await privacy.erase(uow, user_id, self.clock())
            await uow.commit()
        return report_pb2.ErasePersonalDataResponse(
            deleted_report_count=erased.deleted_reports,
            anonymised_report_count=erased.anonymised_reports,
            anonymised_case_count=erased.anonymised_cases,
        )


def _internal_user(user_id: str) -> str:
    """Export and erasure are composed by the gateway for the citizen it authenticated: only
    internal callers may ask, and the user id must be one."""
    if _caller().role is not Role.INTERNAL:
        raise PermissionDenied("export and erasure go through the gateway's CitizenService")
    if not user_id or len(user_id) > 100:
        raise InvalidArgument.field("user_id", "required, up to 100 characters")
    return user_id
