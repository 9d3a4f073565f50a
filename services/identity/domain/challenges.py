"""Phone challenges: a one-time code the number's carrier sends, proving the caller holds it.

The carrier makes and keeps the code (CAMARA One Time Password SMS); we keep its
authentication id and, once the carrier said the code was right, a keyed hash of
that code, so a retry of the same step with the same code is still accepted.
Every way a code fails to prove the number gets the same answer, so the answer
says nothing about the number or about who is registered.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class ChallengePurpose(enum.IntEnum):
    """Numbers match antifraud.identity.v1.PhoneChallengePurpose."""

    REGISTRATION = 1
    SIGN_IN = 2
    GUARDIAN = 3


#: The text the carrier sends; it puts the code where ``{{code}}`` is (one SMS segment).
_WARNING = "，5分钟内有效，切勿告诉他人。"
CODE_MESSAGES: dict[ChallengePurpose, str] = {
    ChallengePurpose.REGISTRATION: "【国家反诈中心】注册验证码{{code}}" + _WARNING,
    ChallengePurpose.SIGN_IN: "【国家反诈中心】登录验证码{{code}}" + _WARNING,
    # The code is meant to be passed on, to the person the holder agrees to guard.
    ChallengePurpose.GUARDIAN: (
        "【国家反诈中心】亲情守护验证码{{code}}，同意守护对方请告知，否则请忽略。"
    ),
}
CODE_SENDER = "12381"

#: The one answer for a code that does not prove the number, whatever the reason.
NOT_PROVEN = "the code does not prove this number: wrong, used or expired; ask for a new code"


class CodeCheck(enum.IntEnum):
    """The carrier's answer to a code; numbers match antifraud.partner.v1.OneTimeCodeResult."""

    VALID = 1
    INVALID = 2
    EXPIRED = 3
    ATTEMPTS_EXCEEDED = 4


class SubscriberMatch(enum.IntEnum):
    """The carrier's real-name answer; numbers match antifraud.partner.v1.SubscriberMatch."""

    MATCH = 1
    NO_MATCH = 2
    NOT_SUBSCRIBER = 3


@dataclass(frozen=True, slots=True)
class SentCode:
    """A code the carrier took for delivery."""

    authentication_id: str
    expire_time: datetime | None


@dataclass(frozen=True, slots=True)
class PhoneChallenge:
    id: str
    purpose: ChallengePurpose
    phone_hmac: str
    masked_phone: str
    carrier_id: str
    authentication_id: str
    create_time: datetime
    expire_time: datetime
    #: Keyed hash of the code the carrier accepted; None until then.
    proof_hmac: str | None = None
    #: When the proof was used (a user registered or signed in); None until then.
    use_time: datetime | None = None

    def open_at(self, now: datetime) -> bool:
        return self.use_time is None and now < self.expire_time

    @property
    def consent_reference(self) -> str:
        """What the carrier is shown as the reason for its check: this challenge."""
        return f"phoneChallenges/{self.id}"
