"""Creating, reading and acknowledging warnings.

``create_warnings`` is the one way a warning comes to exist, for a single
DispatchWarning and for a chunk of a contact fan-out alike: the once-per-window
claim, the tier policy with guardians, and every row written with a statement
per table.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common import metrics
from services.common.db import UnitOfWork
from services.common.errors import NotFound, PermissionDenied
from services.warning.adapters import fallbacks_repo, recipients_repo, warnings_repo
from services.warning.domain.caps import TaskBudget
from services.warning.domain.model import (
    Delivery,
    DeliveryState,
    Person,
    Reason,
    RiskLevel,
    Warning,
    WarningState,
)
from services.warning.domain.policy import TierPolicy
from services.warning.domain.rules import reason_key
from services.warning.domain.texts import standard_text
from services.warning.settings import WarningSettings


@dataclass(frozen=True)
class Draft:
    """A warning about to be created."""

    person: Person
    level: RiskLevel
    reason: Reason
    text: str | None = None  # the standard text for the level when None
    fanout_id: str | None = None
    contact_count: int | None = None
    last_contact_time: datetime | None = None


#: Random bytes read from the system at once for this many ids: one ``os.urandom`` call
#: each (a system call) was a sixth of a fan-out's CPU on a busy machine.
_IDS_PER_READ = 256
_random = bytearray()


def _forget_random() -> None:
    _random.clear()


# A forked child must never use the bytes its parent may still use.
os.register_at_fork(after_in_child=_forget_random)


def new_id() -> str:
    """A random (version 4) UUID as text, as ``str(uuid.uuid4())`` but without building a
    ``UUID`` object: a fan-out makes two or three of them per contact. The bytes come
    from ``os.urandom``, read for many ids at once and each used once."""
    global _random
    if not _random:
        _random = bytearray(os.urandom(16 * _IDS_PER_READ))
    raw = _random[-16:]
    del _random[-16:]
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


#: The standard text depends only on the level and the reason: a fan-out's thousands of
#: warnings share a handful.
_standard_text = lru_cache(maxsize=256)(standard_text)


def build(
    settings: WarningSettings, draft: Draft, now: datetime, policy: TierPolicy | None = None
) -> Warning:
    """The warning a draft becomes, with one delivery per channel the policy picks (the
    settings' tier policy unless another is given)."""
    warning_id = new_id()
    planned = (policy or settings.policy).plan(draft.level, draft.person)
    deliveries = tuple(
        Delivery(
            id=new_id(),
            channel=p.channel,
            state=DeliveryState.QUEUED,
            warning_id=warning_id,
            user_id=p.user_id,
            phone_number=p.phone_number,
            guardian=p.guardian,
            carrier=None,
            carrier_message_id=None,
            attempts=0,
            last_error=None,
            create_time=now,
            update_time=now,
            fallback_seconds=p.fallback_seconds,
        )
        for p in planned
    )
    return Warning(
        id=warning_id,
        user_id=draft.person.user_id,
        phone_number=draft.person.phone_number,
        level=draft.level,
        reason=draft.reason,
        text=draft.text or _standard_text(draft.level, draft.reason),
        state=WarningState.PENDING,
        fanout_id=draft.fanout_id,
        contact_count=draft.contact_count,
        last_contact_time=draft.last_contact_time,
        create_time=now,
        acknowledge_time=None,
        deliveries=deliveries,
        region=draft.person.region,
    )


async def create_warnings(
    conn: AsyncConnection,
    settings: WarningSettings,
    drafts: Sequence[Draft],
    now: datetime,
    budget: TaskBudget | None = None,
) -> list[Warning | None]:
    """Create the drafts' warnings; None where the person was already warned about the same
    thing at the same or a higher level within the window. At most one draft per person and
    reason in one call. ``budget`` caps the tasks the new warnings create."""
    return await create_built(
        conn, settings, [build(settings, draft, now) for draft in drafts], now, budget
    )


async def create_built(
    conn: AsyncConnection,
    settings: WarningSettings,
    built: Sequence[Warning],
    now: datetime,
    budget: TaskBudget | None = None,
    prepared: warnings_repo.Prepared | None = None,
) -> list[Warning | None]:
    """``create_warnings`` of warnings already built (their ids chosen, e.g. to be written
    beside another record first); None where the once-per-window claim holds. ``prepared``:
    their rows made beforehand (``prepare``, with the same ``now``)."""
    cutoff = now - settings.dedup_window
    if prepared is None:
        won = await warnings_repo.claim_dedup(conn, _claims(built), cutoff, now)
    else:
        won = await warnings_repo.claim_rows(conn, prepared.claims, cutoff)
    created = [w if w.id in won else None for w in built]
    if budget is not None:
        created = [budget.apply(w) if w is not None else None for w in created]
    await warnings_repo.insert(conn, [w for w in created if w is not None], prepared)
    # Counted by label, then one increment each: a chunk of a fan-out is thousands of rows
    # (counted by ``Counter`` itself, the labels' text made once per label).
    made = [w for w in created if w is not None]
    warned = Counter((w.level, bool(w.fanout_id)) for w in made)
    queued = Counter(d.channel for w in made for d in w.deliveries)
    for (level, fanned_out), n in warned.items():
        metrics.WARNINGS.labels(level.name.lower(), "fanout" if fanned_out else "direct").inc(n)
    for channel, n in queued.items():
        metrics.DELIVERIES.labels(channel.name.lower(), "queued").inc(n)
    return created


def prepare(dialect: sa.Dialect, built: Sequence[Warning], now: datetime) -> warnings_repo.Prepared:
    """The rows ``create_built`` writes for ``built`` at ``now``, made before its
    transaction: the Python work (row values, sealed numbers, SMS payloads) done while the
    database is busy with something else."""
    return warnings_repo.prepare(dialect, built, _claims(built), now)


def _claims(built: Sequence[Warning]) -> list[warnings_repo.DedupClaim]:
    keys: dict[int, str] = {}  # by reason object: a fan-out's chunk shares one (a SHA-256 each)
    claims: list[warnings_repo.DedupClaim] = []
    for w in built:
        key = keys.get(id(w.reason))
        if key is None:
            key = keys[id(w.reason)] = reason_key(w.reason)
        claims.append(warnings_repo.DedupClaim(w.phone_number, key, w.id, w.level))
    return claims


@dataclass(frozen=True)
class Dispatched:
    warning: Warning
    suppressed: bool


async def resolve_user(conn: AsyncConnection, user_id: str) -> Person:
    recipient = await recipients_repo.get(conn, user_id)
    if recipient is None:
        raise NotFound(f"recipient {user_id} is not registered (UpsertRecipient first)")
    return Person.of(recipient)


async def resolve_phone(conn: AsyncConnection, phone_number: str) -> Person:
    """A number is the registered user who holds it, when there is one."""
    found = await recipients_repo.persons(conn, [phone_number])
    return found.get(phone_number) or Person(phone_number)


async def dispatch(
    uow: UnitOfWork,
    settings: WarningSettings,
    person: Person,
    level: RiskLevel,
    reason: Reason,
    text: str | None,
    now: datetime,
) -> Dispatched:
    [created] = await create_warnings(uow.conn, settings, [Draft(person, level, reason, text)], now)
    if created is not None:
        return Dispatched(created, suppressed=False)
    existing_id = await warnings_repo.current_for(uow.conn, person.phone_number, reason_key(reason))
    existing = await warnings_repo.get(uow.conn, existing_id) if existing_id else None
    if existing is None:
        raise AssertionError("a suppressed warning has no current warning")
    return Dispatched(existing, suppressed=True)


async def get(conn: AsyncConnection, warning_id: str) -> Warning:
    found = await warnings_repo.get(conn, warning_id)
    if found is None:
        raise NotFound(f"warnings/{warning_id} not found")
    return found


async def acknowledge(uow: UnitOfWork, warning_id: str, user_id: str, now: datetime) -> Warning:
    found = await get(uow.conn, warning_id)
    if found.user_id != user_id:
        raise PermissionDenied(f"warnings/{warning_id} is not for user {user_id}")
    await warnings_repo.acknowledge(uow.conn, warning_id, now)
    await fallbacks_repo.cancel_for_warnings(uow.conn, [warning_id], now)
    return await get(uow.conn, warning_id)
