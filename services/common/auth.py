"""Every call into a service proves who makes it, and the service decides whether it may.

Each service declares a deny-by-default table of which callers may call which of
its methods: roles the gateway vouches for (citizen, carrier, bank, analyst; admin
everywhere) and the suite's services by name. :class:`TokenInterceptor` verifies the
signed token of each call (signature, issuer, audience, expiry), checks the table,
and only then lets the handler run with the verified principal in context. Failed
checks are limited per peer address before the signature is checked
(``services.common.throttle``, shared with the gateway): forged tokens cost little. It runs
inside the shared interceptor, so its refusals are mapped and logged like any error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, aclosing, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc

from services.common import context as ctx
from services.common import metrics, tokens
from services.common.config import env_float
from services.common.errors import PermissionDenied, Unauthenticated
from services.common.interceptors import PASS_THROUGH_PREFIXES
from services.common.principals import Principal, Role
from services.common.throttle import FailureThrottle

Context = grpc.aio.ServicerContext[Any, Any]


@dataclass(frozen=True)
class Callers:
    """Who may call one method: roles vouched for by the gateway, and services by name."""

    roles: frozenset[Role] = frozenset()
    services: frozenset[str] = frozenset()

    def allows(self, principal: Principal) -> bool:
        if principal.role is Role.ADMIN:
            return True
        if principal.role is Role.INTERNAL:
            return principal.subject in self.services
        return principal.role in self.roles

    def __or__(self, other: Callers) -> Callers:
        return Callers(self.roles | other.roles, self.services | other.services)


def roles(*names: Role) -> Callers:
    return Callers(roles=frozenset(names))


def services(*names: str) -> Callers:
    return Callers(services=frozenset(names))


def table(service: str, rules: Mapping[str, Callers]) -> dict[str, Callers]:
    """``{"Method": callers}`` of one gRPC service as full method paths."""
    return {f"/{service}/{method}": callers for method, callers in rules.items()}


class CallerPolicy:
    """A service's table of callers; ``open`` serves anyone (partner simulators, the gateway,
    whose own interceptor authenticates API keys)."""

    def __init__(self, audience: str, rules: Mapping[str, Callers] | None) -> None:
        self.audience = audience
        self.rules = None if rules is None else dict(rules)

    @classmethod
    def open(cls, audience: str) -> CallerPolicy:
        return cls(audience, None)

    @property
    def is_open(self) -> bool:
        return self.rules is None

    def methods(self) -> Iterable[str]:
        return () if self.rules is None else self.rules.keys()

    def check(self, method: str, principal: Principal) -> None:
        callers = None if self.rules is None else self.rules.get(method)
        if callers is None or not callers.allows(principal):
            who = principal.role.value if principal.role is not Role.INTERNAL else "service"
            name = principal.subject if principal.role is Role.INTERNAL else ""
            raise PermissionDenied(f"{who} {name} may not call {method}".replace("  ", " "))


def bearer(metadata: Mapping[str, Any], what: str) -> str:
    """The token of an ``authorization: Bearer <token>`` header; Unauthenticated without."""
    scheme, _, token = str(metadata.get(ctx.AUTHORIZATION_KEY, "")).partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(f"{what} is required: metadata 'authorization: Bearer <token>'")
    return token.strip()


Admit = Callable[[str, Context], Awaitable[None]]
StreamScope = Callable[[], AbstractAsyncContextManager[None]]


@asynccontextmanager
async def _no_scope() -> AsyncIterator[None]:
    yield


def guarded(
    handler: Any, method: str, admit: Admit, stream_scope: StreamScope | None = None
) -> Any:
    """``handler`` with ``admit(method, context)`` awaited before it runs, for every call
    kind; streaming calls also run inside ``stream_scope()`` (after admission)."""
    deserializer, serializer = handler.request_deserializer, handler.response_serializer
    scope = stream_scope or _no_scope
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
            # The handler's generator is closed here, in the call's own task, even when
            # the call is cancelled mid-stream (services.common.interceptors).
            async with scope(), aclosing(inner_us(request, context)) as responses:
                async for response in responses:
                    yield response

        return grpc.unary_stream_rpc_method_handler(unary_stream, deserializer, serializer)
    if handler.stream_unary:
        inner_su: Any = handler.stream_unary

        async def stream_unary(requests: Any, context: Context) -> Any:
            await admit(method, context)
            async with scope():
                return await inner_su(requests, context)

        return grpc.stream_unary_rpc_method_handler(stream_unary, deserializer, serializer)
    inner_ss: Any = handler.stream_stream

    async def stream_stream(requests: Any, context: Context) -> AsyncIterator[Any]:
        await admit(method, context)
        async with scope(), aclosing(inner_ss(requests, context)) as responses:
            async for response in responses:
                yield response

    return grpc.stream_stream_rpc_method_handler(stream_stream, deserializer, serializer)


class TokenInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Verifies each call's token and checks the caller against the service's table."""

    def __init__(
        self, service: str, policy: CallerPolicy, throttle: FailureThrottle | None = None
    ) -> None:
        self.service = service
        self.policy = policy
        self.verifier = tokens.Verifier(tokens.keyring(), policy.audience)
        self.throttle = throttle or FailureThrottle(
            service,
            env_float("AUTH_FAILURES_PER_SECOND", 5.0),
            env_float("AUTH_FAILURE_BURST", 20.0, minimum=1.0),
        )

    async def _admit(self, method: str, context: Context) -> None:
        ctx.service_var.set(self.service)
        if self.policy.is_open:
            return
        peer = context.peer()
        try:
            token = bearer(dict(context.invocation_metadata() or ()), "a signed token")
            if not self.verifier.remembers(token):
                # A token not verified lately: the signature check is the expensive part,
                # so an address that keeps failing is refused before it.
                self.throttle.check(peer)
            try:
                claims = self.verifier.verify(token)
            except tokens.InvalidToken as exc:
                raise Unauthenticated(str(exc)) from None
        except Unauthenticated:
            self.throttle.failed(peer)
            raise
        try:
            self.policy.check(method, claims.principal)
        except PermissionDenied:
            metrics.REFUSALS.labels(self.service, "permission_denied").inc()
            raise
        ctx.principal_var.set(claims.principal.header)
        ctx.region_var.set(claims.principal.region)
        ctx.key_id_var.set(claims.key_id)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(PASS_THROUGH_PREFIXES):
            return handler
        return guarded(handler, method, self._admit)
