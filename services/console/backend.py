"""Every call the console makes, in one place: the gateway, with the signed-in person's key.

The console is a client of the gateway only (never a service port, never a database): each
method here is one gateway RPC, or a short composition of them, so the RPCs behind a page
can change (the case lifecycle and per-indicator review to come) by changing this module.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from services.api.antifraud.common.v1 import common_pb2 as c
from services.api.antifraud.gateway.v1 import gateway_pb2 as gw
from services.api.antifraud.gateway.v1 import gateway_pb2_grpc as gw_grpc
from services.api.antifraud.report.v1 import report_pb2 as rp
from services.api.antifraud.report.v1 import report_pb2_grpc as rp_grpc
from services.api.antifraud.risk.v1 import risk_pb2 as rk
from services.api.antifraud.risk.v1 import risk_pb2_grpc as rk_grpc
from services.api.antifraud.warning.v1 import warning_pb2 as wn
from services.api.antifraud.warning.v1 import warning_pb2_grpc as wn_grpc
from services.common.clients import open_channel

#: The largest page the services serve.
PAGE = 500
#: Reports still open for a decision.
OPEN_STATUSES = (rp.REPORT_STATUS_RECEIVED, rp.REPORT_STATUS_UNDER_REVIEW)

T = TypeVar("T")


class BackendError(Exception):
    """A call the gateway refused or could not serve; ``code`` says how."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _stamp(when: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(when)
    return stamp


class Gateway:
    """One channel to the gateway, shared by every session."""

    def __init__(self, target: str, call_seconds: float) -> None:
        self.channel = open_channel(target, budget=call_seconds, server_name="gateway")
        self.call_seconds = call_seconds

    def as_person(self, api_key: str) -> Backend:
        return Backend(self, api_key)

    async def close(self) -> None:
        await self.channel.close(None)


