"""The one server runtime: every service and the gateway run through here.

A ``Component`` is what a service's bootstrap builds: its servicers and what
must happen before it is ready (migrations, loading) and after it stops.
``start_server`` binds it to a grpc.aio server with health, reflection (v1 and
v1alpha) and the shared interceptors; ``serve`` runs it until SIGTERM or Ctrl-C.

- Readiness: while the component's own database does not answer, health says
  NOT_SERVING, and SERVING again once it does (a probe every few seconds).
- Connections: keepalive pings from clients every 30 s are welcome, with or
  without calls; a connection lives at most ``ANTIFRAUD_MAX_CONNECTION_AGE_SECONDS``
  (then GOAWAY, with a grace for its calls), so clients reconnect and new replicas
  behind a Service receive their share.
- Workers: with ``settings.worker`` set, several processes serve one address
  (SO_REUSEPORT); each has its own health, readiness, drain and shutdown.
- Shutdown drains: NOT_SERVING first, ``ANTIFRAUD_DRAIN_SECONDS`` during which
  calls are still taken (load balancers stop sending), then no new calls and
  ``ANTIFRAUD_GRACE_SECONDS`` for the ones in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection, reflection_pb2
from grpc_reflection.v1alpha._async import ReflectionServicer

from services.common import context as ctx
from services.common import metrics, tokens, tracing
from services.common.auth import CallerPolicy, TokenInterceptor
from services.common.clients import KEEPALIVE_MS
from services.common.config import ServerSettings, env_float
from services.common.db import Database
from services.common.interceptors import ServerInterceptor
from services.common.logs import get_logger

log = get_logger("server")

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
#: grpcio-reflection 1.85 ships only v1alpha; v1 has the same messages under another
#: package (same fields, same numbers), so the v1alpha servicer answers both.
REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"
#: How often readiness asks the component's database whether it answers.
PROBE_SECONDS = 2.0


def channel_options(reuse_port: bool = False) -> list[tuple[str, Any]]:
    """Server options: message sizes, the keepalive policy clients follow, connection age;
    SO_REUSEPORT only for a worker that shares its address with the others (grpcio's
    multiprocessing example): otherwise a second server on a held port must fail."""
    age = env_float("MAX_CONNECTION_AGE_SECONDS", 300.0)
    age_grace = env_float("MAX_CONNECTION_AGE_GRACE_SECONDS", 30.0)
    return [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.so_reuseport", 1 if reuse_port else 0),
        # Clients (services.common.clients) ping every 30 s, idle or not: allow pings
        # three times as often so jitter never counts as abuse (GOAWAY too_many_pings).
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", KEEPALIVE_MS // 3),
        ("grpc.http2.max_ping_strikes", 5),
        # The server pings idle clients too, to let go of dead connections.
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.keepalive_timeout_ms", 20_000),
        # gRPC adds +-10 % jitter so replicas' clients do not reconnect all at once.
        ("grpc.max_connection_age_ms", int(age * 1000)),
        ("grpc.max_connection_age_grace_ms", int(age_grace * 1000)),
    ]


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
    probe: asyncio.Task[None] | None = None
    #: The plaintext health-only server and its port, when one was asked for.
    health_server: grpc.aio.Server | None = None
    health_port: int = 0
    #: What the health service says for the server as a whole, for /healthz.
    serving: bool = False

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def set_serving(self, serving: bool) -> None:
        self.serving = serving
        status = SERVING if serving else NOT_SERVING
        for name in ["", *self.names]:
            await self.health.set(name, status)

    async def stop(self, grace: float, drain: float = 0.0) -> None:
        """Health NOT_SERVING; calls still taken for ``drain`` seconds; then no new calls and
        ``grace`` seconds for those in flight; then the component stops."""
        self.serving = False
        await self.health.enter_graceful_shutdown()
        for task in (self.refresher, self.probe):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.refresher = self.probe = None
        if drain > 0:
            await asyncio.sleep(drain)
        await self.server.stop(grace)
        if self.health_server is not None:
            await self.health_server.stop(0)
        await self.component.stop()

    async def watch_database(self, db: Database) -> None:
        """Readiness follows the database: NOT_SERVING while it does not answer."""
        reachable = True
        while True:
            await asyncio.sleep(PROBE_SECONDS)
            try:
                await db.ping()
                now = True
            except Exception as exc:  # whatever the driver raises, the answer is "not now"
                now, reason = False, type(exc).__name__
            if now == reachable:
                continue
            reachable = now
            if now:
                log.info("database reachable again", service=self.component.name)
            else:
                log.warning("database unreachable", service=self.component.name, error=reason)
            await self.set_serving(now)


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
        options=channel_options(reuse_port=settings.worker > 0),
    )
    health_servicer = HealthServicer()
    adder = _generic_only(server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, adder)
    names = [binding.name for binding in component.bindings()]
    for binding in component.bindings():
        binding.add(binding.servicer, adder)
    _enable_reflection([*names, health.SERVICE_NAME], server)
    credentials = _credentials(settings)
    if credentials is None:
        port = server.add_insecure_port(settings.addr)
    else:
        port = server.add_secure_port(settings.addr, credentials)
    running = RunningServer(component, server, port, health_servicer, names)
    if settings.health_addr:
        # Health alone, in plaintext, for probes that cannot present a client certificate:
        # the same servicer (so the same answers), and nothing else on that port.
        running.health_server = grpc.aio.server(options=channel_options())
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, running.health_server)
        running.health_port = running.health_server.add_insecure_port(settings.health_addr)
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
        if running.health_server is not None:
            await running.health_server.start()
    except BaseException:
        await component.stop()
        raise
    await running.set_serving(True)
    refresh = getattr(component, "refresh_metrics", None)
    if refresh is not None:
        running.refresher = asyncio.create_task(_refresh_metrics(component.name, refresh))
    db = getattr(component, "db", None)
    if isinstance(db, Database):
        _watch_pool(component.name, db)
        running.probe = asyncio.create_task(
            running.watch_database(db), name=f"{component.name}-readiness"
        )
    log.info("serving", service=component.name, port=port, worker=settings.worker, services=names)
    return running


class _GenericOnly:
    """The server as the services' adders see it: their handlers go in as generic handlers
    only. grpc.aio (1.85) keeps one pending request per registered method and, for every call
    it accepts, waits on all of them again (``asyncio.wait`` in its main loop): each call paid
    for every method the server registered (the risk server 18 pending requests, echo 7, the
    gateway more). Generic handlers serve the same methods, the same way, through one."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(
        self, handlers: Sequence[grpc.GenericRpcHandler[Any, Any]]
    ) -> None:
        self._server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        """Left out: every adder adds the same handlers as generic ones too."""


