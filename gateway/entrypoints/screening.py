"""Call screening for carriers: a risk look-up, a decision and, for a risky caller
(MEDIUM or higher), a contact record and a warning to the callee — composed, with no rule of its own
beyond turning a verdict into an action."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

import grpc

from gateway.service_layer.background import Background
from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from services.api.antifraud.risk.v1 import risk_pb2
from services.api.antifraud.risk.v1.risk_pb2_grpc import RiskServiceStub
from services.api.antifraud.warning.v1 import warning_pb2
from services.api.antifraud.warning.v1.warning_pb2_grpc import WarningServiceStub
from services.common import context as ctx
from services.common.errors import InvalidArgument
from services.common.indicators import IndicatorKind, InvalidIndicator, normalize
from services.common.logs import get_logger

log = get_logger("gateway.screening")
Context = grpc.aio.ServicerContext[Any, Any]
MAX_EVENTS = 1000
RISK_BUDGET_SECONDS = 0.5
_NAMESPACE = uuid.UUID("5b0a0c6e-3b1e-4d64-9a8e-6a3c2f1d0e11")

A = gateway_pb2
LABELS = {
    common_pb2.RISK_LEVEL_LOW: "反诈提醒：该号码有涉诈风险，请谨慎接听",
    common_pb2.RISK_LEVEL_MEDIUM: "反诈提醒：该号码被多人举报涉嫌诈骗，请勿转账或透露验证码",
    common_pb2.RISK_LEVEL_HIGH: "该号码已确认为诈骗号码，呼叫已拦截",
}
WARNING_TEXT = {
    common_pb2.RISK_LEVEL_MEDIUM: (
        "您正在与一个被多人举报涉嫌诈骗的号码联系。请勿转账、勿透露验证码；如有疑问请拨打96110。"
    ),
    common_pb2.RISK_LEVEL_HIGH: (
        "我们拦截了一个已确认的诈骗号码对您的呼叫。任何自称公检法、客服要求转账的都是诈骗。"
    ),
}


def decide(verdict: risk_pb2.Verdict) -> tuple[int, str]:
    """The action for a caller's verdict: verified callers are labelled as such (反诈名片),
    confirmed fraud is blocked, corroborated reports warn, weak signals label."""
    if verdict.verified:
        return A.SCREEN_ACTION_LABEL, verdict.verified_label
    level = verdict.level
    if level == common_pb2.RISK_LEVEL_HIGH:
        return A.SCREEN_ACTION_BLOCK, LABELS[level]
    if level == common_pb2.RISK_LEVEL_MEDIUM:
        return A.SCREEN_ACTION_WARN, LABELS[level]
    if level == common_pb2.RISK_LEVEL_LOW:
        return A.SCREEN_ACTION_LABEL, LABELS[level]
    return A.SCREEN_ACTION_ALLOW, ""


#: A callee talking to a suspected fraudster gets the full medium tier (a 96110 call);
#: one whose fraud call was blocked is told so by push or SMS.
CALLEE_WARNING_LEVEL = {
    common_pb2.RISK_LEVEL_MEDIUM: common_pb2.RISK_LEVEL_MEDIUM,
    common_pb2.RISK_LEVEL_HIGH: common_pb2.RISK_LEVEL_LOW,
}


class ScreeningServicer(gateway_pb2_grpc.CallScreeningServiceServicer):
    def __init__(
        self, risk: RiskServiceStub, warning: WarningServiceStub, background: Background
    ) -> None:
        self.risk = risk
        self.warning = warning
        self.background = background

    async def ScreenEvents(
        self, request_iterator: AsyncIterator[gateway_pb2.ScreenEventsRequest], context: Context
    ) -> AsyncIterator[gateway_pb2.ScreenEventsResponse]:
        carrier = ctx.current_principal()
        async for request in request_iterator:
            if not 1 <= len(request.events) <= MAX_EVENTS:
                raise InvalidArgument.field("events", f"must hold 1 to {MAX_EVENTS} events")
            yield await self._screen(carrier, request.events)

    async def _screen(self, carrier: str, events: Any) -> gateway_pb2.ScreenEventsResponse:
        response = gateway_pb2.ScreenEventsResponse()
        checked: list[tuple[gateway_pb2.ScreenDecision, Any, str, str]] = []
        for event in events:
            decision = response.decisions.add(
                event_id=event.event_id[:128], action=A.SCREEN_ACTION_ALLOW
            )
            try:
                caller = normalize(IndicatorKind.PHONE_NUMBER, event.caller).value
                callee = normalize(IndicatorKind.PHONE_NUMBER, event.callee).value
            except InvalidIndicator as exc:
                decision.error = f"caller or callee: {exc.reason}"
                continue
            if event.kind not in (warning_pb2.CONTACT_KIND_CALL, warning_pb2.CONTACT_KIND_SMS):
                decision.error = "kind: must be CONTACT_KIND_CALL or CONTACT_KIND_SMS"
                continue
            checked.append((decision, event, caller, callee))
        if not checked:
            return response
        try:
            verdicts = await self.risk.BatchCheckIndicators(
                risk_pb2.BatchCheckIndicatorsRequest(
                    indicators=[
                        common_pb2.Indicator(kind=common_pb2.INDICATOR_KIND_PHONE_NUMBER, value=c)
                        for _, _, c, _ in checked
                    ]
                ),
                timeout=RISK_BUDGET_SECONDS,
            )
        except grpc.aio.AioRpcError as err:
            # Fail open: an outage of ours must not stop people's calls.
            for decision, *_ in checked:
                decision.error = f"risk look-up unavailable ({err.code().name}); allowed"
            return response
        contacts = warning_pb2.RecordContactEventsRequest()
        now = datetime.now(UTC)
        for (decision, event, caller, callee), verdict in zip(
            checked, verdicts.verdicts, strict=True
        ):
            decision.verdict.CopyFrom(verdict)
            decision.action, decision.label = decide(verdict)  # type: ignore[assignment]
            if verdict.level >= common_pb2.RISK_LEVEL_MEDIUM and not verdict.verified:
                # Only a contact with a risky caller can serve a warning: the rest are the
                # carriers' records, not ours (docs/data.md).
                contact = contacts.events.add(
                    caller=caller, callee=callee, kind=event.kind, caller_level=verdict.level
                )
                if event.HasField("time"):
                    contact.time.CopyFrom(event.time)
                else:
                    contact.time.FromDatetime(now)
            level = CALLEE_WARNING_LEVEL.get(verdict.level)
            if level is not None and not verdict.verified:
                warn = self._warning(carrier, event.event_id, caller, callee, level, verdict)
                self.background.run("warn callee", partial(self.warning.DispatchWarning, warn))
        if contacts.events:
            self.background.run(
                "record contacts", partial(self.warning.RecordContactEvents, contacts)
            )
        return response

    @staticmethod
    def _warning(
        carrier: str, event_id: str, caller: str, callee: str, level: int, verdict: risk_pb2.Verdict
    ) -> warning_pb2.DispatchWarningRequest:
        # The same event screened twice warns once: the request id is derived from it.
        request_id = str(uuid.uuid5(_NAMESPACE, f"{carrier}|{event_id}|{caller}|{callee}"))
        return warning_pb2.DispatchWarningRequest(
            request_id=request_id,
            recipient=warning_pb2.RecipientRef(phone_number=callee),
            level=level,  # type: ignore[arg-type]
            reason=warning_pb2.WarningReason(
                indicator=common_pb2.Indicator(
                    kind=common_pb2.INDICATOR_KIND_PHONE_NUMBER, value=caller
                ),
                category=verdict.categories[0]
                if verdict.categories
                else common_pb2.FRAUD_CATEGORY_OTHER,
            ),
            text=WARNING_TEXT[verdict.level],
        )
