"""Contact events from carriers: kept as pair-day counts within the retention window."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from services.common.db import UnitOfWork
from services.common.retention import RetentionJob
from services.warning.adapters import contacts_repo, feed_repo, warnings_repo
from services.warning.domain.contacts import ContactEvent, aggregate, worth_keeping
from services.warning.domain.model import RiskLevel
from services.warning.settings import WarningSettings


@dataclass(frozen=True)
class Recorded:
    accepted: int
    expired: int
    #: Valid events between numbers of no known risk: not kept.
    ignored: int = 0


async def record(
    uow: UnitOfWork, events: Sequence[ContactEvent], settings: WarningSettings, now: datetime
) -> Recorded:
    """Add valid events that may serve a warning (``worth_keeping``); those past the
    retention window, or with no risk on either side, are counted, not kept."""
    cutoff = now - settings.contact_retention
    fresh = [e for e in events if e.time >= cutoff]
    unscreened = {
        n for e in fresh if e.caller_level < RiskLevel.MEDIUM for n in (e.caller, e.callee)
    }
    listed = await feed_repo.levels(uow.conn, unscreened) if unscreened else {}
    kept = [e for e in fresh if worth_keeping(e, listed)]
    await contacts_repo.add(uow.conn, aggregate(kept))
    return Recorded(
        accepted=len(kept), expired=len(events) - len(fresh), ignored=len(fresh) - len(kept)
    )


def retention_jobs(settings: WarningSettings) -> list[RetentionJob]:
    """Contacts past the retention window, and once-per-window claims past the window (they
    no longer suppress anything); run by the shared retention loop."""
    return [
        RetentionJob("contact_pairs", settings.contact_retention, contacts_repo.prune),
        RetentionJob("warning_dedup", settings.dedup_window, warnings_repo.prune_dedup),
    ]
