"""Signed-in people, in a sealed cookie: any replica of the console serves any session.

A session is the person's API key, who the key says they are, the CSRF token their forms
send back, the language, and the tasks they claimed. It travels in the HttpOnly session
cookie encrypted and authenticated (AES-256-GCM) with a key every replica shares
(``ANTIFRAUD_CONSOLE_DATA_KEYS``: the first key seals, every key opens, so a key can be
rotated), so the browser holds it but can neither read the API key nor change a byte; the
console keeps no session store and no database. Every answer re-seals the session with the
time it was last used: a session not used for ``idle_seconds``, or older than
``max_age_seconds``, is refused by whichever replica sees it (the times are inside the
seal, so no copy of the cookie can be made younger). Sign-out deletes the cookie; a copy
taken before then (it is HttpOnly, Secure and SameSite=Strict) still lapses at its idle
expiry, which is why that expiry is short.

Pages name indicators by opaque references instead of their values (no personal value ever
goes into a URL): a reference is the value encrypted deterministically (AES-SIV) under a
key derived from the session's own id, so it is stable within a session, means nothing
outside it, and needs nothing remembered.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV

from services.common.keys import KeyRing

#: Tasks a session remembers having claimed (their numbers are shown in clear to the holder).
MAX_CLAIMED = 20
#: What the seal is bound to: a cookie of another purpose or version opens as nothing.
_AAD = b"antifraud-console-session-v1"
_REF_AAD = b"antifraud-console-ref-v1"
_NONCE = 12


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Session:
    #: A random id: the session's references are keyed by it.
    sid: str
    #: The person's own API key, sent to the gateway with each call.
    api_key: str
    #: ``afk_<id>``, from the key (never its secret).
    subject: str
    csrf: str
    #: Wall-clock seconds (replicas share the clock, not a process's monotonic one).
    created: float
    last_seen: float
    lang: str = "zh"
    #: Tasks this person claimed in this session, newest last.
    claimed: list[str] = field(default_factory=list)
    _ref_key: bytes = b""

    def ref(self, kind: int, value: str) -> str:
        """A reference to an indicator, stable within the session, meaningless outside it."""
        sealed = AESSIV(self._ref_key).encrypt(f"{kind}:{value}".encode(), [_REF_AAD])
        return _b64(sealed)

    def lookup(self, ref: str) -> tuple[int, str] | None:
        try:
            kind, _, value = (
                AESSIV(self._ref_key).decrypt(_unb64(ref), [_REF_AAD]).decode().partition(":")
            )
            return int(kind), value
        except (InvalidTag, ValueError, binascii.Error):
            return None

    def csrf_ok(self, token: str) -> bool:
        return bool(token) and hmac.compare_digest(token, self.csrf)

    def claim(self, task: str) -> None:
        if task not in self.claimed:
            self.claimed.append(task)
        del self.claimed[:-MAX_CLAIMED]

    def release(self, task: str) -> None:
        if task in self.claimed:
            self.claimed.remove(task)


class SessionSeal:
    """Makes, seals and opens sessions with the replicas' shared keys; enforces their expiry."""

    def __init__(
        self,
        keys: KeyRing,
        *,
        idle_seconds: float,
        max_age_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.idle_seconds = idle_seconds
        self.max_age_seconds = max_age_seconds
        self._seal = AESGCM(keys.data_keys[0][1])
        self._open = [AESGCM(key) for _, key in keys.data_keys]
        self._ref_root = keys.index_key
        self._clock = clock

    def _ref_key(self, sid: str) -> bytes:
        # 64 bytes: AES-SIV with two 256-bit halves.
        first = hmac.new(self._ref_root, b"ref1:" + sid.encode(), hashlib.sha256).digest()
        second = hmac.new(self._ref_root, b"ref2:" + sid.encode(), hashlib.sha256).digest()
        return first + second

    def create(self, api_key: str, subject: str, lang: str = "zh") -> Session:
        now = self._clock()
        sid = secrets.token_urlsafe(16)
        return Session(
            sid=sid,
            api_key=api_key,
            subject=subject,
            csrf=secrets.token_urlsafe(32),
            created=now,
            last_seen=now,
            lang=lang,
            _ref_key=self._ref_key(sid),
        )

    def seal(self, session: Session) -> str:
        document = {
            "sid": session.sid,
            "key": session.api_key,
            "sub": session.subject,
            "csrf": session.csrf,
            "created": session.created,
            "seen": session.last_seen,
            "lang": session.lang,
            "claimed": session.claimed[-MAX_CLAIMED:],
        }
        nonce = os.urandom(_NONCE)
        plain = json.dumps(document, separators=(",", ":")).encode()
        return _b64(nonce + self._seal.encrypt(nonce, plain, _AAD))

    def open(self, cookie: str) -> Session | None:
        """The live session the cookie seals, its idle clock restarted; None when it is no
        session of ours or it ended."""
        if not cookie or len(cookie) > 4096:
            return None
        try:
            raw = _unb64(cookie)
        except (ValueError, binascii.Error):
            return None
        nonce, sealed = raw[:_NONCE], raw[_NONCE:]
        for aead in self._open:
            try:
                document = json.loads(aead.decrypt(nonce, sealed, _AAD))
                break
            except (InvalidTag, ValueError):
                continue
        else:
            return None
        session = Session(
            sid=str(document["sid"]),
            api_key=str(document["key"]),
            subject=str(document["sub"]),
            csrf=str(document["csrf"]),
            created=float(document["created"]),
            last_seen=float(document["seen"]),
            lang=str(document["lang"]),
            claimed=[str(t) for t in document["claimed"]],
        )
        now = self._clock()
        if (
            now - session.last_seen > self.idle_seconds
            or now - session.created > self.max_age_seconds
        ):
            return None
        session.last_seen = now
        session._ref_key = self._ref_key(session.sid)
        return session
