"""Authenticating a call and deciding whether it may proceed.

Failed authentications are limited per peer address before the key store is read:
a flood of random keys costs a dictionary look-up each, not a database read, and
callers whose keys are known (cached) are not slowed by it.
"""

from __future__ import annotations

from gateway.adapters.keystore import KeyStore
from gateway.domain.policy import Rule
from gateway.domain.principals import KeyHolder, key_principal, parse_token, secret_matches
from services.common import metrics
from services.common.errors import PermissionDenied, ResourceExhausted, Unauthenticated
from services.common.principals import InvalidPrincipal
from services.common.ratelimit import RateLimiter
from services.common.throttle import FailureThrottle

AUTH_HEADER = "authorization"
SERVICE = "gateway"


class Authenticator:
    def __init__(self, keys: KeyStore, limiter: RateLimiter, failures: FailureThrottle) -> None:
        self.keys = keys
        self.limiter = limiter
        #: Failed authentications per peer address.
        self.failures = failures

    def _refuse(self, peer: str, message: str) -> Unauthenticated:
        self.failures.failed(peer)
        return Unauthenticated(message)

    def _throttle(self, peer: str) -> None:
        self.failures.check(peer)

    async def authenticate(self, authorization: str, peer: str = "") -> KeyHolder:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            self._throttle(peer)
            raise self._refuse(
                peer, "an API key is required: metadata 'authorization: Bearer <key>'"
            )
        parsed = parse_token(token.strip())
        if parsed is None:
            self._throttle(peer)
            raise self._refuse(peer, "the API key is not valid")
        key_id, secret = parsed
        known, stored = self.keys.cached(key_id)
        if not known:
            if not self.keys.known(key_id):
                self._throttle(peer)  # before the key store is read for a key never seen
            stored = await self.keys.find(key_id)
        if stored is None or not secret_matches(secret, stored.secret_hash):
            raise self._refuse(peer, "the API key is not valid")
        if stored.revoked:
            raise self._refuse(peer, "the API key has been revoked")
        try:
            principal = key_principal(stored.role, stored.subject, stored.region)
        except InvalidPrincipal:
            # A key stored before its principal was checked on creation: it can name no one.
            raise Unauthenticated("the API key is not valid; ask for a new one") from None
        return KeyHolder(principal, stored.key_id)

    def authorize(self, caller: KeyHolder, rule: Rule, method: str) -> None:
        principal = caller.principal
        if not rule.allows(principal.role) or (rule.registered and principal.anonymous):
            metrics.REFUSALS.labels(SERVICE, "permission_denied").inc()
            if principal.anonymous and rule.allows(principal.role):
                raise PermissionDenied("register with your real name first")
            raise PermissionDenied(f"role {principal.role.value} may not call {method}")
        wait = self.limiter.take(caller.rate_key, rule.cost)
        if wait > 0:
            metrics.REFUSALS.labels(SERVICE, "rate_limited").inc()
            raise ResourceExhausted("too many requests; slow down", retry_after=wait)
