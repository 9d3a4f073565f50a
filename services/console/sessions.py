"""Signed-in people, held in this process only: the API key never leaves the server.

A session is found by a random id in an HttpOnly cookie. It ends on sign-out, when it was
not used for ``idle_seconds``, or ``max_age_seconds`` after sign-in. It carries the CSRF
token its forms must send back and the opaque references the pages use instead of
indicator values (no personal value ever goes into a URL).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

#: Indicator references a session remembers (the queue and the pages it opened).
MAX_REFS = 2000


@dataclass
class Session:
    sid: str
    #: The person's own API key, sent to the gateway with each call.
    api_key: str
    #: ``analyst:<subject>``, from the key (the gateway says who it is, not the form).
    subject: str
    csrf: str
    created: float
    last_seen: float
    lang: str = "zh"
    #: Opaque reference -> (indicator kind, value).
    refs: OrderedDict[str, tuple[int, str]] = field(default_factory=OrderedDict)
    #: Tasks this person claimed in this session (their numbers are shown in clear).
    claimed: set[str] = field(default_factory=set)
    _ref_key: bytes = field(default_factory=lambda: secrets.token_bytes(16))

    def ref(self, kind: int, value: str) -> str:
        """A reference to an indicator, stable within the session, meaningless outside it."""
        digest = hmac.new(self._ref_key, f"{kind}:{value}".encode(), hashlib.sha256)
        ref = digest.hexdigest()[:20]
        self.refs[ref] = (kind, value)
        self.refs.move_to_end(ref)
        while len(self.refs) > MAX_REFS:
            self.refs.popitem(last=False)
        return ref

    def lookup(self, ref: str) -> tuple[int, str] | None:
        return self.refs.get(ref)

    def csrf_ok(self, token: str) -> bool:
        return bool(token) and hmac.compare_digest(token, self.csrf)


class SessionStore:
    """Sessions by id, with idle and absolute expiry; the oldest go first when full."""

    def __init__(
        self,
        *,
        idle_seconds: float,
        max_age_seconds: float,
        max_sessions: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.idle_seconds = idle_seconds
        self.max_age_seconds = max_age_seconds
        self.max_sessions = max_sessions
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def create(self, api_key: str, subject: str, lang: str = "zh") -> Session:
        self._expire()
        while len(self._sessions) >= self.max_sessions:
            self._sessions.popitem(last=False)
        now = self._clock()
        session = Session(
            sid=secrets.token_urlsafe(32),
            api_key=api_key,
            subject=subject,
            csrf=secrets.token_urlsafe(32),
            created=now,
            last_seen=now,
            lang=lang,
        )
        self._sessions[session.sid] = session
        return session

    def get(self, sid: str) -> Session | None:
        """The live session with this id, its idle clock restarted; None when it ended."""
        session = self._sessions.get(sid) if sid else None
        if session is None:
            return None
        now = self._clock()
        if self._expired(session, now):
            del self._sessions[sid]
            return None
        session.last_seen = now
        self._sessions.move_to_end(sid)
        return session

    def end(self, sid: str) -> None:
        self._sessions.pop(sid, None)

    def __len__(self) -> int:
        return len(self._sessions)

    def _expired(self, session: Session, now: float) -> bool:
        return (
            now - session.last_seen > self.idle_seconds
            or now - session.created > self.max_age_seconds
        )

    def _expire(self) -> None:
        now = self._clock()
        for sid in [sid for sid, s in self._sessions.items() if self._expired(s, now)]:
            del self._sessions[sid]
