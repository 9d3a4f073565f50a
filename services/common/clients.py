"""Channels to peers: who calls, request id and deadline passed on, UNAVAILABLE retried.

Every outgoing call carries a signed token naming who makes it (this service, or
the caller the gateway authenticated) for the one service it goes to; a call made
while serving a request carries that request's id and at most its remaining time,
capped by the budget the caller names.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import grpc

from services.common import context as ctx
from services.common import metrics, tokens, tracing
from services.common.config import env
from services.common.logs import get_logger
from services.common.principals import Principal

log = get_logger("client")

DEFAULT_BUDGET_SECONDS = 5.0
#: Clients ping every 30 s; servers allow pings this often (services.common.server).
KEEPALIVE_MS = 30_000


#: gRPC packages whose service is served by a process of another name.
_AUDIENCE_OF_AREA = {"partner": "partners"}


def audience_of(method: str) -> str:
    """The service a method belongs to: ``/antifraud.risk.v1.RiskService/X`` → ``risk``."""
    parts = method.lstrip("/").split(".", 2)
    if len(parts) < 3 or parts[0] != "antifraud":
        return ""
    return _AUDIENCE_OF_AREA.get(parts[1], parts[1])


def outgoing_principal() -> Principal | None:
    """Who a call made now speaks for: the gateway's authenticated caller, else this service."""
    behalf = ctx.on_behalf_var.get()
    if behalf:
        return Principal.parse(behalf, ctx.region_var.get())
    service = ctx.service_var.get()
    return Principal.service(service) if service else None


def add_token(
    metadata: grpc.aio.Metadata, method: str, principal: Principal | None, key_id: str = ""
) -> None:
    """Put a signed token for ``principal`` and the method's service into ``metadata``."""
    audience = audience_of(method)
    if principal is None or not audience or ctx.AUTHORIZATION_KEY in metadata:
        return
    try:
        token = _minter().token(principal, audience, key_id)
    except tokens.InvalidToken as exc:
        # The callee answers UNAUTHENTICATED; say here why no token was sent.
        log.warning("no token sent", method=method, error=str(exc))
        return
    metadata[ctx.AUTHORIZATION_KEY] = f"Bearer {token}"


_minters: dict[int, tokens.Minter] = {}


def _minter() -> tokens.Minter:
    keyring = tokens.keyring()
    minter = _minters.get(id(keyring))
    if minter is None:
        _minters.clear()
        minter = _minters[id(keyring)] = tokens.Minter(keyring)
    return minter


def _details(
    details: grpc.aio.ClientCallDetails, budget: float | None, principal: Principal | None
) -> grpc.aio.ClientCallDetails:
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    request_id = ctx.current_request_id()
    if request_id and ctx.REQUEST_ID_KEY not in metadata:
        metadata[ctx.REQUEST_ID_KEY] = request_id
    method = details.method.decode() if isinstance(details.method, bytes) else details.method
    add_token(metadata, method, principal, ctx.key_id_var.get() if principal else "")
    tracing.inject(metadata)
    timeout = details.timeout
    if budget is not None:
        timeout = ctx.remaining_time(timeout if timeout is not None else budget)
    elif ctx.deadline_var.get() is not None:
        timeout = ctx.remaining_time(timeout if timeout is not None else float("inf"))
    return grpc.aio.ClientCallDetails(
        details.method, timeout, metadata, details.credentials, details.wait_for_ready
    )


class Propagate:
    """Request id, deadline and a signed token on every call of a channel.

    Streams keep their own timeout (often none), capped by the caller's deadline.
    grpc.aio files each interceptor under one kind only, so :meth:`interceptors` gives
    one per kind.
    """

    def __init__(self, budget: float = DEFAULT_BUDGET_SECONDS) -> None:
        self.budget = budget

    def principal(self, details: grpc.aio.ClientCallDetails) -> Principal | None:
        return outgoing_principal()

    def details(self, details: Any, stream: bool = True) -> grpc.aio.ClientCallDetails:
        return _details(details, None if stream else self.budget, self.principal(details))

    def interceptors(self) -> list[Any]:
        return [_UnaryUnary(self), _UnaryStream(self), _StreamUnary(self), _StreamStream(self)]


class _UnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    def __init__(self, propagate: Propagate) -> None:
        self.propagate = propagate

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self.propagate.details(details, stream=False), request)


class _UnaryStream(grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[type-arg]
    def __init__(self, propagate: Propagate) -> None:
        self.propagate = propagate

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self.propagate.details(details), request)


class _StreamUnary(grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[type-arg]
    def __init__(self, propagate: Propagate) -> None:
        self.propagate = propagate

    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self.propagate.details(details), requests)


class _StreamStream(grpc.aio.StreamStreamClientInterceptor):  # type: ignore[type-arg]
    def __init__(self, propagate: Propagate) -> None:
        self.propagate = propagate

    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self.propagate.details(details), requests)


