"""Authenticating a call and deciding whether it may proceed."""

from __future__ import annotations

from gateway.adapters.keystore import KeyStore
from gateway.domain.policy import Rule
from gateway.domain.principals import KeyHolder, key_principal, parse_token, secret_matches
from gateway.domain.ratelimit import RateLimiter
from services.common.errors import PermissionDenied, ResourceExhausted, Unauthenticated
from services.common.principals import InvalidPrincipal

AUTH_HEADER = "authorization"


class Authenticator:
    def __init__(self, keys: KeyStore, limiter: RateLimiter) -> None:
        self.keys = keys
        self.limiter = limiter

    async def authenticate(self, authorization: str) -> KeyHolder:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("an API key is required: metadata 'authorization: Bearer <key>'")
        parsed = parse_token(token.strip())
        if parsed is None:
            raise Unauthenticated("the API key is not valid")
        key_id, secret = parsed
        stored = await self.keys.find(key_id)
        if stored is None or not secret_matches(secret, stored.secret_hash):
            raise Unauthenticated("the API key is not valid")
        if stored.revoked:
            raise Unauthenticated("the API key has been revoked")
        try:
            principal = key_principal(stored.role, stored.subject)
        except InvalidPrincipal:
            # A key stored before its principal was checked on creation: it can name no one.
            raise Unauthenticated("the API key is not valid; ask for a new one") from None
        return KeyHolder(principal, stored.key_id)

    def authorize(self, caller: KeyHolder, rule: Rule, method: str) -> None:
        principal = caller.principal
        if not rule.allows(principal.role):
            raise PermissionDenied(f"role {principal.role.value} may not call {method}")
        if rule.registered and principal.anonymous:
            raise PermissionDenied("register with your real name first")
        wait = self.limiter.take(caller.rate_key, rule.cost)
        if wait > 0:
            raise ResourceExhausted("too many requests; slow down", retry_after=wait)
