"""Wires the report service: database, peers, outbox relay, retention, servicer.

Settings come from ``ANTIFRAUD_REPORT_*`` variables (see README.md); peers are found
at ``target("risk")``, ``target("warning")`` and ``target("identity")``. Two services are
served: reports and cases, and fraud knowledge (``knowledge/``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from services.api.antifraud.report.v1 import (
    knowledge_pb2,
    knowledge_pb2_grpc,
    report_pb2,
    report_pb2_grpc,
)
from services.common import idempotency, outbox
from services.common.auth import CallerPolicy
from services.common.config import env, env_float, env_int, target
from services.common.db import Database
from services.common.group_commit import BatchSettings
from services.common.loops import BackgroundLoop
from services.common.outbox import OutboxRelay
from services.common.retention import Retention, RetentionSettings
from services.common.server import Binding
from services.report.adapters import tables
from services.report.adapters.risk_client import RiskClient
from services.report.adapters.warning_client import WarningClient
from services.report.domain.corroboration import Rules
from services.report.entrypoints.grpc_servicer import ReportServicer
from services.report.entrypoints.policy import POLICY
from services.report.knowledge.adapters.identity_client import IdentityDirectory
from services.report.knowledge.entrypoints.grpc_servicer import KnowledgeServicer
from services.report.service_layer import events
from services.report.service_layer.case_follower import CaseFollower
from services.report.service_layer.delivery import Delivery
from services.report.service_layer.intake import Intake
from services.report.service_layer.privacy import PrivacyJobs

VERSIONS = Path(__file__).parent / "adapters" / "migrations" / "versions"
SERVICE_NAME = report_pb2.DESCRIPTOR.services_by_name["ReportService"].full_name
KNOWLEDGE_SERVICE_NAME = knowledge_pb2.DESCRIPTOR.services_by_name["KnowledgeService"].full_name

#: A promotion or a stop-payment order is never given up while the peer may come back:
#: at the 30 s backoff cap this is retrying for about a day before an event is set aside.
MAX_ATTEMPTS = 3_000


def rules_from_env() -> Rules:
    defaults = Rules()
    return Rules(
        threshold=env_float("REPORT_CORROBORATION_THRESHOLD", defaults.threshold),
        window=timedelta(
            hours=env_float(
                "REPORT_CORROBORATION_WINDOW_HOURS", defaults.window / timedelta(hours=1)
            )
        ),
        rate_limit=env_int("REPORT_RATE_LIMIT", defaults.rate_limit),
        anonymous_rate_limit=env_int("REPORT_ANONYMOUS_RATE_LIMIT", defaults.anonymous_rate_limit),
        rate_window=timedelta(
            seconds=env_float("REPORT_RATE_WINDOW_SECONDS", defaults.rate_window.total_seconds())
        ),
        case_rate_limit=env_int("REPORT_CASE_RATE_LIMIT", defaults.case_rate_limit),
    )


def intake_settings_from_env() -> BatchSettings:
    """SubmitReport's group commit: on by default, no wait for company (a report alone is
    committed at once; those that arrive meanwhile go together in the next transaction)."""
    return BatchSettings(
        enabled=env("REPORT_GROUP_COMMIT", "1") not in ("0", "false", "no"),
        linger_seconds=env_float("REPORT_GROUP_COMMIT_LINGER_MS", 0.0) / 1000,
        max_items=max(1, env_int("REPORT_GROUP_COMMIT_MAX", 100)),
    )


class ReportComponent:
    name = "report"

    def __init__(
        self,
        db: Database,
        *,
        rules: Rules | None = None,
        risk_target: str | None = None,
        warning_target: str | None = None,
        identity_target: str | None = None,
        poll_seconds: float = 0.25,
        case_follow_seconds: float = 2.0,
        retention: RetentionSettings | None = None,
        report_retention: timedelta | None = None,
        intake: BatchSettings | None = None,
    ) -> None:
        self.db = db
        kept = retention or RetentionSettings()
        self.retention = Retention.of(
            db,
            [
                idempotency.retention_job(tables.idempotency, kept.idempotency),
                outbox.retention_job(tables.outbox, kept.outbox),
            ],
            kept,
        )
        self.rules = rules or rules_from_env()
        self.risk = RiskClient(risk_target or target("risk"))
        self.warning = WarningClient(warning_target or target("warning"))
        self.delivery = Delivery(db, self.risk, self.warning, self.rules)
        self.relay = OutboxRelay(
            db,
            tables.outbox,
            self.delivery.handlers(),
            poll_seconds=poll_seconds,
            max_attempts=MAX_ATTEMPTS,
            max_age=kept.outbox_retry_age,
            # A filed case's stop-payment orders and payee listings go ahead of the risk
            # syncs waiting (one per report: thousands in a surge of reports); claimed
            # together, oldest first (one statement).
            urgent=[(events.STOP_PAYMENT, events.LIST_PAYEE)],
        )
        self.intake = Intake(db, self.rules, intake or intake_settings_from_env())
        self.servicer = ReportServicer(
            db, self.rules, self.warning, self.relay.wake, intake=self.intake
        )
        self.identity = IdentityDirectory(identity_target or target("identity"))
        self.knowledge = KnowledgeServicer(db, self.identity)
        self.privacy = PrivacyJobs(
            db,
            retention=report_retention or timedelta(days=env_float("REPORT_RETENTION_DAYS", 365.0)),
            retention_seconds=env_float("REPORT_PRUNE_SECONDS", 3600.0),
        )
        self.privacy_loop = BackgroundLoop("report-privacy", self.privacy.step)
        self.case_loop = BackgroundLoop(
            "report-cases",
            CaseFollower(db, self.warning, interval=case_follow_seconds).step,
        )

    def caller_policy(self) -> CallerPolicy:
        return CallerPolicy(self.name, POLICY)

    def bindings(self) -> Sequence[Binding]:
        return [
            Binding(
                SERVICE_NAME, report_pb2_grpc.add_ReportServiceServicer_to_server, self.servicer
            ),
            Binding(
                KNOWLEDGE_SERVICE_NAME,
                knowledge_pb2_grpc.add_KnowledgeServiceServicer_to_server,
                self.knowledge,
            ),
        ]

    async def refresh_metrics(self) -> None:
        await self.relay.refresh_metrics()

    async def migrate(self) -> None:
        await self.db.migrate(VERSIONS)

    async def start(self) -> None:
        await self.migrate()
        # Events left by a previous run (or a crashed one) are delivered from here on.
        self.relay.start()
        self.retention.start()
        # Rows an older version left in clear are sealed first thing, then kept moving to
        # the current key; reports past their retention are deleted.
        self.privacy_loop.start()
        # Open cases follow their banks' answers without waiting for a read.
        self.case_loop.start()

    async def stop(self) -> None:
        await self.intake.stop()
        await self.case_loop.stop()
        await self.privacy_loop.stop()
        await self.retention.stop()
        await self.relay.stop()
        await self.risk.close()
        await self.warning.close()
        await self.identity.close()
        await self.db.dispose()


def build(
    name: str = "report",
    *,
    url: str | None = None,
    schema: str | None = None,
    rules: Rules | None = None,
    risk_target: str | None = None,
    warning_target: str | None = None,
    identity_target: str | None = None,
    intake: BatchSettings | None = None,
) -> ReportComponent:
    """The service from the environment; tests pass their own database, rules, peers and
    intake batching."""
    return ReportComponent(
        Database("report", url=url, schema=schema),
        rules=rules,
        risk_target=risk_target,
        warning_target=warning_target,
        identity_target=identity_target,
        poll_seconds=env_float("REPORT_POLL_SECONDS", 0.25),
        case_follow_seconds=env_float("REPORT_CASE_FOLLOW_SECONDS", 2.0),
        retention=RetentionSettings.from_env(),
        intake=intake,
    )
