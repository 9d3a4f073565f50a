"""The warning service's settings, from ``ANTIFRAUD_WARNING_*`` environment variables.

Contacts and once-per-window claims past their windows are deleted by the shared
retention loop (``services/common/retention.py``), with the idempotency keys and the
delivered outbox rows, every ``ANTIFRAUD_RETENTION_INTERVAL_SECONDS``.

| variable | default | meaning |
| --- | --- | --- |
| ``WARNING_TIER_POLICY`` | see ``policy.DEFAULT_POLICY`` | channels per level, guardians' channel |
| ``WARNING_SCREENING_TIER_POLICY`` | ``DEFAULT_SCREENING_POLICY`` | the same for screened callees |
| ``WARNING_DEDUP_WINDOW_HOURS`` | 168 | a person is warned once per thing in this window |
| ``WARNING_CONTACT_RETENTION_DAYS`` | 30 | contacts with a risky number are kept this long |
| ``WARNING_RETENTION_DAYS`` | 180 | warnings, their deliveries and tasks are kept this long |
| ``WARNING_TASK_LEASE_SECONDS`` | 900 | a claimed task returns to its queue after this |
| ``WARNING_FOLLOW_RISK`` | 1 | follow the risk service's change feed |
| ``WARNING_STREAM_POLL_SECONDS`` | 1.0 | how often one query looks for pushes for all streams |
| ``WARNING_SMS_POLL_SECONDS`` | 1.0 | first wait before asking a carrier whether an SMS arrived |
| ``WARNING_MAX_ATTEMPTS`` | 50 | attempts of a delivery or bank order before it fails |
| ``WARNING_LEASE_SECONDS`` | 15 | a dead replica's follower or fan-out is taken over after this |
| ``WARNING_FANOUT_CHUNK`` | 1000 | contacts warned per transaction of a fan-out |
| ``WARNING_FANOUT_CALL_TASK_CAP`` | 200 | call tasks per fan-out at most (-1: none), then SMS |
| ``WARNING_FANOUT_HOME_VISIT_TASK_CAP`` | 50 | home visits per fan-out at most (-1: none) |
| ``WARNING_GROUP_COMMIT`` | 1 | screenings (and risk look-ups), SMS outcomes grouped (0: one each)|
| ``WARNING_GROUP_COMMIT_LINGER_MS`` | 2 | an idle group commit waits this long for more writes |
| ``WARNING_GROUP_COMMIT_MAX`` | 500 | writes per group commit at most |
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from services.common.config import env, env_float, env_int, env_parsed
from services.common.group_commit import BatchSettings
from services.warning.domain.contacts import ContactLevelRule
from services.warning.domain.policy import DEFAULT_POLICY, DEFAULT_SCREENING_POLICY, TierPolicy


@dataclass(frozen=True)
class WarningSettings:
    policy: TierPolicy = field(default_factory=lambda: TierPolicy.parse(DEFAULT_POLICY))
    screening_policy: TierPolicy = field(
        default_factory=lambda: TierPolicy.parse(DEFAULT_SCREENING_POLICY)
    )
    dedup_window: timedelta = timedelta(days=7)
    contact_retention: timedelta = timedelta(days=30)
    warning_retention: timedelta = timedelta(days=180)
    task_lease: timedelta = timedelta(minutes=15)
    contact_rule: ContactLevelRule = field(default_factory=ContactLevelRule)
    follow_risk: bool = True
    stream_poll_seconds: float = 1.0
    sms_poll_seconds: float = 1.0
    max_attempts: int = 50
    #: A notification not pushed within this time is no longer offered on the stream.
    notification_ttl: timedelta = timedelta(days=1)
    #: The change-feed follower's and fan-out workers' leases.
    lease: timedelta = timedelta(seconds=15)
    fanout_chunk: int = 1000
    #: Default caps on a fan-out's tasks (None: no cap); an analyst changes them per fan-out.
    fanout_call_task_cap: int | None = 200
    fanout_home_visit_task_cap: int | None = 50
    group_commit: BatchSettings = field(default_factory=BatchSettings)

    @classmethod
    def from_env(cls) -> WarningSettings:
        return cls(
            policy=env_parsed(
                "WARNING_TIER_POLICY",
                TierPolicy.parse(DEFAULT_POLICY),
                TierPolicy.parse,
                "channels per level, as in policy.DEFAULT_POLICY",
            ),
            screening_policy=env_parsed(
                "WARNING_SCREENING_TIER_POLICY",
                TierPolicy.parse(DEFAULT_SCREENING_POLICY),
                TierPolicy.parse,
                "channels per level for a screened call's callee, as in "
                "policy.DEFAULT_SCREENING_POLICY",
            ),
            dedup_window=timedelta(hours=env_float("WARNING_DEDUP_WINDOW_HOURS", 168.0)),
            contact_retention=timedelta(days=env_float("WARNING_CONTACT_RETENTION_DAYS", 30.0)),
            warning_retention=timedelta(days=env_float("WARNING_RETENTION_DAYS", 180.0)),
            task_lease=timedelta(seconds=env_float("WARNING_TASK_LEASE_SECONDS", 900.0)),
            follow_risk=env("WARNING_FOLLOW_RISK", "1") not in ("0", "false", "no"),
            stream_poll_seconds=env_float("WARNING_STREAM_POLL_SECONDS", 1.0),
            sms_poll_seconds=env_float("WARNING_SMS_POLL_SECONDS", 1.0),
            max_attempts=env_int("WARNING_MAX_ATTEMPTS", 50),
            lease=timedelta(seconds=env_float("WARNING_LEASE_SECONDS", 15.0)),
            fanout_chunk=env_int("WARNING_FANOUT_CHUNK", 1000),
            fanout_call_task_cap=_cap(env_int("WARNING_FANOUT_CALL_TASK_CAP", 200)),
            fanout_home_visit_task_cap=_cap(env_int("WARNING_FANOUT_HOME_VISIT_TASK_CAP", 50)),
            group_commit=BatchSettings(
                enabled=env("WARNING_GROUP_COMMIT", "1") not in ("0", "false", "no"),
                linger_seconds=env_float("WARNING_GROUP_COMMIT_LINGER_MS", 2.0) / 1000,
                max_items=max(1, env_int("WARNING_GROUP_COMMIT_MAX", 500)),
            ),
        )


def _cap(value: int) -> int | None:
    return None if value < 0 else value
