"""Call screening for carriers: each request forwarded to the warning service, which looks
the callers up, decides and records the side effects before it answers; the decisions are
streamed back. No rule here (services/warning/domain/screening.py holds it).

When the warning service cannot answer in time, the calls go through (fail open: an outage
of ours must not stop people's calls) and each decision says NOT_RECORDED, so the carrier
sends the events again later.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from services.api.antifraud.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from services.api.antifraud.warning.v1 import warning_pb2
from services.api.antifraud.warning.v1.warning_pb2_grpc import WarningServiceStub
from services.common.errors import InvalidArgument
from services.common.logs import get_logger

log = get_logger("gateway.screening")
Context = grpc.aio.ServicerContext[Any, Any]
MAX_EVENTS = 1000
#: The risk look-up (0.5 s) and the commit, while the phone rings.
SCREEN_BUDGET_SECONDS = 1.5


class ScreeningServicer(gateway_pb2_grpc.CallScreeningServiceServicer):
    def __init__(self, warning: WarningServiceStub) -> None:
        self.warning = warning

    async def ScreenEvents(
        self, request_iterator: AsyncIterator[gateway_pb2.ScreenEventsRequest], context: Context
    ) -> AsyncIterator[gateway_pb2.ScreenEventsResponse]:
        async for request in request_iterator:
            if not 1 <= len(request.events) <= MAX_EVENTS:
                raise InvalidArgument.field("events", f"must hold 1 to {MAX_EVENTS} events")
            yield await self._screen(request.events)

    async def _screen(self, events: Any) -> gateway_pb2.ScreenEventsResponse:
        forwarded = warning_pb2.ScreenContactEventsRequest(
            events=[
                warning_pb2.ScreeningEvent(
                    event_id=e.event_id,
                    caller=e.caller,
                    callee=e.callee,
                    kind=e.kind,
                    time=e.time if e.HasField("time") else None,
                )
                for e in events
            ]
        )
        try:
            screened = await self.warning.ScreenContactEvents(
                forwarded, timeout=SCREEN_BUDGET_SECONDS
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgument.field("events", err.details() or "invalid") from None
            log.warning("screening unavailable; calls allowed", code=err.code().name)
            return gateway_pb2.ScreenEventsResponse(
                decisions=[
                    gateway_pb2.ScreenDecision(
                        event_id=e.event_id[:128],
                        action=gateway_pb2.SCREEN_ACTION_ALLOW,
                        error=f"screening unavailable ({err.code().name}); allowed",
                        record_state=warning_pb2.SCREENING_RECORD_STATE_NOT_RECORDED,
                    )
                    for e in events
                ]
            )
        return gateway_pb2.ScreenEventsResponse(
            decisions=[
                gateway_pb2.ScreenDecision(
                    event_id=d.event_id,
                    action=d.action,  # the same numbers: ScreeningAction and ScreenAction
                    label=d.label,
                    verdict=d.verdict if d.HasField("verdict") else None,
                    error=d.error,
                    record_state=d.record_state,
                )
                for d in screened.decisions
            ]
        )
