"""Prometheus metrics of every process: one registry, one HTTP endpoint next to the gRPC port.

Names follow Prometheus conventions (``antifraud_`` prefix, units in the name, ``_total``
for counters); labels have few values each (service, method, status code, topic, reason)
and never a personal value. The endpoint listens on ``ANTIFRAUD_<NAME>_METRICS_ADDR``,
by default the gRPC port plus 1000 on the same host (risk: ``:51052``); ``off`` turns
it off. The same port answers ``GET /healthz`` (200 ``SERVING`` or 503 ``NOT_SERVING``,
as the gRPC health service says for the server as a whole), in plaintext even when gRPC
is on TLS, so a container's health check needs no interpreter, only a shell
(deploy/healthcheck.sh). Gauges that need a database read (outbox backlog, feed lag) are
refreshed by the runtime every few seconds through a component's ``refresh_metrics``.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import Counter, Gauge, Histogram, make_wsgi_app

from services.common.config import env, env_key
from services.common.logs import get_logger

log = get_logger("metrics")

#: How often gauges that read the database are refreshed.
REFRESH_SECONDS = 5.0
_PORT_OFFSET = 1000
#: Between the metrics ports of workers that share a gRPC port (51052, 51152, ...): clear
#: of the other services' ports, which are 1 apart.
WORKER_PORT_STRIDE = 100
#: The plaintext health answer beside /metrics.
HEALTH_PATH = "/healthz"

RPCS = Counter(
    "antifraud_rpcs_handled_total",
    "RPCs handled, by the status code they ended with.",
    ["service", "method", "code"],
)
RPC_SECONDS = Histogram(
    "antifraud_rpc_duration_seconds",
    "Time to handle an RPC (for streams: how long the stream was open).",
    ["service", "method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60),
)
STREAMS_OPEN = Gauge(
    "antifraud_rpc_streams_open", "Streaming RPCs open now.", ["service", "method"]
)
REFUSALS = Counter(
    "antifraud_auth_refusals_total",
    "Calls refused before their handler ran: unauthenticated, permission_denied, "
    "rate_limited, auth_throttled, stream_cap.",
    ["service", "reason"],
)
OUTBOX_BACKLOG = Gauge(
    "antifraud_outbox_backlog_events",
    "Events waiting to leave the service, by topic.",
    ["service", "topic"],
)
OUTBOX_OLDEST = Gauge(
    "antifraud_outbox_oldest_event_age_seconds",
    "Age of the oldest event waiting to leave the service, by topic (0 when none wait).",
    ["service", "topic"],
)
OUTBOX_DELIVERED = Counter(
    "antifraud_outbox_delivered_total", "Events delivered, by topic.", ["service", "topic"]
)
OUTBOX_FAILURES = Counter(
    "antifraud_outbox_failures_total",
    "Failed delivery attempts, by topic and kind: unreachable (peer down, probed), "
    "retry (answered, tried again later), permanent (given up).",
    ["service", "topic", "kind"],
)
RISK_INDEX_INDICATORS = Gauge(
    "antifraud_risk_index_indicators", "Indicators held by this replica's look-up index."
)
RISK_INDEX_CURSOR = Gauge(
    "antifraud_risk_index_applied_change", "The newest change of the feed this replica applied."
)
RISK_FEED_LAG = Gauge(
    "antifraud_risk_feed_lag_changes",
    "Changes recorded in the database that this replica has not applied yet.",
)
RISK_FEED_LAG_SECONDS = Gauge(
    "antifraud_risk_feed_lag_seconds",
    "Age of the oldest change recorded in the database that this replica has not applied "
    "(0 when it is up to date).",
)
RISK_INDEX_LOAD_SECONDS = Gauge(
    "antifraud_risk_index_load_seconds", "How long the last full load of the index took."
)
DB_POOL_IN_USE = Gauge(
    "antifraud_db_pool_connections_in_use",
    "Database connections checked out of this process's pool now.",
    ["service"],
)
DB_POOL_SIZE = Gauge(
    "antifraud_db_pool_connections", "Connections this process's pool holds now.", ["service"]
)
PARTNER_CALLS = Counter(
    "antifraud_partner_calls_total",
    "Calls to partners (carriers, banks, face checks, the ID registry), by the code they ended "
    "with.",
    ["partner", "method", "code"],
)
PARTNER_SECONDS = Histogram(
    "antifraud_partner_call_duration_seconds",
    "Time a call to a partner took, retries included.",
    ["partner", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
FANOUTS_STARTED = Counter(
    "antifraud_fanouts_started_total", "Fan-outs started: a number became high risk."
)
FANOUTS_DONE = Counter("antifraud_fanouts_done_total", "Fan-outs that warned every contact.")
FANOUT_TARGETS = Counter(
    "antifraud_fanout_targets_processed_total",
    "Contacts a fan-out went through, by outcome: warned, or suppressed (warned lately).",
    ["outcome"],
)
FANOUT_PENDING = Gauge(
    "antifraud_fanout_targets_pending",
    "Contacts that running fan-outs have still to go through (refreshed every few seconds).",
)
WARNINGS = Counter(
    "antifraud_warnings_created_total",
    "Warnings created, by risk level and origin (fanout: a contact of a number that became "
    "high risk; direct: dispatched, screened or a notification).",
    ["level", "origin"],
)
DELIVERIES = Counter(
    "antifraud_deliveries_total",
    "Deliveries of warnings and notifications by channel and outcome: queued, sent, retry, "
    "delivered, acknowledged, failed, not_needed (a fallback SMS the push made unneeded).",
    ["channel", "outcome"],
)
SLI_HIGH_TO_WARNED = Histogram(
    "antifraud_sli_high_to_first_warning_delivered_seconds",
    "From a number becoming high risk (its change in the risk feed) to the first warning of "
    "its fan-out delivered.",
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600),
)
SLI_STOP_PAYMENT = Histogram(
    "antifraud_sli_case_to_stop_payment_ack_seconds",
    "From a case being filed to the payee's bank acknowledging the stop-payment order.",
    buckets=(0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 300),
)
SLI_EXPIRY_REMOVAL = Histogram(
    "antifraud_sli_assertion_expiry_to_removal_seconds",
    "From an assertion's expiry time to its lapse being recorded (the verdict recomputed "
    "without it and the change published).",
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300),
)


def metrics_addr(service: str, grpc_addr: str, worker: int = 0) -> str | None:
    """Where a process serves /metrics; None when turned off or the gRPC port is ephemeral.

    Workers sharing one gRPC port (``worker`` k >= 1) each serve their own: worker k on the
    first worker's metrics port + ``WORKER_PORT_STRIDE`` x (k - 1)."""
    configured = env(f"{env_key(service)}_METRICS_ADDR")
    if configured.lower() == "off":
        return None
    if configured:
        host, _, port = configured.rpartition(":")
        first = int(port)
    else:
        host, _, port = grpc_addr.rpartition(":")
        if not port.isdigit() or int(port) == 0:
            return None
        first = int(port) + _PORT_OFFSET
    if first == 0:
        return configured
    return f"{host}:{first + WORKER_PORT_STRIDE * max(worker - 1, 0)}"


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes and probes every few seconds are not worth a log line."""


class _Threading(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


def _app(ready: Callable[[], bool]) -> Callable[..., Iterable[bytes]]:
    metrics_app = make_wsgi_app()

    def route(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != HEALTH_PATH:
            return metrics_app(environ, start_response)  # type: ignore[no-any-return]
        serving = ready()
        status = "200 OK" if serving else "503 Service Unavailable"
        start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
        return [b"SERVING\n" if serving else b"NOT_SERVING\n"]

    return route


def serve_metrics(address: str, ready: Callable[[], bool] = lambda: True) -> int:
    """Start /metrics and /healthz (``ready()``: SERVING or not) on a thread of their own;
    returns the port."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    family = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)[0][0]
    server_class: type[_Threading] = type("_Server", (_Threading,), {"address_family": family})
    app = _app(ready)
    server: _Threading = make_server(host, int(port), app, server_class, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    bound: int = server.server_port
    log.info("metrics", address=f"{host}:{bound}")
    return bound
