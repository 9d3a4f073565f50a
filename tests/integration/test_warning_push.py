"""The push hub on a real database (SQLite and PostgreSQL): warnings created in this process
reach the open streams from memory, those of another replica through a pass, only the users
a pass is for are read, and a push marked delivered is not read again."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from services.common.db import Database, UnitOfWork
from services.common.indicators import IndicatorKind, normalize
from services.warning.adapters import deliveries_repo, warnings_repo
from services.warning.domain.model import (
    Channel,
    DeliveryState,
    Person,
    Reason,
    RiskLevel,
    Warning,
    WarningState,
)
from services.warning.entrypoints import convert
from services.warning.service_layer import push, warnings
from services.warning.service_layer.push import PushHub, PushItem
from services.warning.settings import WarningSettings
from tests.integration.warning_database import warning_database  # noqa: F401 (db)

SETTINGS = WarningSettings(follow_risk=False)
#: Only a stream that never gets its item waits this long (a failure, not a measure).
STUCK_SECONDS = 30.0


def app_user(i: int) -> Person:
    return Person(f"+86138{i:08d}", user_id=f"user-{i}")


async def warn(db: Database, person: Person, caller: str) -> Warning:
    """A warning committed, as any replica's request would."""
    reason = Reason(normalize(IndicatorKind.PHONE_NUMBER, caller), None)
    async with UnitOfWork(db) as uow:
        done = await warnings.dispatch(
            uow, SETTINGS, person, RiskLevel.MEDIUM, reason, None, datetime.now(UTC)
        )
        await uow.commit()
    assert not done.suppressed
    return done.warning


async def stored(db: Database, warning_id: str) -> Warning:
    async with db.read() as conn:
        (found,) = await warnings_repo.get_many(conn, [warning_id])
    return found


async def next_item(stream: AsyncIterator[PushItem]) -> Warning:
    item = await asyncio.wait_for(anext(stream), STUCK_SECONDS)
    assert isinstance(item, Warning)
    return item


def push_of(w: Warning) -> str:
    return next(d.id for d in w.deliveries if d.channel == Channel.APP_PUSH)


async def settle() -> None:
    """Let the streams' tasks run up to their next wait."""
    for _ in range(20):
        await asyncio.sleep(0)


async def stop(waiting: asyncio.Future[Any]) -> None:
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting


async def test_a_warning_created_here_reaches_the_stream_from_memory(db: Database) -> None:
    hub = PushHub(db, SETTINGS)
    person = app_user(1)
    stream = push.follow(hub, "user-1")
    older = await warn(db, person, "13900000001")  # before the stream's first pass
    waiting = asyncio.ensure_future(next_item(stream))
    await settle()
    await hub.pass_once()  # the stream's first pass: one read
    assert (await waiting).id == older.id
    reads = hub.reads

    created = await warn(db, person, "13900000002")
    hub.publish([created])
    shown = await next_item(stream)
    assert shown.id == created.id
    # Exactly what a read would have shown.
    assert convert.warning_pb(shown) == convert.warning_pb(await stored(db, created.id))
    await hub.pass_once()  # a full pass: the published warning is known at its version
    assert hub.reads == reads
    await stream.aclose()


async def test_a_warning_created_by_another_replica_reaches_the_stream(db: Database) -> None:
    here, other = PushHub(db, SETTINGS), PushHub(db, SETTINGS)
    stream = push.follow(here, "user-2")
    waiting = asyncio.ensure_future(next_item(stream))
    await settle()
    await here.pass_once()
    created = await warn(db, app_user(2), "13900000003")
    other.publish([created])  # the other replica's streams only
    await settle()
    assert not waiting.done()
    await here.pass_once()  # the full pass every stream_poll_seconds
    assert (await waiting).id == created.id
    await stream.aclose()


async def test_a_pass_for_notified_users_reads_only_theirs(db: Database) -> None:
    hub = PushHub(db, SETTINGS)
    streams = {u: push.follow(hub, u) for u in ("user-3", "user-4")}
    waiting = {u: asyncio.ensure_future(next_item(s)) for u, s in streams.items()}
    await settle()
    await hub.pass_once()  # both followed, nothing pending
    three = await warn(db, app_user(3), "13900000004")
    four = await warn(db, app_user(4), "13900000005")
    passes, reads = hub.passes, hub.reads
    await hub.pass_once({"user-3"})
    assert (hub.passes - passes, hub.reads - reads) == (1, 1)  # user-3's warning only
    assert (await waiting["user-3"]).id == three.id
    assert not waiting["user-4"].done()
    await hub.pass_once()
    assert hub.reads - reads == 2
    assert (await waiting["user-4"]).id == four.id
    for s in streams.values():
        await s.aclose()


