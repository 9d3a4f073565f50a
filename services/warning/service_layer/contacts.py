"""Contact events from carriers: kept as pair-day counts within the retention window."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from services.common.db import Database, UnitOfWork
from services.common.logs import get_logger
from services.warning.adapters import contacts_repo, warnings_repo
from services.warning.domain.contacts import ContactEvent, aggregate
from services.warning.settings import WarningSettings

log = get_logger("warning.contacts")


@dataclass(frozen=True)
class Recorded:
    accepted: int
    expired: int


async def record(
    uow: UnitOfWork, events: Sequence[ContactEvent], settings: WarningSettings, now: datetime
) -> Recorded:
    """Add valid events; those already past the retention window are counted, not kept."""
    cutoff = now - settings.contact_retention
    fresh = [e for e in events if e.time >= cutoff]
    await contacts_repo.add(uow.conn, aggregate(fresh))
    return Recorded(accepted=len(fresh), expired=len(events) - len(fresh))


@dataclass
class RetentionPruner:
    """Every ``prune_seconds``: deletes contacts past the retention window, and once-per-window
    claims past the window (they no longer suppress anything)."""

    db: Database
    settings: WarningSettings

    async def step(self) -> float:
        now = datetime.now(UTC)
        async with UnitOfWork(self.db) as uow:
            contacts = await contacts_repo.prune(uow.conn, now - self.settings.contact_retention)
            claims = await warnings_repo.prune_dedup(uow.conn, now - self.settings.dedup_window)
            await uow.commit()
        if contacts or claims:
            log.info("retention pruned", contact_pair_days=contacts, dedup_claims=claims)
        return self.settings.prune_seconds
