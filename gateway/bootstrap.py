"""Wires the gateway: keys, rate limits, the authenticated pass-through of service
methods, and the composite services."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pool

from gateway.adapters import tables
from gateway.adapters.backends import Backends
from gateway.adapters.keystore import KeyStore
from gateway.domain.policy import POLICY, PROXIED
from gateway.entrypoints.admin import AdminServicer
from gateway.entrypoints.analyst import AnalystServicer
from gateway.entrypoints.auth_interceptor import AuthInterceptor
from gateway.entrypoints.citizen import CitizenServicer
from gateway.entrypoints.payee import PayeeServicer
from gateway.entrypoints.proxy import Proxy, Route
from gateway.entrypoints.screening import ScreeningServicer
from gateway.service_layer.auth import Authenticator
from gateway.service_layer.streams import OpenStreams
from services.api.antifraud.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from services.api.antifraud.identity.v1 import identity_pb2  # noqa: F401 - registers descriptors
from services.api.antifraud.report.v1 import knowledge_pb2, report_pb2  # noqa: F401
from services.api.antifraud.risk.v1 import risk_pb2  # noqa: F401
from services.api.antifraud.warning.v1 import warning_pb2  # noqa: F401
from services.common.auth import CallerPolicy
from services.common.config import env_float, env_int
from services.common.db import Database
from services.common.idempotency import retention_job
from services.common.logs import get_logger
from services.common.ratelimit import RateLimiter
from services.common.retention import Retention, RetentionSettings
from services.common.server import Binding
from services.common.throttle import FailureThrottle

VERSIONS = Path(__file__).parent / "adapters" / "migrations" / "versions"
log = get_logger("gateway")
#: How often open streams are checked against revocations (a revoked key's streams
#: end within this plus one database read).
REVOCATION_POLL_SECONDS = 0.5
_BACKEND_OF_PACKAGE = {
    "antifraud.risk.v1": "risk",
    "antifraud.report.v1": "report",
    "antifraud.warning.v1": "warning",
    "antifraud.identity.v1": "identity",
}


def _service(name: str) -> Any:
    return gateway_pb2.DESCRIPTOR.services_by_name[name]


class GatewayComponent:
    name = "gateway"

    def __init__(
        self,
        db: Database,
        *,
        rate: float,
        burst: float,
        failures_per_second: float = 5.0,
        failure_burst: float = 20.0,
        streams_per_key: int = 20,
        retention: RetentionSettings | None = None,
        key_stale_seconds: float = 600.0,
    ) -> None:
        self.db = db
        kept = retention or RetentionSettings()
        self.retention = Retention.of(
            db, [retention_job(tables.idempotency_keys, kept.idempotency)], kept
        )
        self.keys = KeyStore(db, stale_seconds=key_stale_seconds)
        self.limiter = RateLimiter(rate, burst)
        self.backends = Backends()
        self.auth = Authenticator(
            self.keys, self.limiter, FailureThrottle(self.name, failures_per_second, failure_burst)
        )
        self.streams = OpenStreams(streams_per_key)
        self._revocations: asyncio.Task[None] | None = None

    def interceptors(self) -> list[grpc.aio.ServerInterceptor]:  # type: ignore[type-arg]
        return [AuthInterceptor(self.auth, POLICY, self.streams)]

    def _proxies(self) -> dict[str, Proxy]:
        pool = descriptor_pool.Default()
        routes: dict[str, dict[str, Route]] = defaultdict(dict)
        for path, rule in PROXIED.items():
            service_name, method_name = path.strip("/").split("/")
            service = pool.FindServiceByName(service_name)
            channel = self.backends.channels[_BACKEND_OF_PACKAGE[service.file.package]]
            routes[service_name][path] = Route(service.methods_by_name[method_name], channel, rule)
        return {name: Proxy(found) for name, found in routes.items()}

    def caller_policy(self) -> CallerPolicy:
        # Open to tokens: callers prove themselves with API keys (AuthInterceptor).
        return CallerPolicy.open(self.name)

    def bindings(self) -> Sequence[Binding]:
        found = [Binding(name, _add_generic, proxy) for name, proxy in self._proxies().items()]
        b = self.backends
        found += [
            Binding(
                _service("CitizenService").full_name,
                gateway_pb2_grpc.add_CitizenServiceServicer_to_server,
                CitizenServicer(b, self.keys, self.db),
            ),
            Binding(
                _service("CallScreeningService").full_name,
                gateway_pb2_grpc.add_CallScreeningServiceServicer_to_server,
                ScreeningServicer(b.warning),
            ),
            Binding(
                _service("PayeeService").full_name,
                gateway_pb2_grpc.add_PayeeServiceServicer_to_server,
                PayeeServicer(b),
            ),
            Binding(
                _service("AnalystService").full_name,
                gateway_pb2_grpc.add_AnalystServiceServicer_to_server,
                AnalystServicer(b),
            ),
            Binding(
                _service("AdminService").full_name,
                gateway_pb2_grpc.add_AdminServiceServicer_to_server,
                AdminServicer(self.keys, self.streams),
            ),
        ]
        return found

    async def migrate(self) -> None:
        await self.db.migrate(VERSIONS)

    async def start(self) -> None:
        await self.migrate()
        self._revocations = asyncio.create_task(self._follow_revocations(), name="revocations")
        self.retention.start()

    async def _follow_revocations(self) -> None:
        """End the open streams of keys revoked anywhere (any replica, the CLI)."""
        while True:
            await asyncio.sleep(REVOCATION_POLL_SECONDS)
            open_keys = self.streams.keys()
            if not open_keys:
                continue
            try:
                revoked = await self.keys.revoked_among(open_keys)
            except Exception as exc:  # the key store is down: keep the streams, look again
                log.warning("revocations not read", error=type(exc).__name__)
                continue
            for key_id in revoked:
                ended = self.streams.revoke(key_id)
                log.info("streams of a revoked key ended", key_id=key_id, streams=ended)

    async def stop(self) -> None:
        await self.retention.stop()
        if self._revocations is not None:
            self._revocations.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._revocations
        await self.backends.close()
        await self.db.dispose()


def _add_generic(proxy: Proxy, server: grpc.aio.Server) -> None:
    server.add_generic_rpc_handlers((proxy,))


def build(
    name: str = "gateway", *, url: str | None = None, schema: str | None = None
) -> GatewayComponent:
    return GatewayComponent(
        Database("gateway", url=url, schema=schema),
        rate=env_float("GATEWAY_RATE_PER_SECOND", 50.0),
        burst=env_float("GATEWAY_RATE_BURST", 100.0),
        failures_per_second=env_float("GATEWAY_AUTH_FAILURES_PER_SECOND", 5.0),
        failure_burst=env_float("GATEWAY_AUTH_FAILURE_BURST", 20.0),
        streams_per_key=env_int("GATEWAY_STREAMS_PER_KEY", 20),
        retention=RetentionSettings.from_env(),
        key_stale_seconds=env_float("GATEWAY_KEY_STALE_SECONDS", 600.0),
    )
