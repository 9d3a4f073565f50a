"""Wires the risk service: database, index, refresher, expiry sweeper, retention, servicer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection

from services.api.antifraud.risk.v1 import risk_pb2
from services.common import keys
from services.common.auth import CallerPolicy
from services.common.config import env_float
from services.common.db import Database
from services.common.errors import NotFound
from services.common.idempotency import retention_job
from services.common.indicators import IndicatorKind, normalize
from services.common.logs import get_logger
from services.common.retention import Retention, RetentionJob, RetentionSettings
from services.common.server import Binding
from services.risk.adapters import tables
from services.risk.adapters.repository import RiskRepository
from services.risk.domain.model import RiskLevel, SourceType
from services.risk.entrypoints.grpc_servicer import RiskServicer, add_to_server
from services.risk.entrypoints.policy import POLICY
from services.risk.service_layer import handlers
from services.risk.service_layer.lookup import Lookup
from services.risk.service_layer.unit_of_work import RiskUnitOfWork

VERSIONS = Path(__file__).parent / "adapters" / "migrations" / "versions"
log = get_logger("risk")


def _private_lookup_key() -> bytes:
    """The master key of private look-ups: the risk key ring's index key, the same on every
    replica (``ANTIFRAUD_RISK_INDEX_KEY``, or the keys dir)."""
    return keys.load_service("risk").index_key


class RiskComponent:
    name = "risk"

    def __init__(
        self,
        db: Database,
        *,
        poll_seconds: float = 0.2,
        sweep_seconds: float = 5.0,
        retention: RetentionSettings | None = None,
    ) -> None:
        self.db = db
        self.lookup = Lookup(db, poll_seconds=poll_seconds)
        self.sweep_seconds = sweep_seconds
        kept = retention or RetentionSettings()
        self.servicer = RiskServicer(
            self.lookup,
            self.unit_of_work,
            feed_retention=kept.risk_feed,
            private_key=_private_lookup_key,
        )
        self.retention = Retention.of(
            db,
            [
                retention_job(tables.idempotency_keys, kept.idempotency),
                RetentionJob("changes", kept.risk_feed, _compact_feed),
            ],
            kept,
        )
        self._sweeper: asyncio.Task[None] | None = None

    def unit_of_work(self) -> RiskUnitOfWork:
        return RiskUnitOfWork(self.db)

    def caller_policy(self) -> CallerPolicy:
        return CallerPolicy(self.name, POLICY)

    def bindings(self) -> Sequence[Binding]:
        name = risk_pb2.DESCRIPTOR.services_by_name["RiskService"].full_name
        return [Binding(name, add_to_server, self.servicer)]

    async def refresh_metrics(self) -> None:
        await self.lookup.refresh_metrics()

    async def migrate(self) -> None:
        await self.db.migrate(VERSIONS)

    async def start(self) -> None:
        await self.migrate()
        await self.seed_allow_list()
        await self.lookup.load()
        self.lookup.start()
        self.retention.start()
        self._sweeper = asyncio.create_task(self._sweep(), name="risk-sweeper")

    async def stop(self) -> None:
        await self.retention.stop()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.lookup.stop()
        await self.db.dispose()

    async def seed_allow_list(self) -> None:
        """Official numbers and domains go on the allow list once; analysts may add more."""
        now = datetime.now(UTC)
        async with self.unit_of_work() as uow:
            for kind_name, raw, label in handlers.OFFICIAL:
                indicator = normalize(IndicatorKind[kind_name], raw)
                try:
                    record, _ = await handlers.get_record(uow.repo, indicator, now)
                    if record.snapshot.verified:
                        continue
                except NotFound:
                    pass
                given = handlers.AssertionInput(
                    source_type=SourceType.ALLOW_LIST,
                    source_id=handlers.SEED_SOURCE_ID,
                    level=RiskLevel.NONE,
                    categories=frozenset(),
                    reason="official number",
                    label=label,
                    expire_time=now + handlers.SEED_LIFETIME,
                )
                await handlers.upsert(uow, indicator, given, "risk-service", now)
            await uow.commit()

    async def sweep_once(self) -> int:
        """Record every lapse due now: the due indicators found with one scan, then a batch
        of them per transaction; then again, until none is due (those a writer held are taken
        by the next round)."""
        total = 0
        while True:
            now = datetime.now(UTC)
            async with self.db.read() as conn:
                due = await RiskRepository(conn).due_indicators(now)
            if not due:
                break
            lapsed_now = 0
            step = handlers.expiry_batch(self.db.engine.dialect.name)
            for start in range(0, len(due), step):
                async with self.unit_of_work() as uow:
                    lapsed = await handlers.expire_due(
                        uow, now, indicator_ids=due[start : start + step]
                    )
                    await uow.commit()
                lapsed_now += lapsed
                if lapsed:
                    self.lookup.poke()
            total += lapsed_now
            if not lapsed_now:  # all held by writers: the next sweep takes them
                break
        if total:
            log.info("assertions lapsed", count=total)
        return total

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_seconds)
            try:
                await self.sweep_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("expiry sweep failed")


async def _compact_feed(conn: AsyncConnection, before: datetime, limit: int) -> int:
    """The change feed below the window; a cursor older than what is kept gets CURSOR_EXPIRED."""
    return await RiskRepository(conn).compact_feed(before, limit)


def build(
    name: str = "risk", *, url: str | None = None, schema: str | None = None
) -> RiskComponent:
    return RiskComponent(
        Database("risk", url=url, schema=schema),
        poll_seconds=env_float("RISK_POLL_SECONDS", 0.2),
        sweep_seconds=env_float("RISK_SWEEP_SECONDS", 5.0),
        retention=RetentionSettings.from_env(),
    )
