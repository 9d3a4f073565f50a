"""The one server runtime: every service and the gateway run through here.

A ``Component`` is what a service's bootstrap builds: its servicers and what
must happen before it is ready (migrations, loading) and after it stops.
``start_server`` binds it to a grpc.aio server with health, reflection and the
shared interceptors; ``serve`` runs it until SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from services.common import context as ctx
from services.common import metrics, tokens
from services.common.auth import CallerPolicy, TokenInterceptor
from services.common.config import ServerSettings
from services.common.interceptors import ServerInterceptor
from services.common.logs import get_logger

log = get_logger("server")

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Binding:
    """One gRPC service of a component: its full name, its adder and its servicer."""

    name: str
    add: Callable[[Any, grpc.aio.Server], None]
    servicer: Any


class Component(Protocol):
    """A service as the runtime sees it."""

    name: str

    def bindings(self) -> Sequence[Binding]: ...

    # Optional: ``interceptors() -> list[grpc.aio.ServerInterceptor]`` run inside the shared one.
    # Optional: ``async refresh_metrics()``, called every few seconds for gauges that need
    # a database read (services.common.metrics).

    def caller_policy(self) -> CallerPolicy:
        """Who may call which method (deny by default); open only where another layer
        authenticates (the gateway's API keys) or for the partner simulators."""

    async def start(self) -> None:
        """Migrate, load and start background work; the server is SERVING after it returns."""

    async def stop(self) -> None:
        """Stop background work and release resources; the server has stopped taking calls."""


@dataclass
class RunningServer:
    component: Component
    server: grpc.aio.Server
    port: int
    health: HealthServicer
    names: list[str] = field(default_factory=list)
    refresher: asyncio.Task[None] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def set_serving(self, serving: bool) -> None:
        status = SERVING if serving else NOT_SERVING
        for name in ["", *self.names]:
            await self.health.set(name, status)

    async def stop(self, grace: float) -> None:
        """Health NOT_SERVING, finish in-flight calls within ``grace``, then stop the component."""
        await self.health.enter_graceful_shutdown()
        if self.refresher is not None:
            self.refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.refresher
        await self.server.stop(grace)
        await self.component.stop()


def _credentials(settings: ServerSettings) -> grpc.ServerCredentials | None:
    tls = settings.tls
    if not tls.enabled:
        return None
    with open(tls.key, "rb") as key, open(tls.cert, "rb") as cert:
        pair = (key.read(), cert.read())
    if tls.client_ca:
        with open(tls.client_ca, "rb") as ca:
            return grpc.ssl_server_credentials(
                [pair], root_certificates=ca.read(), require_client_auth=True
            )
    return grpc.ssl_server_credentials([pair])


async def start_server(component: Component, settings: ServerSettings) -> RunningServer:
    """Start the component, then the server; health says SERVING once both are up."""
    # The shared interceptor is outermost, so whatever a component's own interceptors
    # raise (the gateway's authentication) is mapped and logged like any other error.
    extra = getattr(component, "interceptors", None)
    if component.name in tokens.ISSUERS:
        tokens.ensure_key(component.name)  # first start on one machine; Secrets elsewhere
    guard = TokenInterceptor(component.name, component.caller_policy())
    server = grpc.aio.server(
        interceptors=[
            ServerInterceptor(component.name),
            guard,
            *(extra() if extra is not None else []),
        ],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [binding.name for binding in component.bindings()]
    for binding in component.bindings():
        binding.add(binding.servicer, server)
    reflection.enable_server_reflection(
        [*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    credentials = _credentials(settings)
    if credentials is None:
        port = server.add_insecure_port(settings.addr)
    else:
        port = server.add_secure_port(settings.addr, credentials)
    running = RunningServer(component, server, port, health_servicer, names)
    await running.set_serving(False)
    # The component is ready (migrated, loaded) before the port takes calls, so no
    # call is answered from a half-loaded state. Background work it starts calls
    # peers as this service.
    as_service = ctx.service_var.set(component.name)
    try:
        await component.start()
    finally:
        ctx.service_var.reset(as_service)
    try:
        await server.start()
    except BaseException:
        await component.stop()
        raise
    await running.set_serving(True)
    refresh = getattr(component, "refresh_metrics", None)
    if refresh is not None:
        running.refresher = asyncio.create_task(_refresh_metrics(component.name, refresh))
    log.info("serving", service=component.name, port=port, services=names)
    return running


async def _refresh_metrics(service: str, refresh: Callable[[], Awaitable[None]]) -> None:
    while True:
        try:
            await refresh()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a database that is down: the gauges keep their last value
            log.warning("metrics not refreshed", service=service, error=type(exc).__name__)
        await asyncio.sleep(metrics.REFRESH_SECONDS)


async def serve(
    component: Component,
    settings: ServerSettings,
    on_ready: Callable[[RunningServer], None] | None = None,
) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully; ``on_ready`` once SERVING."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # SIGTERM is honoured while starting too (a database that does not answer): the
    # start is given up at once rather than when its connect finally times out.
    starting = asyncio.ensure_future(start_server(component, settings))
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait([starting, stopped], return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        log.info("stopped before serving", service=component.name)
        return
    stopped.cancel()
    running = starting.result()
    address = metrics.metrics_addr(component.name, settings.addr)
    if address is not None:
        metrics.serve_metrics(address)
    if on_ready is not None:
        on_ready(running)
    await stop.wait()
    log.info("stopping", service=component.name, grace_seconds=settings.grace_seconds)
    await running.stop(settings.grace_seconds)
    log.info("stopped", service=component.name)
