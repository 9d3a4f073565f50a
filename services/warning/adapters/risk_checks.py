"""Look-ups of callers on the risk list (RiskService.BatchCheckIndicators), for screening."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.risk.v1 import risk_pb2, risk_pb2_grpc
from services.common.clients import open_channel

#: A call is ringing: the look-up gets half a second, then the call is let through.
BUDGET_SECONDS = 0.5


class RiskUnavailable(Exception):
    """The look-up failed; ``code`` names how."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class RiskChecks:
    def __init__(self, target: str) -> None:
        self._target = target
        self._channel: grpc.aio.Channel | None = None

    def _stub(self) -> risk_pb2_grpc.RiskServiceStub:
        # Opened on first use: a channel belongs to the event loop it was made in.
        if self._channel is None:
            self._channel = open_channel(self._target, budget=BUDGET_SECONDS, server_name="risk")
        return risk_pb2_grpc.RiskServiceStub(self._channel)  # type: ignore[no-untyped-call]

    async def phone_verdicts(self, numbers: Sequence[str]) -> list[risk_pb2.Verdict]:
        """The verdicts of E.164 numbers, in order."""
        request = risk_pb2.BatchCheckIndicatorsRequest(
            indicators=[
                common_pb2.Indicator(kind=common_pb2.INDICATOR_KIND_PHONE_NUMBER, value=n)
                for n in numbers
            ]
        )
        try:
            reply = await self._stub().BatchCheckIndicators(request, timeout=BUDGET_SECONDS)
        except grpc.aio.AioRpcError as exc:
            raise RiskUnavailable(exc.code().name) from None
        return list(reply.verdicts)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close(None)
            self._channel = None
