"""App pushes: each user's live stream of warnings and notifications.

The database is the only state: a stream reads what is pending for its user,
sends what it has not sent yet, and marks it delivered. ``PushHub`` only wakes
the streams of this process early when a warning is created here; warnings
created on another replica are found by the stream's regular poll, so a user
connected anywhere receives everything.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime

from services.common.db import Database, UnitOfWork
from services.warning.adapters import deliveries_repo, warnings_repo
from services.warning.domain.model import Delivery, DeliveryState, Warning
from services.warning.settings import WarningSettings

#: At most this many pending items are read per look.
BATCH = 200


class PushHub:
    """Wake-ups for the streams open in this process, by user."""

    def __init__(self) -> None:
        self._listeners: dict[str, set[asyncio.Event]] = {}

    def subscribe(self, user_id: str) -> asyncio.Event:
        event = asyncio.Event()
        self._listeners.setdefault(user_id, set()).add(event)
        return event

    def unsubscribe(self, user_id: str, event: asyncio.Event) -> None:
        listeners = self._listeners.get(user_id)
        if listeners is not None:
            listeners.discard(event)
            if not listeners:
                del self._listeners[user_id]

    def notify(self, user_ids: Iterable[str | None]) -> None:
        for user_id in user_ids:
            if user_id is None:
                continue
            for event in self._listeners.get(user_id, ()):
                event.set()

    @property
    def listening(self) -> int:
        return sum(len(v) for v in self._listeners.values())


PushItem = Warning | Delivery  # a Delivery here is a notification


async def follow(
    db: Database, hub: PushHub, settings: WarningSettings, user_id: str
) -> AsyncIterator[PushItem]:
    """Everything pending for the user, then new items as they come, until the caller stops.

    A warning is sent once per stream and again on the next stream until acknowledged; a
    notification is sent once.
    """
    wake = hub.subscribe(user_id)
    sent: set[str] = set()
    try:
        while True:
            wake.clear()
            items = await _pending(db, settings, user_id, sent)
            written: list[str] = []
            try:
                for delivery_id, item in items:
                    yield item
                    sent.add(delivery_id)
                    written.append(delivery_id)
            finally:
                # Shielded: the app may hang up right after reading, and what it read counts.
                if written:
                    await asyncio.shield(_mark_delivered(db, written))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), settings.stream_poll_seconds)
    finally:
        hub.unsubscribe(user_id, wake)


async def _pending(
    db: Database, settings: WarningSettings, user_id: str, sent: set[str]
) -> list[tuple[str, PushItem]]:
    now = datetime.now(UTC)
    async with db.read() as conn:
        pushes = await deliveries_repo.pending_pushes(
            conn, user_id, now - settings.notification_ttl, BATCH
        )
        fresh = [d for d in pushes if d.id not in sent]
        found = await warnings_repo.get_many(
            conn, [d.warning_id for d in fresh if d.warning_id is not None]
        )
    by_id = {w.id: w for w in found}
    items: list[tuple[str, PushItem]] = []
    for d in fresh:
        if d.warning_id is None:
            items.append((d.id, d))
        elif d.warning_id in by_id:
            items.append((d.id, by_id[d.warning_id]))
    return items


async def _mark_delivered(db: Database, delivery_ids: list[str]) -> None:
    now = datetime.now(UTC)
    async with UnitOfWork(db) as uow:
        touched = await deliveries_repo.advance(
            uow.conn, {i: (DeliveryState.DELIVERED, None) for i in delivery_ids}, now
        )
        await warnings_repo.refresh_states(uow.conn, touched, now)
        await uow.commit()