class PartnerCalls(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    """Metrics and a client span for each call to one partner (partner calls are unary).

    Outermost on a partner's channel: the span is current when the trace context is put
    into the call's metadata, and the time counts the channel's retries.
    """

    def __init__(self, partner: str) -> None:
        self.partner = partner

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        full = details.method.decode() if isinstance(details.method, bytes) else details.method
        method = full.rsplit(".", 1)[-1]  # CarrierService/SendSms
        started = time.perf_counter()
        with tracing.client_span(method, **{"antifraud.partner": self.partner}) as span:
            call = await continuation(details, request)
            code = await call.code()
            if span is not None:
                tracing.end_status(span, code)
        metrics.PARTNER_CALLS.labels(self.partner, method, code.name).inc()
        metrics.PARTNER_SECONDS.labels(self.partner, method).observe(time.perf_counter() - started)
        return call


def service_config(retry_services: Sequence[str]) -> str:
    """Round robin over every address of a target (replicas: ``ipv4:a:1,b:2`` or a headless
    DNS name), and retry UNAVAILABLE a few times only on services safe to repeat."""
    balancing: list[dict[str, dict[str, str]]] = [{"round_robin": {}}]
    if not retry_services:
        return json.dumps({"loadBalancingConfig": balancing, "methodConfig": []})
    return json.dumps(
        {
            "loadBalancingConfig": balancing,
            "methodConfig": [
                {
                    "name": [{"service": name} for name in retry_services],
                    "retryPolicy": {
                        "maxAttempts": 4,
                        "initialBackoff": "0.05s",
                        "maxBackoff": "1s",
                        "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                }
            ],
        }
    )


def tls_enabled() -> bool:
    """Whether clients speak TLS (``ANTIFRAUD_TLS_CA`` is set)."""
    return bool(env("TLS_CA"))


def _channel_credentials() -> grpc.ChannelCredentials | None:
    ca = env("TLS_CA")
    if not ca:
        return None
    with open(ca, "rb") as f:
        root = f.read()
    cert, key = env("TLS_CLIENT_CERT"), env("TLS_CLIENT_KEY")
    if cert and key:
        with open(cert, "rb") as c, open(key, "rb") as k:
            return grpc.ssl_channel_credentials(root, k.read(), c.read())
    return grpc.ssl_channel_credentials(root)


def bare_channel(target: str, *, server_name: str = "") -> grpc.aio.Channel:
    """A channel with TLS as configured and nothing else (no tokens, no budget): for a
    client that brings its own credentials and deadlines, like a partner following the
    risk list through the gateway with its API key."""
    credentials = _channel_credentials()
    if credentials is None:
        return grpc.aio.insecure_channel(target)
    options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    return grpc.aio.secure_channel(target, credentials, options=options)


def open_channel(
    target: str,
    *,
    retry_services: Sequence[str] = (),
    budget: float = DEFAULT_BUDGET_SECONDS,
    propagate: Propagate | None = None,
    partner: str = "",
    server_name: str = "",
) -> grpc.aio.Channel:
    """A channel to a peer with propagation, retries and (when configured) TLS; to a partner
    (``partner`` names it) with its calls measured too.

    With TLS, the peer's certificate must name ``server_name`` (one of our processes:
    ``risk``, ``gateway``) whatever address it is reached at: a loopback address, a pod's
    address behind a headless Service, one of several workers. Without it, the host of
    ``target`` is checked, as for a partner's own endpoint."""
    options: list[tuple[str, Any]] = [
        ("grpc.service_config", service_config(retry_services)),
        ("grpc.enable_retries", 1),
        # Keepalive as the servers allow it (services.common.server.channel_options): a ping
        # every 30 s, idle or not, so a dead peer is noticed and idle streams stay up.
        ("grpc.keepalive_time_ms", KEEPALIVE_MS),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        # Fail fast on a peer that is down instead of waiting out the deadline; reconnect
        # at least every 0.5 s, so a peer that is back is connected again within the
        # outbox's probe (outbox.PROBE_SECONDS) and its backlog flows within a second
        # (issue 17). A refused connect twice a second costs a down peer nothing.
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 500),
        # A peer back at a new address (a container restarted on a compose network) is
        # found within a second, not after gRPC's default 30 s between DNS resolutions.
        ("grpc.dns_min_time_between_resolutions_ms", 1_000),
        ("grpc.max_receive_message_length", 8 * 1024 * 1024),
    ]
    interceptors = (propagate or Propagate(budget)).interceptors()
    if partner:
        interceptors.insert(0, PartnerCalls(partner))
    credentials = _channel_credentials()
    if credentials is not None and server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
    return grpc.aio.secure_channel(target, credentials, options=options, interceptors=interceptors)