async def test_a_push_marked_delivered_is_not_read_again(db: Database) -> None:
    hub = PushHub(db, SETTINGS)
    stream = push.follow(hub, "user-5")
    first = asyncio.ensure_future(next_item(stream))
    await settle()
    await hub.pass_once()  # followed, nothing pending
    created = await warn(db, app_user(5), "13900000006")
    hub.publish([created])
    assert (await first).id == created.id
    waiting = asyncio.ensure_future(anext(stream))  # the stream goes on (it sent the item)
    await settle()
    await hub.stop()  # marks what the streams sent delivered
    after = await stored(db, created.id)
    assert after.state == WarningState.DELIVERED
    assert next(d for d in after.deliveries if d.id == push_of(after)).state == (
        DeliveryState.DELIVERED
    )
    reads = hub.reads
    await hub.pass_once()
    assert hub.reads == reads
    assert not waiting.done()  # not sent twice
    # A stream opened now shows the warning as the database has it, unread.
    again = push.follow(hub, "user-5")
    shown = await next_item(again)
    assert convert.warning_pb(shown) == convert.warning_pb(after)
    assert hub.reads == reads
    await stop(waiting)
    await again.aclose()
    await stream.aclose()


async def test_published_and_read_warnings_come_in_feed_order(db: Database) -> None:
    """A warning published for a user whose pending items were not read yet waits for that
    read; published ones take their place among what the database holds."""
    hub = PushHub(db, SETTINGS)
    person = app_user(6)
    stream = push.follow(hub, "user-6")
    waiting = asyncio.ensure_future(next_item(stream))
    await settle()  # subscribed, not read yet
    first = await warn(db, person, "13900000007")
    second = await warn(db, person, "13900000008")
    hub.publish([second])  # the user is not read yet: no item from memory before `first`
    await settle()
    assert not waiting.done()
    await hub.pass_once()
    assert [(await waiting).id, (await next_item(stream)).id] == [first.id, second.id]
    third = await warn(db, person, "13900000009")
    hub.publish([third, third])  # twice: still one push
    assert (await next_item(stream)).id == third.id
    await hub.pass_once()
    more = asyncio.ensure_future(anext(stream))
    await settle()
    assert not more.done()  # nothing sent twice
    await stop(more)
    await stream.aclose()


async def test_a_late_mark_leaves_an_acknowledged_warning_acknowledged(db: Database) -> None:
    created = await warn(db, app_user(7), "13900000010")
    async with UnitOfWork(db) as uow:
        await warnings_repo.acknowledge(uow.conn, created.id, datetime.now(UTC))
        await uow.commit()
    async with UnitOfWork(db) as uow:
        moved, changed = await deliveries_repo.mark_pushes_delivered(
            uow.conn, [push_of(created)], datetime.now(UTC)
        )
        await uow.commit()
    assert (moved, changed) == (set(), set())
    after = await stored(db, created.id)
    assert after.state == WarningState.ACKNOWLEDGED
    push_state = next(d.state for d in after.deliveries if d.id == push_of(created))
    assert push_state == DeliveryState.ACKNOWLEDGED


async def test_a_warning_published_during_a_pass_stays_on_the_stream(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Committed and published after a pass's query read (so the pass did not see it): the
    pass must not drop it from the stream's items, or the next pass would bring it back and
    the stream would send it twice."""
    hub = PushHub(db, SETTINGS)
    stream = push.follow(hub, "user-8")
    first = asyncio.ensure_future(next_item(stream))
    await settle()
    await hub.pass_once()  # followed, nothing pending
    queried, go_on = asyncio.Event(), asyncio.Event()
    versions = deliveries_repo.pending_push_versions

    async def paused(*args: Any) -> list[deliveries_repo.PendingPush]:
        found = await versions(*args)
        queried.set()
        await go_on.wait()
        return found

    monkeypatch.setattr(deliveries_repo, "pending_push_versions", paused)
    reading = asyncio.ensure_future(hub.pass_once())
    await queried.wait()
    created = await warn(db, app_user(8), "13900000011")
    hub.publish([created])
    assert (await first).id == created.id
    more = asyncio.ensure_future(anext(stream))
    await settle()
    go_on.set()
    await reading  # it read before the warning was committed
    monkeypatch.setattr(deliveries_repo, "pending_push_versions", versions)
    await settle()
    await hub.pass_once()  # this one sees it
    await settle()
    assert not more.done()  # sent once
    again = push.follow(hub, "user-8")  # a second stream of the user gets it from memory
    assert (await next_item(again)).id == created.id
    await stop(more)
    await again.aclose()
    await stream.aclose()
