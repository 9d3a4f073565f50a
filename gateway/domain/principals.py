"""Who is calling: a principal (see :mod:`services.common.principals`) proven by an API key.

The principal travels to the services as its ``header`` in ``x-principal`` metadata.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from services.common.principals import InvalidPrincipal, Principal, Role

KEY_PREFIX = "afk"


def key_principal(role: Role, subject: str, region: str = "") -> Principal:
    """The principal a key with this role, subject (and an officer's region) speaks for;
    raises InvalidPrincipal.

    Internal callers send no principal at all, so no key may ever speak for one.
    """
    if role is Role.INTERNAL:
        raise InvalidPrincipal("internal callers hold no API key")
    return Principal(role, subject, region)


@dataclass(frozen=True)
class KeyHolder:
    """An authenticated caller: who it is, and the key that proved it."""

    principal: Principal
    key_id: str

    @property
    def rate_key(self) -> str:
        # Limits are per key: each app install or partner connection has its own.
        return self.key_id


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    secret: str  # shown once, never stored

    @property
    def token(self) -> str:
        return f"{KEY_PREFIX}_{self.key_id}_{self.secret}"


def new_key() -> IssuedKey:
    return IssuedKey(secrets.token_hex(8), secrets.token_urlsafe(32))


def parse_token(token: str) -> tuple[str, str] | None:
    """(key id, secret) from ``afk_<id>_<secret>``, or None for anything else."""
    prefix, _, rest = token.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != KEY_PREFIX or len(key_id) != 16 or not secret or len(secret) > 128:
        return None
    return key_id, secret


def hash_secret(secret: str) -> str:
    # Secrets are 256 random bits, so a plain SHA-256 cannot be reversed by guessing.
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)
