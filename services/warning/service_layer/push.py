"""App pushes: each user's live stream of warnings and notifications, fed by one reader.

The database is the only state: what is pending for a user is what their streams
send. ``PushHub`` is the one reader of it for every stream open in this process:
each ``stream_poll_seconds`` one pass asks what is pending for every user with an
open stream, in one query per 500 users that returns ids and versions only (when a
notification is created here, or a stream opens for a user it does not follow yet, a
pass at once for those users only: what was created here concerns them alone, and
the full pass still comes every interval for what other replicas created), and
reads the items themselves only where they are new or their version changed (a user
with many unacknowledged warnings and one new one costs one read). Each
stream then takes its user's items from memory. What the streams sent is marked
delivered by a second task, in one transaction for everything sent since its last one
(a read pass never waits for that write). So N open streams cost one pass per interval,
whether N is 1 or 1,000 and whether they are one user's or many.

A warning created in this process (a screening, a fan-out chunk) is not read at all: once
committed it is published from memory (``publish``) with the version its rows were
inserted with, in its place in the user's feed; a pass then finds it unchanged. Marking a
push delivered hands the hub the states and the time it wrote, so that does not make the
warning look changed either: each warning created here costs the hub no read.

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
import bisect
import contextlib
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.db import Database, UnitOfWork
from services.common.logs import get_logger
from services.warning.adapters import deliveries_repo, fallbacks_repo, warnings_repo
from services.warning.adapters.sql import chunks
from services.warning.domain.model import Channel, Delivery, DeliveryState, Warning, WarningState
from services.warning.settings import WarningSettings

log = get_logger("warning.push")

#: At most this many pending items of one user are offered at a time.
BATCH = 200
#: Users per query of a pass.
USERS_PER_QUERY = 500

PushItem = Warning | Delivery  # a Delivery here is a notification
#: What a pass compares to know whether an item changed (``PendingPush.version``).
Version = tuple[datetime, datetime | None]


@dataclass(eq=False)
class Subscription:
    """One open stream: it is woken when its user's pending items are (re)published."""

    user_id: str
    items: list[tuple[str, PushItem]] = field(default_factory=list)
    published: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True)
class _Entry:
    """One pending push as the hub knows it: its place in the feed (create time, id), the
    version it was read (or published) at, and the item itself."""

    id: str
    order: tuple[datetime, str]
    version: Version
    item: PushItem


