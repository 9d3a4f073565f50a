"""App pushes: each user's live stream of warnings and notifications, fed by one reader.

The database is the only state: what is pending for a user is what their streams
send. ``PushHub`` is the one reader of it for every stream open in this process:
each ``stream_poll_seconds`` one pass asks what is pending for every user with an
open stream, in one query per 500 users that returns ids and versions only (when a
warning is created here or a stream opens for a user it does not follow yet, a pass
at once for those users only: what was created here concerns them alone, and
the full pass still comes every interval for what other replicas created), and
reads the items themselves only where they are new or their version changed (a user
with many unacknowledged warnings and one new one costs one read). Each
stream then takes its user's items from memory. What the streams sent is marked
delivered by a second task, in one transaction for everything sent since its last one
(a read pass never waits for that write). So N open streams cost one pass per interval,
whether N is 1 or 1,000 and whether they are one user's or many.

Why a poller and not PostgreSQL LISTEN/NOTIFY: warnings are created by every
replica and by the fan-out workers, on SQLite and PostgreSQL alike; one loop per
process that polls works the same on both, needs no connection held outside the
pool, no triggers and no reconnect logic (a notification sent while a listener
reconnects is lost, so a poll would be needed anyway), and a warning created in
this process still wakes the loop at once (``notify``). The cost that matters, a
query per open stream, is gone either way.

A warning is sent once per stream and again on the next stream until acknowledged;
a notification is sent once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.db import Database, UnitOfWork
from services.common.logs import get_logger
from services.warning.adapters import deliveries_repo, warnings_repo
from services.warning.adapters.sql import chunks
from services.warning.domain.model import Delivery, DeliveryState, Warning
from services.warning.settings import WarningSettings

log = get_logger("warning.push")

#: At most this many pending items of one user are offered at a time.
BATCH = 200
#: Users per query of a pass.
USERS_PER_QUERY = 500

PushItem = Warning | Delivery  # a Delivery here is a notification


@dataclass(eq=False)
class Subscription:
    """One open stream: it is woken when its user's pending items are (re)published."""

    user_id: str
    items: list[tuple[str, PushItem]] = field(default_factory=list)
    published: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class _Pending:
    """What is pending for one user, as last read; ``known`` keeps each item with the
    version it was read at, so a pass reads again only what is new or changed."""

    versions: tuple[tuple[str, object], ...] = ()
    items: list[tuple[str, PushItem]] = field(default_factory=list)
    known: dict[str, tuple[object, PushItem]] = field(default_factory=dict)

    def unchanged(self, pending: deliveries_repo.PendingPush) -> PushItem | None:
        found = self.known.get(pending.id)
        return found[1] if found is not None and found[0] == pending.version else None


_NOTHING = _Pending()


