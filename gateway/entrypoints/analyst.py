"""Counts for analysts, from the report and warning services; partial when one is down."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc

from gateway.adapters.backends import Backends
from services.api.antifraud.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from services.api.antifraud.report.v1 import report_pb2
from services.api.antifraud.warning.v1 import warning_pb2
from services.common.errors import Upstream

Context = grpc.aio.ServicerContext[Any, Any]
_DOWN = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


class AnalystServicer(gateway_pb2_grpc.AnalystServiceServicer):
    def __init__(self, backends: Backends) -> None:
        self.backends = backends

    async def GetDashboard(
        self, request: gateway_pb2.GetDashboardRequest, context: Context
    ) -> gateway_pb2.GetDashboardResponse:
        start = request.start_time
        if not request.HasField("start_time"):
            start.FromDatetime(datetime.now(UTC) - timedelta(days=7))
        results: tuple[Any, ...] = await asyncio.gather(
            self.backends.report.GetReportStats(report_pb2.GetReportStatsRequest(start_time=start)),
            self.backends.warning.GetWarningStats(
                warning_pb2.GetWarningStatsRequest(start_time=start)
            ),
            return_exceptions=True,
        )
        response = gateway_pb2.GetDashboardResponse()
        named = zip(("report", "warning"), results, ("reports", "warnings"), strict=True)
        for name, result, field in named:
            if isinstance(result, grpc.aio.AioRpcError) and result.code() in _DOWN:
                response.unavailable.append(name)
            elif isinstance(result, grpc.aio.AioRpcError):
                raise Upstream.of(result)  # a refusal or a bug is not "unavailable"
            elif isinstance(result, BaseException):
                raise result
            else:
                getattr(response, field).CopyFrom(result)
        return response