def _generic_only(server: grpc.aio.Server) -> grpc.aio.Server:
    return cast(grpc.aio.Server, _GenericOnly(server))


def _watch_pool(service: str, db: Database) -> None:
    """The database pool's connections in use and held, read when /metrics is scraped."""
    pool: Any = db.engine.pool
    if hasattr(pool, "checkedout") and hasattr(pool, "checkedin"):
        metrics.DB_POOL_IN_USE.labels(service).set_function(pool.checkedout)
        metrics.DB_POOL_SIZE.labels(service).set_function(
            lambda: pool.checkedout() + pool.checkedin()
        )


def _enable_reflection(names: list[str], server: grpc.aio.Server) -> None:
    servicer = ReflectionServicer([*names, reflection.SERVICE_NAME, REFLECTION_V1])
    info = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    for service in (reflection.SERVICE_NAME, REFLECTION_V1):
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, {"ServerReflectionInfo": info}),)
        )


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
    tracing.configure(component.name)
    try:
        await _serve(component, settings, on_ready)
    finally:
        tracing.shutdown()  # what is buffered is exported before the process ends


async def _serve(
    component: Component,
    settings: ServerSettings,
    on_ready: Callable[[RunningServer], None] | None,
) -> None:
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
    address = metrics.metrics_addr(component.name, settings.addr, settings.worker)
    if address is not None:
        try:
            metrics.serve_metrics(address, lambda: running.serving)
        except OSError as exc:  # metrics are for operators: the service serves without them
            log.error("metrics endpoint not started", address=address, error=str(exc))
    if on_ready is not None:
        on_ready(running)
    await stop.wait()
    log.info(
        "stopping",
        service=component.name,
        drain_seconds=settings.drain_seconds,
        grace_seconds=settings.grace_seconds,
    )
    await running.stop(settings.grace_seconds, settings.drain_seconds)
    log.info("stopped", service=component.name)
