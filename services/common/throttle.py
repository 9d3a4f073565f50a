"""Failed authentications are limited per peer address before the expensive work.

Shared by the gateway (before the key store is read for a key never seen) and by every
service (before a token's signature is checked): a flood of forged keys or tokens from
one address costs a dictionary look-up each once its budget is spent, and callers
whose credentials were verified lately (cached) are never slowed by it.

| variable | default | what |
| --- | --- | --- |
| ``ANTIFRAUD_AUTH_FAILURES_PER_SECOND`` | 5 | failed token checks a service allows an address |
| ``ANTIFRAUD_AUTH_FAILURE_BURST`` | 20 | ... in a burst |

(The gateway's own are ``ANTIFRAUD_GATEWAY_AUTH_FAILURES_PER_SECOND`` and ``_BURST``.)
"""

from __future__ import annotations

from services.common import metrics
from services.common.errors import ResourceExhausted
from services.common.ratelimit import RateLimiter


def peer_host(peer: str) -> str:
    """``ipv4:10.1.2.3:5678`` → ``ipv4:10.1.2.3``: failures count per address, not per port."""
    host, sep, port = peer.rpartition(":")
    return host if sep and port.isdigit() else peer


class FailureThrottle:
    """A budget of failed authentications per peer address."""

    def __init__(self, service: str, failures_per_second: float, burst: float) -> None:
        self.service = service
        self.failures = RateLimiter(failures_per_second, burst)

    def check(self, peer: str) -> None:
        """RESOURCE_EXHAUSTED (with RetryInfo) when ``peer`` has spent its budget."""
        wait = self.failures.wait(peer_host(peer))
        if wait > 0:
            metrics.REFUSALS.labels(self.service, "auth_throttled").inc()
            raise ResourceExhausted("too many failed authentications; slow down", retry_after=wait)

    def failed(self, peer: str) -> None:
        """Count one failed authentication against ``peer``."""
        self.failures.take(peer_host(peer))
        metrics.REFUSALS.labels(self.service, "unauthenticated").inc()
