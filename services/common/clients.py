"""Channels to peers: request id and deadline passed on, UNAVAILABLE retried where safe.

Every outgoing call made while serving a request carries that request's id and
at most its remaining time, capped by the budget the caller names.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import grpc

from services.common import context as ctx
from services.common.config import env

DEFAULT_BUDGET_SECONDS = 5.0


def _details(details: grpc.aio.ClientCallDetails, budget: float) -> grpc.aio.ClientCallDetails:
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    request_id = ctx.current_request_id()
    if request_id and ctx.REQUEST_ID_KEY not in metadata:
        metadata[ctx.REQUEST_ID_KEY] = request_id
    principal = ctx.current_principal()
    if principal and ctx.PRINCIPAL_KEY not in metadata:
        metadata[ctx.PRINCIPAL_KEY] = principal
    timeout = ctx.remaining_time(details.timeout if details.timeout is not None else budget)
    return grpc.aio.ClientCallDetails(
        details.method, timeout, metadata, details.credentials, details.wait_for_ready
    )


class _Propagate(
    grpc.aio.UnaryUnaryClientInterceptor,  # type: ignore[type-arg]
    grpc.aio.UnaryStreamClientInterceptor,  # type: ignore[type-arg]
    grpc.aio.StreamUnaryClientInterceptor,  # type: ignore[type-arg]
):
    def __init__(self, budget: float) -> None:
        self.budget = budget

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_details(details, self.budget), request)

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_details(details, self.budget), request)

    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(_details(details, self.budget), requests)


class _PropagateStream(grpc.aio.StreamStreamClientInterceptor):  # type: ignore[type-arg]
    """Streams keep their own timeout (often none): only the request id is passed on."""

    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        request_id = ctx.current_request_id()
        if request_id and ctx.REQUEST_ID_KEY not in metadata:
            metadata[ctx.REQUEST_ID_KEY] = request_id
        new = grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )
        return await continuation(new, requests)


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


def open_channel(
    target: str,
    *,
    retry_services: Sequence[str] = (),
    budget: float = DEFAULT_BUDGET_SECONDS,
) -> grpc.aio.Channel:
    """A channel to a peer with propagation, retries and (when configured) TLS."""
    options: list[tuple[str, Any]] = [
        ("grpc.service_config", service_config(retry_services)),
        ("grpc.enable_retries", 1),
        ("grpc.keepalive_time_ms", 30_000),
        # Fail fast on a peer that is down instead of waiting out the deadline.
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 2_000),
        # A peer back at a new address (a container restarted on a compose network) is
        # found within a second, not after gRPC's default 30 s between DNS resolutions.
        ("grpc.dns_min_time_between_resolutions_ms", 1_000),
        ("grpc.max_receive_message_length", 8 * 1024 * 1024),
    ]
    interceptors: list[Any] = [_Propagate(budget), _PropagateStream()]
    credentials = _channel_credentials()
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
    return grpc.aio.secure_channel(target, credentials, options=options, interceptors=interceptors)
