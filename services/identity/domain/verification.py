"""Remote identity verification (身份核验): A asks a phone number's holder to prove who they are.

The holder (B) is the registered user who owns that number; B accepts with a
face check against B's registered identity, or declines. A learns only the
outcome and, once verified, B's masked name. A request left unanswered expires.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta


class VerificationState(enum.IntEnum):
    """Numbers match the proto's VerificationState."""

    PENDING = 1
    VERIFIED = 2
    DECLINED = 3
    EXPIRED = 4
    FAILED = 5  # the face check failed on every allowed attempt


class Purpose(enum.IntEnum):
    """Why A asks; numbers match the proto's VerificationPurpose.

    No free text: it would reach B's phone."""

    PAYMENT = 1
    TRADE = 2
    ONLINE_CONTACT = 3
    EMPLOYMENT = 4
    ACQUAINTANCE = 5
    OTHER = 6


class Decision(enum.IntEnum):
    ACCEPT = 1
    DECLINE = 2


class FaceResult(enum.IntEnum):
    PASSED = 1
    FAILED = 2


class RequestClosed(Exception):
    """The request can no longer be answered; ``state`` is what it became."""

    def __init__(self, state: VerificationState) -> None:
        super().__init__(state.name)
        self.state = state


@dataclass(frozen=True, slots=True)
class VerificationRequest:
    id: str
    requester_id: str
    target_phone_hmac: str
    masked_target_phone: str
    purpose: Purpose
    state: VerificationState
    create_time: datetime
    expire_time: datetime
    respond_time: datetime | None = None
    responder_id: str | None = None
    face_attempts: int = 0
    face_result: FaceResult | None = None
    face_reference: str | None = None
    #: The requester asked "is this <name>?" (the name is sealed in storage).
    name_asked: bool = False
    #: Once VERIFIED with a name asked: whether the holder's registered name is it.
    name_matches: bool | None = None

    def state_at(self, now: datetime) -> VerificationState:
        """The state as of ``now``: a pending request past its expiry is expired, sweeper or not."""
        if self.state is VerificationState.PENDING and now >= self.expire_time:
            return VerificationState.EXPIRED
        return self.state

    def attempts_left(self, max_attempts: int) -> int:
        return max(max_attempts - self.face_attempts, 0)

    def _open(self, now: datetime) -> None:
        state = self.state_at(now)
        if state is not VerificationState.PENDING:
            raise RequestClosed(state)

    def decline(self, responder_id: str, now: datetime) -> VerificationRequest:
        self._open(now)
        return replace(
            self,
            state=VerificationState.DECLINED,
            respond_time=now,
            responder_id=responder_id,
        )

    def check_can_accept(self, now: datetime) -> None:
        """Raise ``RequestClosed`` unless a face check may be started now."""
        self._open(now)

    def record_face_check(
        self,
        responder_id: str,
        result: FaceResult,
        reference: str,
        now: datetime,
        *,
        max_attempts: int,
    ) -> VerificationRequest:
        """Apply a face check's result. A result that comes back after expiry still counts:
        the check was started while the request was open."""
        if self.state is not VerificationState.PENDING:
            raise RequestClosed(self.state)
        attempts = self.face_attempts + 1
        if result is FaceResult.PASSED:
            state = VerificationState.VERIFIED
        elif attempts >= max_attempts:
            state = VerificationState.FAILED
        else:
            state = VerificationState.PENDING
        closed = state is not VerificationState.PENDING
        return replace(
            self,
            state=state,
            face_attempts=attempts,
            face_result=result,
            face_reference=reference,
            respond_time=now if closed else None,
            responder_id=responder_id,
        )


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``limit`` requests in any ``window``."""

    limit: int
    window: timedelta


def retry_after(recent: Sequence[datetime], now: datetime, rule: RateLimit) -> float | None:
    """Seconds until one more request fits under ``rule``, or None when it fits now.

    ``recent`` holds the creation times of the requester's earlier requests (any order).
    """
    in_window = sorted(t for t in recent if t > now - rule.window)
    if len(in_window) < rule.limit:
        return None
    # The request that must leave the window before another fits.
    oldest_blocking = in_window[len(in_window) - rule.limit]
    return max((oldest_blocking + rule.window - now).total_seconds(), 0.001)
