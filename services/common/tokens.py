"""Signed principal tokens: how every call into a service proves who makes it.

The gateway turns an API key into a short-lived token naming the key holder; a
service calling another on its own behalf presents a token naming itself. Each
issuer (the gateway, each service) signs with its own Ed25519 key (JWS, EdDSA,
through PyJWT); every verifier holds the issuers' public keys and accepts from an
issuer only what that issuer may say: the gateway speaks for API key holders (and
for itself), a service only for itself. A token also names its audience, the one
service it is for, so a token shown to one service cannot be replayed at another.

Keys live in one directory (``ANTIFRAUD_TOKEN_KEYS_DIR``, by default
``<data dir>/keys/tokens``) as ``<issuer>-<n>.key`` (private, mode 0600) and
``<issuer>-<n>.pub``. An issuer signs with its highest ``n``; verifiers accept every
public key present, and look again when a token names a key id they do not know, so
rotating is: add ``<issuer>-<n+1>``, wait for tokens of the old key to expire (five
minutes), delete the old files. In a deployment each process is given its own private
key and every public key (Secrets); on one machine the first start generates them.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.common.config import data_dir, env
from services.common.logs import get_logger
from services.common.principals import InvalidPrincipal, Principal, Role

log = get_logger("tokens")

GATEWAY = "gateway"
#: Who may sign tokens: the gateway and each service that calls others.
ISSUERS = frozenset({GATEWAY, "identity", "risk", "report", "warning"})
#: A token's lifetime; clients reuse one until a minute before it ends.
TOKEN_SECONDS = 300
_REUSE_MARGIN = 60
#: Clock difference tolerated between processes.
LEEWAY_SECONDS = 30
_ALGORITHM = "EdDSA"
_KID = re.compile(r"(?P<issuer>[a-z]+)-(?P<generation>[0-9]{1,6})")
#: Rescanning the directory for an unknown key id happens at most this often.
_RESCAN_SECONDS = 0.1


class InvalidToken(Exception):
    """A token that proves nothing: unsigned, forged, expired, for someone else."""


@dataclass(frozen=True)
class Claims:
    """What a verified token says."""

    principal: Principal
    issuer: str
    audience: str
    expires: float
    #: The API key that proved the caller at the gateway ('' for services).
    key_id: str = ""


def keys_dir() -> Path:
    configured = env("TOKEN_KEYS_DIR")
    return Path(configured) if configured else data_dir() / "keys" / "tokens"


def may_assert(issuer: str, principal: Principal) -> bool:
    """The gateway speaks for key holders and itself; a service only for itself."""
    if principal.role is Role.INTERNAL:
        return principal.subject == issuer
    return issuer == GATEWAY


def _kid_parts(kid: str) -> tuple[str, int] | None:
    match = _KID.fullmatch(kid)
    if match is None or match["issuer"] not in ISSUERS:
        return None
    return match["issuer"], int(match["generation"])


def generate_key(directory: Path, issuer: str, generation: int) -> bool:
    """Write ``<issuer>-<generation>`` unless it exists; False when another process won."""
    if issuer not in ISSUERS:
        raise ValueError(f"unknown issuer {issuer!r}")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    kid = f"{issuer}-{generation}"
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # Public key first: a verifier that sees the private key's file finds the public one too.
    for suffix, content, mode in ((".pub", public, 0o644), (".key", pem, 0o600)):
        temp = directory / f".{kid}{suffix}.{os.getpid()}.{threading.get_ident()}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        try:
            os.link(temp, directory / f"{kid}{suffix}")  # atomic; fails if it exists
        except FileExistsError:
            return False
        finally:
            temp.unlink()
    log.info("token key generated", kid=kid)
    return True


def ensure_key(issuer: str, directory: Path | None = None) -> None:
    """Generate an issuer's first key when it has none (first start on one machine)."""
    directory = directory or keys_dir()
    if not any(directory.glob(f"{issuer}-*.key")):
        generate_key(directory, issuer, 1)


def rotate(issuer: str, directory: Path | None = None) -> str:
    """Add the issuer's next key; it signs from the next time its processes load keys."""
    directory = directory or keys_dir()
    generations = [
        parts[1]
        for path in directory.glob(f"{issuer}-*.pub")
        if (parts := _kid_parts(path.stem)) is not None and parts[0] == issuer
    ]
    generation = max(generations, default=0) + 1
    generate_key(directory, issuer, generation)
    return f"{issuer}-{generation}"


