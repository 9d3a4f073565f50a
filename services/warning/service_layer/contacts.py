"""Contact events from carriers: kept as pair-day counts within the retention window."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from services.common.db import UnitOfWork
from services.common.retention import RetentionJob
from services.warning.adapters import contacts_repo, warnings_repo
from services.warning.domain.contacts import ContactEvent, aggregate
from services.warning.settings import WarningSettings


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


def retention_jobs(settings: WarningSettings) -> list[RetentionJob]:
    """Contacts past the retention window, and once-per-window claims past the window (they
    no longer suppress anything); run by the shared retention loop."""
    return [
        RetentionJob("contact_pairs", settings.contact_retention, contacts_repo.prune),
        RetentionJob("warning_dedup", settings.dedup_window, warnings_repo.prune_dedup),
    ]
