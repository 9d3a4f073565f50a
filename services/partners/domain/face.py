"""The face provider's rules: outcomes per subject (PASS unless seeded), single-use tokens.

A liveness token proves one capture; accepting it twice would let a recorded token
pass for a fresh face. The provider keeps only a digest of each token, never the token.
"""

from __future__ import annotations

import enum
import hashlib
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from services.partners.domain import synthetic

MAX_TOKENS = 100_000


class FaceOutcome(enum.IntEnum):
    """Numbers match antifraud.partner.v1.FaceOutcome."""

    PASS = 1
    FAIL = 2


class FaceResult(enum.IntEnum):
    """Numbers match antifraud.partner.v1.FaceVerificationResult."""

    PASSED = 1
    FAILED = 2


class FaceFailureReason(enum.IntEnum):
    """Numbers match antifraud.partner.v1.FaceFailureReason."""

    FACE_MISMATCH = 1
    TOKEN_REUSED = 2


@dataclass(frozen=True, slots=True)
class FaceDecision:
    result: FaceResult
    score: float
    failure_reason: FaceFailureReason | None
    provider_reference: str
    verify_time: datetime


class FaceProvider:
    def __init__(self, name: str = "face") -> None:
        self.name = name
        self._outcomes: dict[str, FaceOutcome] = {}
        self._token_outcomes: dict[str, FaceOutcome] = {}  # token digest -> outcome
        self._tokens: OrderedDict[str, str] = OrderedDict()  # token digest -> idempotency key

    def reset(self) -> None:
        self._outcomes.clear()
        self._token_outcomes.clear()
        self._tokens.clear()

    def seed_outcome(self, subject_reference: str, outcome: FaceOutcome) -> None:
        self._outcomes[subject_reference] = outcome

    def seed_token_outcome(self, face_token: str, outcome: FaceOutcome) -> None:
        self._token_outcomes[hashlib.sha256(face_token.encode()).hexdigest()] = outcome

    def verify(
        self, subject_reference: str, face_token: str, idempotency_key: str, *, now: datetime
    ) -> FaceDecision:
        digest = hashlib.sha256(face_token.encode()).hexdigest()
        reference = f"FV-{uuid.uuid4().hex[:16].upper()}"
        first_key = self._tokens.setdefault(digest, idempotency_key)
        while len(self._tokens) > MAX_TOKENS:
            self._tokens.popitem(last=False)
        if first_key != idempotency_key:
            return FaceDecision(
                FaceResult.FAILED, 0.0, FaceFailureReason.TOKEN_REUSED, reference, now
            )
        outcome = self._token_outcomes.get(digest) or self._outcomes.get(subject_reference)
        passed = outcome in (None, FaceOutcome.PASS)
        score = synthetic.face_score(subject_reference, digest, passed)
        if passed:
            return FaceDecision(FaceResult.PASSED, score, None, reference, now)
        return FaceDecision(
            FaceResult.FAILED, score, FaceFailureReason.FACE_MISMATCH, reference, now
        )
