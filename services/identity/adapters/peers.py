"""gRPC clients of our own peers: the risk service (verdicts) and the warning service (notices)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.risk.v1 import risk_pb2, risk_pb2_grpc
from services.api.antifraud.warning.v1 import warning_pb2, warning_pb2_grpc
from services.common.clients import open_channel
from services.common.indicators import Indicator
from services.identity.adapters.partners import call_partner
from services.identity.domain.lookups import PartnerFailure, SourceStatus
from services.identity.service_layer.ports import NotificationRefused, RecipientUnknown

S = TypeVar("S")

RISK_SERVICE = risk_pb2.DESCRIPTOR.services_by_name["RiskService"].full_name
WARNING_SERVICE = warning_pb2.DESCRIPTOR.services_by_name["WarningService"].full_name

#: Answers from the warning service that a retry can cure.
_TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.CANCELLED,
}


class _Peer:
    """A channel opened on first use (inside the event loop that serves) and closed on stop."""

    service: str
    #: The process serving it: the name its certificate must carry.
    peer: str

    def __init__(self, target: str, timeout: float) -> None:
        self.target = target
        self.timeout = timeout
        self._channel: grpc.aio.Channel | None = None

    def stub(self, factory: Callable[[grpc.aio.Channel], S]) -> S:
        return factory(self.channel)

    @property
    def channel(self) -> grpc.aio.Channel:
        if self._channel is None:
            # Only reads, or calls with a request id, are made: safe to repeat.
            self._channel = open_channel(
                self.target,
                retry_services=[self.service],
                budget=self.timeout,
                server_name=self.peer,
            )
        return self._channel

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close(None)
            self._channel = None


class GrpcRiskChecker(_Peer):
    service = RISK_SERVICE
    peer = "risk"

    async def check(self, indicator: Indicator) -> Any:
        request = risk_pb2.CheckIndicatorRequest(
            indicator=common_pb2.Indicator(
                kind=f"INDICATOR_KIND_{indicator.kind.name}", value=indicator.value
            )
        )
        stub = self.stub(risk_pb2_grpc.RiskServiceStub)
        reply = await call_partner(
            "risk", lambda: stub.CheckIndicator(request, timeout=self.timeout)
        )
        return reply.verdict


class GrpcWarningNotifier(_Peer):
    service = WARNING_SERVICE
    peer = "warning"

    async def notify(
        self,
        request_id: str,
        *,
        user_id: str | None,
        phone_e164: str | None,
        text: str,
        result: bool,
    ) -> None:
        recipient = (
            warning_pb2.RecipientRef(user_id=user_id)
            if user_id
            else warning_pb2.RecipientRef(phone_number=phone_e164 or "")
        )
        request = warning_pb2.SendNotificationRequest(
            request_id=request_id,
            recipient=recipient,
            text=text,
            purpose=(
                warning_pb2.NOTIFICATION_PURPOSE_VERIFICATION_RESULT
                if result
                else warning_pb2.NOTIFICATION_PURPOSE_VERIFICATION_REQUEST
            ),
        )
        stub = self.stub(warning_pb2_grpc.WarningServiceStub)
        try:
            await stub.SendNotification(request, timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            if code is grpc.StatusCode.NOT_FOUND and user_id:
                raise RecipientUnknown(user_id) from None
            if code in _TRANSIENT:
                status = (
                    SourceStatus.DEADLINE_EXCEEDED
                    if code is grpc.StatusCode.DEADLINE_EXCEEDED
                    else SourceStatus.UNAVAILABLE
                )
                raise PartnerFailure("warning", status, code.name) from None
            raise NotificationRefused(f"{code.name}: {exc.details()}") from None


class GrpcContactChecker(_Peer):
    """The warning service's contact records, for the payee decision."""

    service = WARNING_SERVICE
    peer = "warning"

    async def recent_risky_contact(self, phone_e164: str) -> bool:
        request = warning_pb2.CheckRecentContactsRequest(phone_number=phone_e164)
        stub = self.stub(warning_pb2_grpc.WarningServiceStub)
        reply = await call_partner(
            "warning", lambda: stub.CheckRecentContacts(request, timeout=self.timeout)
        )
        return bool(reply.risky_number_count > 0)