@dataclass
class _Pending:
    """What is pending for one user, oldest first, as last read or published; a pass reads
    again only what is new or whose version changed."""

    entries: list[_Entry] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.versions = tuple((e.id, e.version) for e in self.entries)
        self.items: list[tuple[str, PushItem]] = [(e.id, e.item) for e in self.entries]
        self.known = {e.id: e for e in self.entries}

    def unchanged(self, pending: deliveries_repo.PendingPush) -> PushItem | None:
        found = self.known.get(pending.id)
        return found.item if found is not None and found.version == pending.version else None

    def with_entry(self, entry: _Entry) -> _Pending:
        """These items and ``entry`` (replacing one of the same id), in feed order."""
        entries = [e for e in self.entries if e.id != entry.id]
        bisect.insort(entries, entry, key=lambda e: e.order)
        return _Pending(entries)


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
        #: Warnings published from memory, by user, numbered: a pass that began before one
        #: was published may not see it, and must not drop it.
        self._published: dict[str, dict[str, tuple[int, _Entry]]] = {}
        self._published_count = 0
        self._task: asyncio.Task[None] | None = None
        self._flush_wake = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        #: Passes made (each costs one query per 500 followed users, plus reads of changes).
        self.passes = 0
        #: Pushes whose item a pass read from the database (new, or changed since known).
        self.reads = 0

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
                self._published.pop(sub.user_id, None)

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

    def publish(self, created: Iterable[Warning]) -> None:
        """Warnings created in this process, committed: to their users' open streams from
        memory, with the version their rows were inserted with, so no pass reads them.

        A user whose pending items were not read yet, or who has a full batch of them, is
        read instead (``notify``): the feed's order and its first ``BATCH`` items are the
        database's."""
        touched: set[str] = set()
        for warning in created:
            shown: Warning | None = None
            for d in warning.deliveries:
                user = d.user_id
                if d.channel != Channel.APP_PUSH or user is None or d.state != DeliveryState.QUEUED:
                    continue
                if user not in self._subscriptions:
                    continue
                known = self._pending.get(user)
                if known is None or len(known.entries) >= BATCH:
                    self.notify([user])
                    continue
                shown = shown or warnings_repo.as_read(warning)
                entry = _Entry(
                    d.id,
                    (d.create_time, d.id),
                    (d.update_time, warnings_repo.inserted_update_time(warning)),
                    shown,
                )
                self._published_count += 1
                self._published.setdefault(user, {})[d.id] = (self._published_count, entry)
                self._pending[user] = known.with_entry(entry)
                touched.add(user)
        for user in touched:
            for sub in self._subscriptions.get(user, ()):
                self._publish_to(sub, self._pending[user].items)

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
        published_before = self._published_count
        since = datetime.now(UTC) - self.settings.notification_ttl
        async with self.db.read() as conn:
            pending: list[deliveries_repo.PendingPush] = []
            for chunk in chunks(users, USERS_PER_QUERY):
                pending += await deliveries_repo.pending_push_versions(conn, chunk, since, BATCH)
            by_user: dict[str, list[deliveries_repo.PendingPush]] = {u: [] for u in users}
            for p in pending:
                by_user.setdefault(p.user_id, []).append(p)
            changed = {
                user: found
                for user, found in by_user.items()
                if user not in self._pending
                or self._pending[user].versions != tuple((p.id, p.version) for p in found)
            }
            # Only the items that are new or whose version moved: a user with 200 pending
            # warnings and one new one costs one warning read, not 200. What is kept is taken
            # now: marking pushes delivered may change what is known while this pass reads.
            kept: dict[str, PushItem] = {}
            to_read: list[deliveries_repo.PendingPush] = []
            for found in changed.values():
                for p in found:
                    item = self._known(p.user_id).unchanged(p)
                    if item is None:
                        to_read.append(p)
                    else:
                        kept[p.id] = item
            self.reads += len(to_read)
            read = await _read_items(conn, to_read)
        for user, found in changed.items():
            # Published from memory since this pass began (committed, perhaps after its
            # query): kept until a pass that began after them reads them.
            later = self._published_since(user, published_before)
            subs = self._subscriptions.get(user)
            if not subs:
                continue  # every stream of the user closed while we read
            listed = {p.id for p in found}
            entries = [e for e in later if e.id not in listed]
            for p in found:
                item = read.get(p.id) or kept.get(p.id)
                if item is not None:
                    entries.append(_Entry(p.id, (p.create_time, p.id), p.version, item))
            entries.sort(key=lambda e: e.order)
            self._pending[user] = _Pending(entries)
            for sub in subs:
                self._publish_to(sub, self._pending[user].items)
        for user in by_user.keys() - changed.keys():
            self._published_since(user, published_before)

    def _published_since(self, user: str, count: int) -> list[_Entry]:
        """What was published for the user after the ``count``-th publication; forgets the
        earlier ones (a pass that began after them reads them from the database)."""
        published = self._published.get(user)
        if not published:
            return []
        later = {i: (n, e) for i, (n, e) in published.items() if n > count}
        if later:
            self._published[user] = later
        else:
            del self._published[user]
        return [e for _, e in later.values()]

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
            marked = await _mark_delivered(self.db, ids)
        except BaseException:
            self._delivered.update(ids)  # tried again on the next pass
            raise
        self._marked(marked)

    def _marked(self, marked: _Marked) -> None:
        """Pushes marked delivered: the warnings known here take the states and versions the
        marking wrote, so the next pass finds them unchanged and reads nothing (a stream
        opened later shows the warning delivered)."""
        if not marked.moved:
            return
        for user, known in list(self._pending.items()):
            # By id (a few marked, up to BATCH known per user), not by every known entry.
            hit = [known.known[i] for i in marked.moved if i in known.known]
            if not hit:
                continue
            for entry in hit:
                if not isinstance(entry.item, Warning):
                    continue  # a notification delivered is no longer pending
                patched = _delivered_entry(entry, marked)
                known = known.with_entry(patched)
                published = self._published.get(user)
                if published is not None and entry.id in published:
                    published[entry.id] = (published[entry.id][0], patched)
            self._pending[user] = known


@dataclass(frozen=True)
class _Marked:
    """What marking pushes delivered wrote: the deliveries that moved, the warnings whose
    state changed with it, and the time written on both."""

    moved: set[str]
    states: dict[str, WarningState]
    time: datetime


def _delivered_entry(entry: _Entry, marked: _Marked) -> _Entry:
    warning = entry.item
    assert isinstance(warning, Warning)
    state = marked.states.get(warning.id)
    shown = replace(
        warning,
        state=state or warning.state,
        deliveries=tuple(
            replace(d, state=DeliveryState.DELIVERED, update_time=marked.time)
            if d.id == entry.id
            else d
            for d in warning.deliveries
        ),
    )
    version = (marked.time, marked.time if state is not None else entry.version[1])
    return _Entry(entry.id, entry.order, version, shown)


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


async def follow(hub: PushHub, user_id: str) -> AsyncGenerator[PushItem, None]:
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


async def _mark_delivered(db: Database, delivery_ids: list[str]) -> _Marked:
    now = datetime.now(UTC)
    async with UnitOfWork(db) as uow:
        moved, delivered = await deliveries_repo.mark_pushes_delivered(uow.conn, delivery_ids, now)
        await fallbacks_repo.cancel_for_pushes(uow.conn, sorted(moved), now)
        await uow.commit()
    return _Marked(moved, dict.fromkeys(delivered, WarningState.DELIVERED), now)
