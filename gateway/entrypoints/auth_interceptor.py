"""Every call through the gateway is authenticated, authorised and rate limited
before its handler runs. Runs inside the shared interceptor, so its errors are
mapped and logged like any other."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import grpc

from gateway.domain.policy import Rule
from gateway.service_layer.auth import AUTH_HEADER, Authenticator
from services.common import context as ctx
from services.common.interceptors import PASS_THROUGH_PREFIXES

Context = grpc.aio.ServicerContext[Any, Any]


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(self, auth: Authenticator, policy: Mapping[str, Rule]) -> None:
        self.auth = auth
        self.policy = policy

    async def _admit(self, method: str, context: Context) -> None:
        rule = self.policy[method]
        metadata = dict(context.invocation_metadata() or ())
        caller = await self.auth.authenticate(str(metadata.get(AUTH_HEADER, "")))
        self.auth.authorize(caller, rule, method)
        # Whatever the client sent as x-principal is replaced by who it really is.
        ctx.principal_var.set(caller.principal.header)
        if ctx.deadline_var.get() is None:
            ctx.deadline_var.set(time.monotonic() + rule.budget)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(PASS_THROUGH_PREFIXES):
            return handler
        if method not in self.policy:
            return None  # not served by the gateway: UNIMPLEMENTED
        admit = self._admit
        deserializer, serializer = handler.request_deserializer, handler.response_serializer
        if handler.unary_unary:
            inner_uu: Any = handler.unary_unary

            async def unary_unary(request: Any, context: Context) -> Any:
                await admit(method, context)
                return await inner_uu(request, context)

            return grpc.unary_unary_rpc_method_handler(unary_unary, deserializer, serializer)
        if handler.unary_stream:
            inner_us: Any = handler.unary_stream

            async def unary_stream(request: Any, context: Context) -> AsyncIterator[Any]:
                await admit(method, context)
                async for response in inner_us(request, context):
                    yield response

            return grpc.unary_stream_rpc_method_handler(unary_stream, deserializer, serializer)
        if handler.stream_unary:
            inner_su: Any = handler.stream_unary

            async def stream_unary(requests: Any, context: Context) -> Any:
                await admit(method, context)
                return await inner_su(requests, context)

            return grpc.stream_unary_rpc_method_handler(stream_unary, deserializer, serializer)
        inner_ss: Any = handler.stream_stream

        async def stream_stream(requests: Any, context: Context) -> AsyncIterator[Any]:
            await admit(method, context)
            async for response in inner_ss(requests, context):
                yield response

        return grpc.stream_stream_rpc_method_handler(stream_stream, deserializer, serializer)
