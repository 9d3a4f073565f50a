"""The identity service's settings, from ``ANTIFRAUD_IDENTITY_*`` variables with defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from services.common.config import env, env_float, env_int
from services.identity.domain.verification import RateLimit


@dataclass(frozen=True)
class IdentitySettings:
    #: An unanswered verification request expires after this long.
    verification_ttl: timedelta = timedelta(minutes=10)
    #: Face checks a target may try on one request before it FAILS.
    max_face_attempts: int = 3
    #: Requests one requester may create: so the feature cannot be used to harass.
    requester_limits: tuple[RateLimit, ...] = (
        RateLimit(5, timedelta(hours=1)),
        RateLimit(20, timedelta(days=1)),
    )
    #: Requests one requester may send to one number.
    per_target_limit: RateLimit = field(default_factory=lambda: RateLimit(3, timedelta(days=1)))
    #: How often the sweeper marks overdue requests EXPIRED (reads do it anyway).
    sweep_interval_seconds: float = 30.0
    #: How long a fan-out look-up waits for each partner before answering without it.
    partner_timeout_seconds: float = 3.0
    #: A passed face check opens the look-ups (一证通查, 2.0, 一键查卡) this long.
    lookup_face_check_ttl: timedelta = timedelta(minutes=5)
    #: Where peers (``risk``, ``warning``) and partners are, when not where the
    #: environment and the partner directory say (tests).
    targets: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> IdentitySettings:
        defaults = cls()
        return cls(
            verification_ttl=timedelta(
                seconds=env_float(
                    "IDENTITY_VERIFICATION_TTL_SECONDS", defaults.verification_ttl.total_seconds()
                )
            ),
            max_face_attempts=env_int("IDENTITY_MAX_FACE_ATTEMPTS", defaults.max_face_attempts),
            requester_limits=(
                RateLimit(env_int("IDENTITY_VERIFICATIONS_PER_HOUR", 5), timedelta(hours=1)),
                RateLimit(env_int("IDENTITY_VERIFICATIONS_PER_DAY", 20), timedelta(days=1)),
            ),
            per_target_limit=RateLimit(
                env_int("IDENTITY_VERIFICATIONS_PER_TARGET_PER_DAY", 3), timedelta(days=1)
            ),
            sweep_interval_seconds=env_float(
                "IDENTITY_SWEEP_INTERVAL_SECONDS", defaults.sweep_interval_seconds
            ),
            partner_timeout_seconds=env_float(
                "IDENTITY_PARTNER_TIMEOUT_SECONDS", defaults.partner_timeout_seconds
            ),
            lookup_face_check_ttl=timedelta(
                seconds=env_float(
                    "IDENTITY_LOOKUP_FACE_CHECK_SECONDS",
                    defaults.lookup_face_check_ttl.total_seconds(),
                )
            ),
        )


def data_keys_setting() -> str:
    return env("IDENTITY_DATA_KEYS")


def index_key_setting() -> str:
    return env("IDENTITY_INDEX_KEY")