class Keyring:
    """The public keys of every issuer and, for those this process may sign as, private keys."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or keys_dir()
        self._public: dict[str, Ed25519PublicKey] = {}
        self._private: dict[str, tuple[str, Ed25519PrivateKey]] = {}
        self._scanned = 0.0
        self._lock = threading.Lock()
        self.scan()

    def scan(self) -> None:
        with self._lock:
            self._scanned = time.monotonic()
            public: dict[str, Ed25519PublicKey] = {}
            private: dict[str, tuple[int, str, Ed25519PrivateKey]] = {}
            for path in sorted(self.directory.glob("*-*.*")) if self.directory.is_dir() else ():
                parts = _kid_parts(path.stem)
                if parts is None or path.suffix not in (".pub", ".key"):
                    continue
                try:
                    data = path.read_bytes()
                    if path.suffix == ".pub":
                        key = serialization.load_pem_public_key(data)
                        if isinstance(key, Ed25519PublicKey):
                            public[path.stem] = key
                        continue
                    secret = serialization.load_pem_private_key(data, password=None)
                except (OSError, ValueError) as exc:
                    log.warning("token key unreadable", file=path.name, error=type(exc).__name__)
                    continue
                issuer, generation = parts
                if isinstance(secret, Ed25519PrivateKey) and (
                    issuer not in private or private[issuer][0] < generation
                ):
                    private[issuer] = (generation, path.stem, secret)
            self._public = public
            self._private = {issuer: (kid, key) for issuer, (_, kid, key) in private.items()}

    def public_key(self, kid: str) -> Ed25519PublicKey | None:
        key = self._public.get(kid)
        if key is None and time.monotonic() - self._scanned > _RESCAN_SECONDS:
            self.scan()
            key = self._public.get(kid)
        return key

    def signing_key(self, issuer: str) -> tuple[str, Ed25519PrivateKey] | None:
        found = self._private.get(issuer)
        if found is None and time.monotonic() - self._scanned > _RESCAN_SECONDS:
            self.scan()
            found = self._private.get(issuer)
        return found


def issuer_for(principal: Principal) -> str:
    """The issuer whose key may sign for ``principal``."""
    return principal.subject if principal.role is Role.INTERNAL else GATEWAY


class Minter:
    """Makes tokens, reusing each (principal, audience) token until shortly before it ends."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self._cache: dict[tuple[str, str, str, str], tuple[float, str]] = {}

    def token(self, principal: Principal, audience: str, key_id: str = "") -> str:
        cache_key = (principal.header, principal.region, audience, key_id)
        now = time.time()
        cached = self._cache.get(cache_key)
        if cached is not None and cached[0] - _REUSE_MARGIN > now:
            return cached[1]
        issuer = issuer_for(principal)
        signing = self.keyring.signing_key(issuer)
        if signing is None:
            raise InvalidToken(f"this process holds no signing key for issuer {issuer!r}")
        kid, private = signing
        expires = int(now) + TOKEN_SECONDS
        claims: dict[str, object] = {
            "iss": issuer,
            "sub": principal.header,
            "aud": audience,
            "iat": int(now),
            "exp": expires,
        }
        if key_id:
            claims["key"] = key_id
        if principal.region:
            claims["region"] = principal.region
        token = jwt.encode(claims, private, algorithm=_ALGORITHM, headers={"kid": kid})
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[cache_key] = (expires, token)
        return token


class Verifier:
    """Checks a token's signature, issuer, audience and expiry; remembers good ones."""

    def __init__(self, keyring: Keyring, audience: str) -> None:
        self.keyring = keyring
        self.audience = audience
        self._cache: dict[str, Claims] = {}

    def remembers(self, token: str) -> bool:
        """Whether ``token`` was verified lately (a dictionary look-up, no signature check)."""
        return token in self._cache

    def verify(self, token: str) -> Claims:
        now = time.time()
        cached = self._cache.get(token)
        if cached is not None:
            if cached.expires + LEEWAY_SECONDS < now:
                self._cache.pop(token, None)
                raise InvalidToken("the token has expired")
            return cached
        claims = self._decode(token)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[token] = claims
        return claims

    def _decode(self, token: str) -> Claims:
        if len(token) > 4096:
            raise InvalidToken("the token is too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("the token is malformed") from None
        kid = header.get("kid")
        parts = _kid_parts(kid) if isinstance(kid, str) else None
        key = self.keyring.public_key(kid) if parts is not None and isinstance(kid, str) else None
        if parts is None or key is None:
            raise InvalidToken("the token is signed by an unknown key")
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=[_ALGORITHM],
                audience=self.audience,
                issuer=parts[0],
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("the token is for another service") from None
        except jwt.PyJWTError:
            raise InvalidToken("the token's signature or claims are not valid") from None
        region = payload.get("region", "")
        try:
            principal = Principal.parse(
                str(payload["sub"]), region if isinstance(region, str) else "?"
            )
        except InvalidPrincipal:
            raise InvalidToken("the token names no valid principal") from None
        if not may_assert(parts[0], principal):
            raise InvalidToken(f"issuer {parts[0]} may not speak for {principal.role.value}")
        key_id = payload.get("key", "")
        return Claims(
            principal=principal,
            issuer=parts[0],
            audience=self.audience,
            expires=float(payload["exp"]),
            key_id=key_id if isinstance(key_id, str) else "",
        )


_keyring: Keyring | None = None


def keyring() -> Keyring:
    """This process's keyring (loaded once from ``keys_dir()``)."""
    global _keyring
    if _keyring is None or _keyring.directory != keys_dir():
        _keyring = Keyring()
    return _keyring