class Backend:
    """The gateway as one signed-in person: every call carries their own key."""

    def __init__(self, gateway: Gateway, api_key: str) -> None:
        self._metadata = (("authorization", f"Bearer {api_key}"),)
        self._timeout = gateway.call_seconds
        channel = gateway.channel
        self._analyst = gw_grpc.AnalystServiceStub(channel)
        self._report = rp_grpc.ReportServiceStub(channel)
        self._risk = rk_grpc.RiskServiceStub(channel)
        self._warning = wn_grpc.WarningServiceStub(channel)

    async def _call(self, method: Callable[..., Awaitable[T]], request: Any) -> T:
        try:
            return await method(request, metadata=self._metadata, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise BackendError(exc.code(), exc.details() or "") from None

    async def _pages(
        self,
        method: Callable[..., Awaitable[Any]],
        request: Any,
        items: str,
        limit: int,
    ) -> list[Any]:
        found: list[Any] = []
        while len(found) < limit:
            request.page_size = min(PAGE, limit - len(found))
            page = await self._call(method, request)
            found.extend(getattr(page, items))
            if not page.next_page_token:
                break
            request.page_token = page.next_page_token
        return found[:limit]

    # --- who is signing in ----------------------------------------------------------------------

    async def dashboard(self) -> gw.GetDashboardResponse:
        """The analysts' counts; PERMISSION_DENIED for any key that is not an analyst's."""
        return await self._call(self._analyst.GetDashboard, gw.GetDashboardRequest())

    # --- reports and review ---------------------------------------------------------------------

    async def open_reports(self, limit: int) -> list[rp.Report]:
        """The review queue: reports waiting for a decision, oldest first."""
        request = rp.ListReportsRequest(statuses=OPEN_STATUSES, order_by="create_time")
        return await self._pages(self._report.ListReports, request, "reports", limit)

    async def reports_about(self, indicator: c.Indicator, limit: int) -> list[rp.Report]:
        request = rp.ListReportsRequest(indicator=indicator)
        return await self._pages(self._report.ListReports, request, "reports", limit)

    async def reports_since(self, start: datetime, limit: int) -> list[rp.Report]:
        request = rp.ListReportsRequest(start_time=_stamp(start))
        return await self._pages(self._report.ListReports, request, "reports", limit)

    async def review_indicator(self, indicator: c.Indicator, decision: int, reason: str) -> int:
        """Decides on every open report naming the value in one call (the report service's
        review per indicator: every report and every reporter's record takes it); how many
        reports took the decision."""
        request = rp.ReviewIndicatorReportsRequest(
            request_id=str(uuid.uuid4()),
            indicator=indicator,
            decision=decision,  # type: ignore[arg-type]
            reason=reason,
        )
        done = await self._call(self._report.ReviewIndicatorReports, request)
        return int(done.resolved_report_count)

    async def reveal(self, name: str, purpose: str) -> rp.RevealOriginalTextResponse:
        """The text as typed; the report service audits it before answering."""
        request = rp.RevealOriginalTextRequest(name=name, purpose=purpose)
        return await self._call(self._report.RevealOriginalText, request)

    # --- the risk list --------------------------------------------------------------------------

    async def indicator(self, indicator: c.Indicator) -> rk.GetIndicatorResponse | None:
        """The record and its recent changes; None for a value never listed."""
        try:
            request = rk.GetIndicatorRequest(indicator=indicator)
            return await self._call(self._risk.GetIndicator, request)
        except BackendError as exc:
            if exc.code is grpc.StatusCode.NOT_FOUND:
                return None
            raise

    # --- warnings -------------------------------------------------------------------------------

    async def warnings_about(self, indicator: c.Indicator, limit: int) -> list[wn.Warning]:
        request = wn.ListWarningsRequest(indicator=indicator)
        return await self._pages(self._warning.ListWarnings, request, "warnings", limit)

    async def warnings_of_fanout(self, fanout: str, limit: int) -> list[wn.Warning]:
        request = wn.ListWarningsRequest(fanout=fanout)
        return await self._pages(self._warning.ListWarnings, request, "warnings", limit)

    async def fanouts(self, indicator: c.Indicator | None, limit: int) -> list[wn.Fanout]:
        request = wn.ListFanoutsRequest(indicator=indicator)
        return await self._pages(self._warning.ListFanouts, request, "fanouts", limit)

    # --- cases and bank orders ------------------------------------------------------------------

    async def cases(self, limit: int) -> list[rp.Case]:
        return await self._pages(self._report.ListCases, rp.ListCasesRequest(), "cases", limit)

    async def case(self, name: str) -> rp.Case:
        """One case with its history and its orders' status."""
        found = await self._call(self._report.GetCase, rp.GetCaseRequest(name=name))
        case: rp.Case = found.case
        return case

    async def reply(self, name: str, text: str) -> rp.Case:
        """The officer's reply to the victim, as this officer (the report service records who)."""
        request = rp.ReplyToCaseRequest(request_id=str(uuid.uuid4()), name=name, text=text)
        done = await self._call(self._report.ReplyToCase, request)
        case: rp.Case = done.case
        return case

    async def bank_orders(self, limit: int, case_id: str = "") -> list[wn.BankOrder]:
        request = wn.ListBankOrdersRequest(case_id=case_id)
        return await self._pages(self._warning.ListBankOrders, request, "bank_orders", limit)

    # --- call and home-visit tasks --------------------------------------------------------------

    async def tasks(self, states: Sequence[int], limit: int) -> list[wn.Task]:
        found: list[wn.Task] = []
        for state in states:
            request = wn.ListTasksRequest(state=state)  # type: ignore[arg-type]
            found += await self._pages(self._warning.ListTasks, request, "tasks", limit)
        return found

    async def task(self, name: str) -> wn.Task:
        done = await self._call(self._warning.GetTask, wn.GetTaskRequest(name=name))
        task: wn.Task = done.task
        return task

    async def claim(self, name: str) -> wn.Task:
        done = await self._call(self._warning.ClaimTask, wn.ClaimTaskRequest(name=name))
        task: wn.Task = done.task
        return task

    async def complete(self, name: str, outcome: int, notes: str) -> wn.Task:
        request = wn.CompleteTaskRequest(name=name, outcome=outcome, notes=notes)  # type: ignore[arg-type]
        done = await self._call(self._warning.CompleteTask, request)
        task: wn.Task = done.task
        return task
