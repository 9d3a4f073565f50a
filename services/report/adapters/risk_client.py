"""The risk service as the report service uses it: set and withdraw our assertions."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.risk.v1 import risk_pb2, risk_pb2_grpc
from services.common.clients import open_channel
from services.common.indicators import Indicator
from services.report.adapters.peers import raise_for
from services.report.domain.listing import RiskLevel
from services.report.domain.model import FraudCategory

SERVICE = risk_pb2.DESCRIPTOR.services_by_name["RiskService"].full_name
CITIZEN_REPORTS = risk_pb2.SOURCE_TYPE_CITIZEN_REPORTS
CASE = risk_pb2.SOURCE_TYPE_CASE


def _indicator(indicator: Indicator) -> common_pb2.Indicator:
    return common_pb2.Indicator(kind=int(indicator.kind), value=indicator.value)  # type: ignore[arg-type]


class RiskClient:
    """Calls carry a request id derived from our outbox key, so a repeat is ignored by the peer."""

    def __init__(self, target: str, *, budget: float = 5.0) -> None:
        self.target = target
        self.budget = budget
        self._channel: grpc.aio.Channel | None = None
        self._stubs: risk_pb2_grpc.RiskServiceStub | None = None

    @property
    def _stub(self) -> risk_pb2_grpc.RiskServiceStub:
        # Opened on first use, inside the running event loop (a channel is bound to its loop).
        if self._channel is None:
            # Upsert and Retire are idempotent by request id: safe for the channel to retry.
            self._channel = open_channel(
                self.target, retry_services=[SERVICE], budget=self.budget, server_name="risk"
            )
            self._stubs = risk_pb2_grpc.RiskServiceStub(self._channel)  # type: ignore[no-untyped-call]
        assert self._stubs is not None
        return self._stubs

    async def upsert(
        self,
        request_id: str,
        indicator: Indicator,
        *,
        case: bool,
        source_id: str,
        level: RiskLevel,
        categories: Sequence[FraudCategory],
        reason: str,
        reporter_count: int = 0,
    ) -> None:
        request = risk_pb2.UpsertIndicatorRequest(
            request_id=request_id,
            indicator=_indicator(indicator),
            assertion=risk_pb2.Assertion(
                source_type=CASE if case else CITIZEN_REPORTS,
                source_id=source_id,
                level=int(level),  # type: ignore[arg-type]
                categories=[int(c) for c in categories],  # type: ignore[misc]
                reason=reason,
                reporter_count=reporter_count,
            ),
        )
        try:
            await self._stub.UpsertIndicator(request)
        except grpc.aio.AioRpcError as exc:
            raise_for(exc, "risk UpsertIndicator")

    async def retire(
        self, request_id: str, indicator: Indicator, *, source_id: str, reason: str
    ) -> None:
        """Withdraw our citizen-reports assertion; one that is not there is already withdrawn."""
        request = risk_pb2.RetireIndicatorRequest(
            request_id=request_id,
            indicator=_indicator(indicator),
            source_type=CITIZEN_REPORTS,
            source_id=source_id,
            reason=reason,
        )
        try:
            await self._stub.RetireIndicator(request)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.NOT_FOUND:
                return
            raise_for(exc, "risk RetireIndicator")

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close(None)
            self._channel = self._stubs = None
