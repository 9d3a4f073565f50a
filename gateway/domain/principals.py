"""Who is calling: a principal with a role, authenticated by an API key.

The principal travels to the services as ``<role>:<subject>`` in ``x-principal``
metadata (citizens: ``citizen:<user id>``, or ``citizen:`` before they register).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass

KEY_PREFIX = "afk"


class Role(enum.StrEnum):
    CITIZEN = "citizen"
    CARRIER = "carrier"
    BANK = "bank"
    ANALYST = "analyst"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    role: Role
    subject: str  # a citizen's user id (empty before registration), a partner id, a staff id
    key_id: str

    @property
    def header(self) -> str:
        return f"{self.role.value}:{self.subject}"

    @property
    def rate_key(self) -> str:
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
