"""The identity service as the runtime runs it: servicer, migrations, outbox relay, sweeper,
retention."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from services.api.antifraud.identity.v1 import identity_pb2, identity_pb2_grpc
from services.common import idempotency, outbox
from services.common.auth import CallerPolicy
from services.common.db import Database
from services.common.logs import get_logger
from services.common.outbox import OutboxRelay
from services.common.retention import Retention, RetentionSettings
from services.common.server import Binding
from services.identity.adapters import tables
from services.identity.entrypoints.grpc_servicer import IdentityServicer
from services.identity.entrypoints.policy import POLICY
from services.identity.service_layer.deps import Deps
from services.identity.service_layer.notifications import TOPIC_USER_NOTICE, VerificationNotices
from services.identity.service_layer.ports import Notifier
from services.identity.service_layer.verification import (
    TOPIC_INVITE,
    TOPIC_OUTCOME,
    expire_overdue,
)

log = get_logger("identity")

MIGRATIONS = Path(__file__).parent / "adapters" / "migrations" / "versions"
SERVICE_NAME = identity_pb2.DESCRIPTOR.services_by_name["IdentityService"].full_name


class IdentityComponent:
    name = "identity"

    def __init__(
        self,
        deps: Deps,
        notifier: Notifier,
        *,
        closers: Sequence[Callable[[], Awaitable[None]]] = (),
        retention: RetentionSettings | None = None,
    ) -> None:
        self.deps = deps
        kept = retention or RetentionSettings()
        self.retention = Retention.of(
            deps.db,
            [
                idempotency.retention_job(tables.idempotency, kept.idempotency),
                outbox.retention_job(tables.outbox, kept.outbox),
            ],
            kept,
        )
        self.notices = VerificationNotices(deps, notifier)
        self.relay = OutboxRelay(
            deps.db,
            tables.outbox,
            {
                TOPIC_INVITE: self.notices.invite,
                TOPIC_OUTCOME: self.notices.outcome,
                TOPIC_USER_NOTICE: self.notices.user_notice,
            },
            max_age=kept.outbox_retry_age,
        )
        self._closers = list(closers)
        self._sweeper: asyncio.Task[None] | None = None

    def caller_policy(self) -> CallerPolicy:
        return CallerPolicy(self.name, POLICY)

    @property
    def db(self) -> Database:
        """The component's own database, which readiness follows (services.common.server)."""
        return self.deps.db

    def bindings(self) -> Sequence[Binding]:
        return [
            Binding(
                SERVICE_NAME,
                identity_pb2_grpc.add_IdentityServiceServicer_to_server,
                IdentityServicer(self.deps),
            )
        ]

    async def refresh_metrics(self) -> None:
        await self.relay.refresh_metrics()

    async def migrate(self) -> None:
        await self.deps.db.migrate(MIGRATIONS)

    async def start(self) -> None:
        await self.migrate()
        self.deps.wake_outbox = self.relay.wake
        self.relay.start()
        self.retention.start()
        self._sweeper = asyncio.create_task(self._sweep(), name="identity-sweeper")

    async def stop(self) -> None:
        await self.retention.stop()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        await self.relay.stop()
        for close in self._closers:
            await close()
        await self.deps.db.dispose()

    async def _sweep(self) -> None:
        """Expire overdue requests in the database; reads see expiry on their own anyway."""
        while True:
            try:
                await expire_overdue(self.deps)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("verification sweep failed")
            await asyncio.sleep(self.deps.settings.sweep_interval_seconds)