class PushHub:
    """The one reader of pending pushes for every stream open in this process."""

    def __init__(self, db: Database | None = None, settings: WarningSettings | None = None):
        self.db = db
        self.settings = settings or WarningSettings()
        self._subscriptions: dict[str, set[Subscription]] = {}
        self._pending: dict[str, _Pending] = {}
        self._delivered: set[str] = set()
        self._wake = asyncio.Event()
        #: Users to read at once (notified, or a stream opened), before the next full pass.
        self._due: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._flush_wake = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        #: Passes made (each costs one query per 500 followed users, plus reads of changes).
        self.passes = 0

    # -- streams ---------------------------------------------------------------------------

    def subscribe(self, user_id: str) -> Subscription:
        sub = Subscription(user_id)
        self._subscriptions.setdefault(user_id, set()).add(sub)
        known = self._pending.get(user_id)
        if known is not None:
            self._publish_to(sub, known.items)
        else:
            self._due.add(user_id)  # a user not followed yet: read now, not at the interval
            self._wake.set()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subscriptions.get(sub.user_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subscriptions[sub.user_id]
                self._pending.pop(sub.user_id, None)

    def delivered(self, delivery_id: str) -> None:
        """A stream sent this item; it is marked delivered at once, with every other item
        sent meanwhile, by the marking task (not the reading pass: a warning created now
        does not wait for that write)."""
        self._delivered.add(delivery_id)
        self._flush_wake.set()

    def notify(self, user_ids: Iterable[str | None]) -> None:
        """Something was created here for these users: look now."""
        wanted = {u for u in user_ids if u is not None and u in self._subscriptions}
        if wanted:
            self._due.update(wanted)
            self._wake.set()

    @property
    def listening(self) -> int:
        return sum(len(v) for v in self._subscriptions.values())

    # -- the reader ------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="warning-push")
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._run_marks(), name="warning-push-marks")

    async def stop(self) -> None:
        for task in (self._task, self._flusher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._flusher = None
        with contextlib.suppress(Exception):
            await self._flush_delivered()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.settings.stream_poll_seconds
        full_at = loop.time() + interval
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, full_at - loop.time()))
            self._wake.clear()
            due, self._due = self._due, set()
            full = loop.time() >= full_at
            if full:
                full_at = loop.time() + interval
            try:
                await self.pass_once(None if full else due)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The type only: a database error's parameters may hold phone numbers.
                log.error("push pass failed", error=type(exc).__name__)
                await asyncio.sleep(min(1.0, self.settings.stream_poll_seconds))

    async def _run_marks(self) -> None:
        while True:
            await self._flush_wake.wait()
            self._flush_wake.clear()
            try:
                await self._flush_delivered()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("marking pushes delivered failed", error=type(exc).__name__)
                await asyncio.sleep(min(1.0, self.settings.stream_poll_seconds))
                self._flush_wake.set()  # the ids were kept: try again

    async def pass_once(self, only: set[str] | None = None) -> None:
        """Read what is pending for every followed user (or for those of ``only``)."""
        users = sorted(self._subscriptions if only is None else only & self._subscriptions.keys())
        if not users:
            return
        assert self.db is not None, "a PushHub that reads needs its database"
        self.passes += 1
        since = datetime.now(UTC) - self.settings.notification_ttl
        async with self.db.read() as conn:
            pending: list[deliveries_repo.PendingPush] = []
            for chunk in chunks(users, USERS_PER_QUERY):
                pending += await deliveries_repo.pending_push_versions(conn, chunk, since, BATCH)
            by_user: dict[str, list[deliveries_repo.PendingPush]] = {u: [] for u in users}
            for p in pending:
                by_user.setdefault(p.user_id, []).append(p)
            changed = {
                user: tuple((p.id, p.version) for p in found)
                for user, found in by_user.items()
                if user not in self._pending
                or self._pending[user].versions != tuple((p.id, p.version) for p in found)
            }
            # Only the items that are new or whose version moved: a user with 200 pending
            # warnings and one new one costs one warning read, not 200.
            read = await _read_items(
                conn,
                [
                    p
                    for p in pending
                    if p.user_id in changed and self._known(p.user_id).unchanged(p) is None
                ],
            )
        for user, versions in changed.items():
            subs = self._subscriptions.get(user)
            if not subs:
                continue  # every stream of the user closed while we read
            before = self._known(user)
            items: list[tuple[str, PushItem]] = []
            known: dict[str, tuple[object, PushItem]] = {}
            for p in by_user[user]:
                item = read.get(p.id) or before.unchanged(p)
                if item is not None:
                    items.append((p.id, item))
                    known[p.id] = (p.version, item)
            self._pending[user] = _Pending(versions, items, known)
            for sub in subs:
                self._publish_to(sub, items)

    def _known(self, user_id: str) -> _Pending:
        return self._pending.get(user_id) or _NOTHING

    def _publish_to(self, sub: Subscription, items: list[tuple[str, PushItem]]) -> None:
        sub.items = items
        sub.published = True
        sub.wake.set()

    async def _flush_delivered(self) -> None:
        if not self._delivered or self.db is None:
            return
        ids, self._delivered = sorted(self._delivered), set()
        try:
            await _mark_delivered(self.db, ids)
        except BaseException:
            self._delivered.update(ids)  # tried again on the next pass
            raise


async def _read_items(
    conn: AsyncConnection, pending: list[deliveries_repo.PendingPush]
) -> dict[str, PushItem]:
    """The items (warnings with their deliveries, notifications) of these pending pushes."""
    found: dict[str, PushItem] = {}
    notifications = [p.id for p in pending if p.warning_id is None]
    warned = {p.id: p.warning_id for p in pending if p.warning_id is not None}
    for chunk in chunks(notifications):
        for d in await deliveries_repo.get_many(conn, chunk):
            found[d.id] = d
    warning_ids = sorted(set(warned.values()))
    by_id: dict[str, Warning] = {}
    for chunk in chunks(warning_ids):
        by_id.update((w.id, w) for w in await warnings_repo.get_many(conn, chunk))
    for delivery_id, warning_id in warned.items():
        if warning_id in by_id:
            found[delivery_id] = by_id[warning_id]
    return found


async def follow(hub: PushHub, user_id: str) -> AsyncIterator[PushItem]:
    """Everything pending for the user, then new items as they come, until the caller stops."""
    sub = hub.subscribe(user_id)
    sent: set[str] = set()
    try:
        while True:
            await sub.wake.wait()
            sub.wake.clear()
            items = sub.items
            # What is no longer pending never comes back: forget it (the set stays small).
            sent.intersection_update(d for d, _ in items)
            for delivery_id, item in items:
                if delivery_id in sent:
                    continue
                yield item
                sent.add(delivery_id)
                hub.delivered(delivery_id)
    finally:
        hub.unsubscribe(sub)


async def _mark_delivered(db: Database, delivery_ids: list[str]) -> None:
    now = datetime.now(UTC)
    async with UnitOfWork(db) as uow:
        touched = await deliveries_repo.advance(
            uow.conn, {i: (DeliveryState.DELIVERED, None) for i in delivery_ids}, now
        )
        await warnings_repo.refresh_states(uow.conn, touched, now)
        await uow.commit()
