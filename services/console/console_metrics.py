"""The console's own Prometheus series, served on its metrics port like every process's
(services.common.metrics): requests by route pattern and status, their latency, sign-in
outcomes and how sessions end. Labels are route patterns (``/review/{ref}``) and fixed
words, never a value from a page, a key or a person."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "antifraud_console_requests_total",
    "HTTP requests answered by the console, by method, route pattern and status code.",
    ["method", "route", "status"],
)
REQUEST_SECONDS = Histogram(
    "antifraud_console_request_duration_seconds",
    "Time to answer an HTTP request, gateway calls included, by method and route pattern.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SIGNINS = Counter(
    "antifraud_console_signins_total",
    "Sign-in attempts by outcome: signed_in, role_refused (a key that is not an analyst's), "
    "key_invalid (unknown or revoked), csrf_refused, unavailable (the gateway did not answer).",
    ["outcome"],
)
SESSIONS_ENDED = Counter(
    "antifraud_console_sessions_ended_total",
    "Sessions ended, by reason: signed_out, expired (idle or too old), revoked (the gateway "
    "no longer accepts the key).",
    ["reason"],
)
SIGNIN_OUTCOMES = ("signed_in", "role_refused", "key_invalid", "csrf_refused", "unavailable")
END_REASONS = ("signed_out", "expired", "revoked")

for _outcome in SIGNIN_OUTCOMES:
    SIGNINS.labels(_outcome)  # every outcome exported from the start, at zero
for _reason in END_REASONS:
    SESSIONS_ENDED.labels(_reason)


def observe(method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method, route, str(status)).inc()
    REQUEST_SECONDS.labels(method, route).observe(seconds)
