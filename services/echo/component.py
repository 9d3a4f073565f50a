"""The echo server: the shared runtime with no work behind it, for benchmark baselines."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc

from services.api.antifraud.echo.v1 import echo_pb2, echo_pb2_grpc
from services.common.auth import CallerPolicy
from services.common.server import Binding


class EchoServicer(echo_pb2_grpc.EchoServiceServicer):
    async def Echo(
        self, request: echo_pb2.EchoRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> echo_pb2.EchoResponse:
        return echo_pb2.EchoResponse(indicator=request.indicator)

    async def EchoStream(
        self,
        request_iterator: AsyncIterator[echo_pb2.EchoStreamRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[echo_pb2.EchoStreamResponse]:
        async for request in request_iterator:
            yield echo_pb2.EchoStreamResponse(indicators=request.indicators)


class EchoComponent:
    name = "echo"

    def caller_policy(self) -> CallerPolicy:
        # The benchmark's baseline: the runtime without any work of ours.
        return CallerPolicy.open(self.name)

    def bindings(self) -> Sequence[Binding]:
        return [
            Binding(
                echo_pb2.DESCRIPTOR.services_by_name["EchoService"].full_name,
                echo_pb2_grpc.add_EchoServiceServicer_to_server,
                EchoServicer(),
            )
        ]

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def build(name: str = "echo") -> EchoComponent:
    return EchoComponent()
