"""Contact events from carriers: kept as pair-day counts within the retention window."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from services.common.db import UnitOfWork
from services.common.indicators import Indicator, IndicatorKind
from services.common.retention import RetentionJob
from services.warning.adapters import (
    contacts_repo,
    feed_repo,
    recipients_repo,
    screenings_repo,
    warnings_repo,
)
from services.warning.domain.contacts import ContactEvent, aggregate, worth_keeping
from services.warning.domain.model import Person, Reason, RiskLevel, Warning
from services.warning.service_layer.warnings import Draft, create_warnings
from services.warning.settings import WarningSettings


@dataclass(frozen=True)
class Recorded:
    accepted: int
    expired: int
    #: Valid events between numbers of no known risk: not kept.
    ignored: int = 0
    #: Late contacts of a listed number, warned now.
    warned: int = 0
    #: The app users warned, for their live streams.
    warned_users: tuple[str | None, ...] = ()


async def record(
    uow: UnitOfWork, events: Sequence[ContactEvent], settings: WarningSettings, now: datetime
) -> Recorded:
    """Add valid events that may serve a warning (``worth_keeping``); those past the
    retention window, or with no risk on either side, are counted, not kept. A kept contact
    of a number listed MEDIUM or HIGH now is warned at once (``warn_late_contacts``)."""
    cutoff = now - settings.contact_retention
    fresh = [e for e in events if e.time >= cutoff]
    listed = await feed_repo.levels(uow.conn, {n for e in fresh for n in (e.caller, e.callee)})
    kept = [e for e in fresh if worth_keeping(e, listed)]
    await contacts_repo.add(uow.conn, aggregate(kept))
    created = await warn_late_contacts(uow, kept, listed, settings, now)
    return Recorded(
        accepted=len(kept),
        expired=len(events) - len(fresh),
        ignored=len(fresh) - len(kept),
        warned=len(created),
        warned_users=tuple(w.user_id for w in created),
    )


async def warn_late_contacts(
    uow: UnitOfWork,
    kept: Sequence[ContactEvent],
    listed: dict[str, RiskLevel],
    settings: WarningSettings,
    now: datetime,
) -> list[Warning]:
    """Contacts reported after their number was listed MEDIUM or HIGH (a carrier's late bulk
    upload) are warned as its fan-out would have warned them: the level from how recently
    and how often they were in touch (all contacts within the window, this one included),
    once per person and number within the window."""
    pairs: dict[tuple[str, str], None] = {}  # (contact, listed number)
    for e in kept:
        for number, other in ((e.caller, e.callee), (e.callee, e.caller)):
            if listed.get(number, RiskLevel.NONE) >= RiskLevel.MEDIUM and (
                listed.get(other, RiskLevel.NONE) < RiskLevel.MEDIUM
            ):
                pairs[(other, number)] = None
    if not pairs:
        return []
    since = now - settings.contact_retention
    totals = await contacts_repo.pair_totals(uow.conn, (_ordered(*p) for p in pairs), since)
    persons = await recipients_repo.persons(uow.conn, [contact for contact, _ in pairs])
    drafts: list[Draft] = []
    for contact, number in pairs:
        total = totals.get(_ordered(contact, number))
        if total is None:
            continue
        count, last_time = total
        drafts.append(
            Draft(
                person=persons.get(contact) or Person(contact),
                level=settings.contact_rule.level(last_time, count, now),
                reason=Reason(Indicator(IndicatorKind.PHONE_NUMBER, number), None, None),
                contact_count=count,
                last_contact_time=last_time,
            )
        )
    return [w for w in await create_warnings(uow.conn, settings, drafts, now) if w is not None]


def retention_jobs(settings: WarningSettings) -> list[RetentionJob]:
    """Contacts past the retention window, and once-per-window claims past the window (they
    no longer suppress anything); run by the shared retention loop."""
    return [
        RetentionJob("contact_pairs", settings.contact_retention, contacts_repo.prune),
        RetentionJob("warning_dedup", settings.dedup_window, warnings_repo.prune_dedup),
        RetentionJob("screenings", settings.contact_retention, screenings_repo.prune),
    ]


def _ordered(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)
