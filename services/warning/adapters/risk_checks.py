"""Look-ups of callers on the risk list (RiskService.BatchCheckIndicators), for screening.

Concurrent screenings share their look-ups: while one BatchCheckIndicators is in flight,
the numbers asked for meanwhile gather and go together in the next one (each number once),
so N screenings arriving together cost one or two round trips to the risk service, not N.
Nothing waits on purpose: a look-up asked for while none is in flight is sent at once.
A batch the risk service refuses as a whole for its content (INVALID_ARGUMENT) is asked
again request by request, so one bad request never fails the others; an outage fails the
batch's requests at once (each would only time out the same way). A shared look-up runs
as the warning service alone, with no caller's request id, deadline or trace; its span
links to the span of each screening it answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import grpc
from opentelemetry.trace import SpanContext

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.risk.v1 import risk_pb2, risk_pb2_grpc
from services.common import context as ctx
from services.common import tracing
from services.common.clients import open_channel

#: A call is ringing: the look-up gets half a second, then the call is let through.
BUDGET_SECONDS = 0.5
#: The risk service's limit of values per BatchCheckIndicators.
MAX_VALUES = 1000


class RiskUnavailable(Exception):
    """The look-up failed; ``code`` names how."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


#: A screening's numbers, the future of their verdicts, and the span it asks from.
_Ask = tuple[list[str], "asyncio.Future[list[risk_pb2.Verdict]]", SpanContext | None]


class RiskChecks:
    def __init__(self, target: str, *, shared: bool = True) -> None:
        self._target = target
        self._channel: grpc.aio.Channel | None = None
        #: False: every request its own RPC (as before the look-ups were shared).
        self._shared = shared
        self._waiting: list[_Ask] = []
        self._sender: asyncio.Task[None] | None = None
        #: RPCs sent and the requests they answered (the bench and tests read them).
        self.rpcs = 0
        self.requests = 0

    def _stub(self) -> risk_pb2_grpc.RiskServiceStub:
        # Opened on first use: a channel belongs to the event loop it was made in.
        if self._channel is None:
            self._channel = open_channel(self._target, budget=BUDGET_SECONDS, server_name="risk")
        return risk_pb2_grpc.RiskServiceStub(self._channel)  # type: ignore[no-untyped-call]

    async def phone_verdicts(self, numbers: Sequence[str]) -> list[risk_pb2.Verdict]:
        """The verdicts of E.164 numbers, in order."""
        self.requests += 1
        if not self._shared or len(numbers) >= MAX_VALUES:
            return await self._ask(list(numbers))
        answer: asyncio.Future[list[risk_pb2.Verdict]] = asyncio.get_running_loop().create_future()
        self._waiting.append((list(numbers), answer, tracing.current_span_context()))
        if self._sender is None or self._sender.done():
            # Not the first caller's context: the look-ups are for every waiting screening
            # (their trace links to each: ``tracing.linked``).
            self._sender = asyncio.create_task(
                self._send_waiting(), name="warning-risk-checks", context=ctx.for_many_callers()
            )
        return await answer

    async def _send_waiting(self) -> None:
        """Send what is waiting, one RPC per up to MAX_VALUES distinct numbers, until
        nothing is left; what arrives during a round goes in the next."""
        while self._waiting:
            batch: list[_Ask] = []
            values: dict[str, int] = {}
            while self._waiting:
                numbers = self._waiting[0][0]
                fresh = {n for n in numbers if n not in values}
                if batch and len(values) + len(fresh) > MAX_VALUES:
                    break
                batch.append(self._waiting.pop(0))
                for n in numbers:
                    values.setdefault(n, len(values))
            callers = [caller for _, _, caller in batch]
            try:
                with tracing.linked("screening risk look-ups", callers, requests=len(batch)):
                    verdicts = await self._ask(list(values))
            except RiskUnavailable as exc:
                if exc.code == grpc.StatusCode.INVALID_ARGUMENT.name and len(batch) > 1:
                    await asyncio.gather(*(self._alone(numbers, a) for numbers, a, _ in batch))
                    continue
                for _, answer, _ in batch:
                    if not answer.done():
                        answer.set_exception(RiskUnavailable(exc.code))
                continue
            except BaseException as exc:  # cancelled (stop) or a bug: nobody is left waiting
                for _, answer, _ in batch:
                    if not answer.done():
                        answer.set_exception(RiskUnavailable(type(exc).__name__))
                raise
            for numbers, answer, _ in batch:
                if not answer.done():  # its caller may have gone away
                    answer.set_result([verdicts[values[n]] for n in numbers])

    async def _alone(
        self, numbers: list[str], answer: asyncio.Future[list[risk_pb2.Verdict]]
    ) -> None:
        try:
            found = await self._ask(numbers)
        except RiskUnavailable as exc:
            if not answer.done():
                answer.set_exception(exc)
            return
        if not answer.done():
            answer.set_result(found)

    async def _ask(self, numbers: list[str]) -> list[risk_pb2.Verdict]:
        request = risk_pb2.BatchCheckIndicatorsRequest(
            indicators=[
                common_pb2.Indicator(kind=common_pb2.INDICATOR_KIND_PHONE_NUMBER, value=n)
                for n in numbers
            ]
        )
        self.rpcs += 1
        try:
            reply = await self._stub().BatchCheckIndicators(request, timeout=BUDGET_SECONDS)
        except grpc.aio.AioRpcError as exc:
            raise RiskUnavailable(exc.code().name) from None
        return list(reply.verdicts)

    async def close(self) -> None:
        if self._sender is not None and not self._sender.done():
            self._sender.cancel()
        self._sender = None
        for _, answer, _ in self._waiting:
            if not answer.done():
                answer.set_exception(RiskUnavailable("CANCELLED"))
        self._waiting.clear()
        if self._channel is not None:
            await self._channel.close(None)
            self._channel = None
