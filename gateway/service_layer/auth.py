"""Authenticating a call and deciding whether it may proceed."""

from __future__ import annotations

from gateway.adapters.keystore import KeyStore
from gateway.domain.policy import Rule
from gateway.domain.principals import Principal, Role, parse_token, secret_matches
from gateway.domain.ratelimit import RateLimiter
from services.common.errors import PermissionDenied, ResourceExhausted, Unauthenticated

AUTH_HEADER = "authorization"


class Authenticator:
    def __init__(self, keys: KeyStore, limiter: RateLimiter) -> None:
        self.keys = keys
        self.limiter = limiter

    async def authenticate(self, authorization: str) -> Principal:
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
        return Principal(stored.role, stored.subject, stored.key_id)

    def authorize(self, principal: Principal, rule: Rule, method: str) -> None:
        if not rule.allows(principal.role):
            raise PermissionDenied(f"role {principal.role.value} may not call {method}")
        if rule.registered and principal.role is Role.CITIZEN and not principal.subject:
            raise PermissionDenied("register with your real name first")
        wait = self.limiter.take(principal.rate_key, rule.cost)
        if wait > 0:
            raise ResourceExhausted("too many requests; slow down", retry_after=wait)
