"""Wires the warning service: database, partner clients, outbox relay, background loops, servicer.

Background work, each safe with several replicas on one database:

- the outbox relay sends SMS and bank orders (leased rows);
- the SMS poller asks carriers where sent messages are (rows held for a while);
- the fan-out worker warns the contacts of numbers that became high risk (leased jobs);
- the risk follower reads the risk change feed (one replica at a time, by lease);
- the shared retention loop deletes idempotency keys, delivered outbox rows, contacts and
  once-per-window claims, fan-out targets, warnings and notifications past their windows
  (contacts after 30 days, warnings after 180; docs/data.md).

Phone numbers are sealed with the warning service's keys (its database carries its
vault); numbers an older version left in clear are sealed at start, before serving.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Sequence
from pathlib import Path

from services.api.antifraud.warning.v1 import warning_pb2, warning_pb2_grpc
from services.common import config, idempotency, metrics, outbox
from services.common.auth import CallerPolicy
from services.common.db import Database
from services.common.outbox import OutboxRelay
from services.common.retention import Retention, RetentionSettings
from services.common.server import Binding
from services.warning.adapters import fanouts_repo, tables
from services.warning.adapters.bank_orders_repo import BANK_ORDER_TOPIC
from services.warning.adapters.banks import BankClient
from services.warning.adapters.carriers import CarrierClient
from services.warning.adapters.directory import PartnerDirectory
from services.warning.adapters.risk_checks import RiskChecks
from services.warning.adapters.risk_feed import RiskFeed
from services.warning.adapters.warnings_repo import SMS_FALLBACK_TOPIC, SMS_TOPIC, SMS_TOPICS
from services.warning.entrypoints.grpc_servicer import WarningServicer, Wiring
from services.warning.entrypoints.policy import POLICY
from services.warning.service_layer import contacts, privacy
from services.warning.service_layer.bank_orders import BankOrderSender
from services.warning.service_layer.fanout import FanoutWorker
from services.warning.service_layer.follower import RiskFollower
from services.warning.service_layer.loops import BackgroundLoop
from services.warning.service_layer.privacy import reseal_all
from services.warning.service_layer.push import PushHub
from services.warning.service_layer.screening import Screener
from services.warning.service_layer.sms import SmsPoller, SmsSender
from services.warning.settings import WarningSettings

VERSIONS = Path(__file__).parent / "adapters" / "migrations" / "versions"
SERVICE_NAME = warning_pb2.DESCRIPTOR.services_by_name["WarningService"].full_name
#: Who orders stop-payments, as banks record it.
DEFAULT_AUTHORITY = "国家反诈中心"
#: What the outbox relay claims first at each pass, in this order (the rest, a fan-out's SMS,
#: after, oldest first): seconds to a stop-payment, so a bank order waits for nothing; then
#: a single warning's SMS (a screened call's callee while the phone rings, a dispatched
#: warning, a guardian), then its due fallbacks, so it waits neither behind a fan-out's
#: 100,000 nor for the fan-out to be queued. One topic a statement: SQLite finds a topic's
#: due events on its index in id order, but those of two topics by a walk of every event
#: due and a sort (4 ms a claim at 20,000 waiting, against under 1 ms).
URGENT_TOPICS = (BANK_ORDER_TOPIC, SMS_TOPIC, SMS_FALLBACK_TOPIC)


class WarningComponent:
    name = "warning"

    def __init__(
        self,
        db: Database,
        settings: WarningSettings,
        *,
        directory: PartnerDirectory | None = None,
        risk_target: str | None = None,
        authority: str = DEFAULT_AUTHORITY,
        retention: RetentionSettings | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        kept = retention or RetentionSettings()
        self.retention = Retention.of(
            db,
            [
                idempotency.retention_job(tables.idempotency, kept.idempotency),
                outbox.retention_job(tables.outbox, kept.outbox),
                *contacts.retention_jobs(settings),
                *privacy.retention_jobs(settings),
            ],
            kept,
        )
        self.directory = directory or PartnerDirectory()
        self.hub = PushHub(db, settings)
        self.carriers = CarrierClient(self.directory.clients)
        self.banks = BankClient(self.directory.clients, authority)
        self.sms_sender = SmsSender(
            db,
            self.carriers,
            self.directory,
            settings.max_attempts,
            settings.sms_poll_seconds,
            settings.group_commit,
        )
        self.relay = OutboxRelay(
            db,
            tables.outbox,
            {
                **dict.fromkeys(SMS_TOPICS, self.sms_sender),
                BANK_ORDER_TOPIC: BankOrderSender(
                    db, self.banks, self.directory, settings.max_attempts, self._notified
                ),
            },
            max_attempts=settings.max_attempts,
            max_age=kept.outbox_retry_age,
            # Each SMS and bank order stands alone (its own idempotency key, no order among
            # them): a second batch in flight keeps the carriers' calls going between batches.
            pipeline=2,
            urgent=URGENT_TOPICS,
            # A fan-out being queued here goes first (FanoutWorker.queueing); bank orders
            # and single warnings' SMS are urgent, so they do not wait for it.
            give_way=lambda: self.fanout.queueing,
        )
        self.fanout = FanoutWorker(db, settings, self.hub, self.relay.wake)
        self.loops = [
            BackgroundLoop(
                "sms-poller",
                SmsPoller(
                    db,
                    self.carriers,
                    settings.sms_poll_seconds,
                    self.relay.wake,
                    sending=lambda: self.relay.backlogged,
                ).step,
            ),
        ]
        self.fanout_loop = BackgroundLoop("fanout", self.fanout.step)
        self.loops.append(self.fanout_loop)
        self.follower: RiskFollower | None = None
        self.feed: RiskFeed | None = None
        if settings.follow_risk:
            self.feed = RiskFeed(risk_target or config.target("risk"))
            self.follower = RiskFollower(db, self.feed, settings, self.fanout_loop.wake)
            self.loops.append(BackgroundLoop("risk-follower", self.follower.step))
        self.screener = Screener(
            db,
            settings,
            RiskChecks(risk_target or config.target("risk"), shared=settings.group_commit.enabled),
            self.hub,
            self.relay.wake,
        )
        self.servicer = WarningServicer(
            db,
            Wiring(settings, self.hub, self.directory, self.relay.wake, self.screener, self.banks),
        )

    def _notified(self, user_ids: list[str | None]) -> None:
        """A notification was written outside a request (a bank held a victim's funds)."""
        self.hub.notify(user_ids)
        self.relay.wake()

    def caller_policy(self) -> CallerPolicy:
        return CallerPolicy(self.name, POLICY)

    def bindings(self) -> Sequence[Binding]:
        return [
            Binding(
                SERVICE_NAME, warning_pb2_grpc.add_WarningServiceServicer_to_server, self.servicer
            )
        ]

    async def refresh_metrics(self) -> None:
        await self.relay.refresh_metrics()
        async with self.db.read() as conn:
            metrics.FANOUT_PENDING.set(await fanouts_repo.pending_targets(conn))

    async def migrate(self) -> None:
        await self.db.migrate(VERSIONS)

    async def start(self) -> None:
        _collect_young_less_often()
        await self.migrate()
        await reseal_all(self.db)
        self.relay.start()
        self.hub.start()
        for loop in self.loops:
            loop.start()
        self.retention.start()

    async def stop(self) -> None:
        """Stop background work, then release the lease, the partners' channels, the database:
        each step runs even if one before it failed."""
        try:
            await self.retention.stop()
            await self.hub.stop()
            for loop in self.loops:
                await loop.stop()
            await self.relay.stop()
            await self.sms_sender.stop()
            await self.screener.stop()
            if self.follower is not None:
                with contextlib.suppress(Exception):
                    await self.follower.release()
        finally:
            try:
                if self.feed is not None:
                    await self.feed.close()
                await self.directory.close()
            finally:
                await self.db.dispose()


#: Allocations between two collections of the youngest generation (Python's default: 700).
YOUNG_COLLECTION = 10_000


def _collect_young_less_often() -> None:
    """A fan-out makes a few dozen objects per contact and keeps a chunk's alive while it is
    written: at the default threshold the collector walked them every 700 allocations, 15-25
    us of the process's CPU per warning queued (a sixth of it), about 8 at 10,000. The
    modules are out of its reach already (``cli._keep_for_life``); the older generations'
    thresholds stay as they are. For the whole process: the warning service's own."""
    gc.set_threshold(YOUNG_COLLECTION, *gc.get_threshold()[1:])


def build(
    name: str = "warning",
    *,
    url: str | None = None,
    schema: str | None = None,
    settings: WarningSettings | None = None,
    risk_target: str | None = None,
    directory: PartnerDirectory | None = None,
) -> WarningComponent:
    return WarningComponent(
        Database("warning", url=url, schema=schema),
        settings or WarningSettings.from_env(),
        directory=directory,
        risk_target=risk_target,
        authority=config.env("WARNING_AUTHORITY", DEFAULT_AUTHORITY),
        retention=RetentionSettings.from_env(),
    )
