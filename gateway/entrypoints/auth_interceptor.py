"""Every call through the gateway is authenticated, authorised and rate limited
before its handler runs; a stream is counted against its key while it is open.
Runs inside the shared interceptor, so its errors are mapped and logged like any
other. Calls the gateway then makes to the services carry a token signed for the
authenticated caller (services.common.clients)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import grpc

from gateway.domain.policy import Rule
from gateway.service_layer.auth import AUTH_HEADER, Authenticator
from gateway.service_layer.streams import OpenStreams
from services.common import context as ctx
from services.common.auth import guarded
from services.common.interceptors import PASS_THROUGH_PREFIXES

Context = grpc.aio.ServicerContext[Any, Any]


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(
        self, auth: Authenticator, policy: Mapping[str, Rule], streams: OpenStreams
    ) -> None:
        self.auth = auth
        self.policy = policy
        self.streams = streams

    async def _admit(self, method: str, context: Context) -> None:
        rule = self.policy[method]
        metadata = dict(context.invocation_metadata() or ())
        caller = await self.auth.authenticate(str(metadata.get(AUTH_HEADER, "")), context.peer())
        self.auth.authorize(caller, rule, method)
        # Whoever the client claims to be, downstream calls speak for who it really is.
        ctx.principal_var.set(caller.principal.header)
        ctx.on_behalf_var.set(caller.principal.header)
        # The region an officer's key serves travels in the signed token, as who they are.
        ctx.region_var.set(caller.principal.region)
        ctx.key_id_var.set(caller.key_id)
        if ctx.deadline_var.get() is None:
            ctx.deadline_var.set(time.monotonic() + rule.budget)

    def _stream_scope(self) -> AbstractAsyncContextManager[None]:
        return self.streams.hold(ctx.key_id_var.get())

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
        return guarded(handler, method, self._admit, self._stream_scope)
