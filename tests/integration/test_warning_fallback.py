"""An SMS that falls back from the app push (``sms@N``), on a real database (SQLite and
PostgreSQL): written with the warning in the same transaction, due N seconds later; not
sent once the push reached the person's stream or they acknowledged; sent when neither
happened in time; never made due early by a relay's restart."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import sqlalchemy as sa

from services.common.db import Database, UnitOfWork
from services.common.indicators import IndicatorKind, normalize
from services.common.outbox import OutboxEvent, OutboxRelay
from services.warning.adapters import warnings_repo
from services.warning.adapters.tables import outbox
from services.warning.adapters.warnings_repo import (
    SMS_BULK_FALLBACK_TOPIC,
    SMS_FALLBACK_TOPIC,
    SMS_TOPIC,
    SMS_TOPICS,
)
from services.warning.domain.model import (
    Channel,
    DeliveryState,
    Person,
    Reason,
    RiskLevel,
    Warning,
    WarningState,
)
from services.warning.domain.policy import DEFAULT_SCREENING_POLICY, TierPolicy
from services.warning.service_layer import push, warnings
from services.warning.service_layer.push import PushHub
from services.warning.settings import WarningSettings
from tests.integration.warning_database import warning_database  # noqa: F401 (db)

SETTINGS = WarningSettings(follow_risk=False, policy=TierPolicy.parse(DEFAULT_SCREENING_POLICY))
#: Only a stream that never gets its item waits this long (a failure, not a measure).
STUCK_SECONDS = 30.0


async def warn(db: Database, person: Person, caller: str) -> Warning:
    reason = Reason(normalize(IndicatorKind.PHONE_NUMBER, caller), None)
    async with UnitOfWork(db) as uow:
        done = await warnings.dispatch(
            uow, SETTINGS, person, RiskLevel.MEDIUM, reason, None, datetime.now(UTC)
        )
        await uow.commit()
    return done.warning


async def warn_in_fanout(db: Database, person: Person, caller: str) -> Warning:
    draft = warnings.Draft(
        person, RiskLevel.MEDIUM, Reason(normalize(IndicatorKind.PHONE_NUMBER, caller), None),
        fanout_id="fanout-1",
    )  # fmt: skip
    async with UnitOfWork(db) as uow:
        (created,) = await warnings.create_warnings(uow.conn, SETTINGS, [draft], datetime.now(UTC))
        await uow.commit()
    assert created is not None
    return created


async def stored(db: Database, warning_id: str) -> Warning:
    async with db.read() as conn:
        (found,) = await warnings_repo.get_many(conn, [warning_id])
    return found


def sms_of(w: Warning) -> str:
    return next(d.id for d in w.deliveries if d.channel == Channel.SMS)


def state_of(w: Warning, channel: Channel) -> DeliveryState:
    return next(d.state for d in w.deliveries if d.channel == channel)


class Event(NamedTuple):
    topic: str
    next_attempt_time: datetime
    deliver_time: datetime | None


async def event_of(db: Database, key: str) -> Event:
    async with db.read() as conn:
        row = (
            await conn.execute(
                sa.select(outbox.c.topic, outbox.c.next_attempt_time, outbox.c.deliver_time).where(
                    outbox.c.key == key
                )
            )
        ).one()
    return Event(row.topic, row.next_attempt_time, row.deliver_time)


async def time_passes(db: Database, key: str) -> None:
    """The fallback's delay is over (its due time moved to the past, rather than waited)."""
    async with UnitOfWork(db) as uow:
        await uow.conn.execute(
            sa.update(outbox)
            .where(outbox.c.key == key)
            .values(next_attempt_time=datetime.now(UTC) - timedelta(seconds=1))
        )
        await uow.commit()


class Relay:
    """The outbox relay of the warning service with a handler that records what it sends."""

    def __init__(self, db: Database) -> None:
        self.sent: list[str] = []
        self.relay = OutboxRelay(db, outbox, dict.fromkeys(SMS_TOPICS, self.send))

    async def send(self, event: OutboxEvent) -> None:
        self.sent.append(event.key)


async def delivered_on_a_stream(db: Database, person: Person, warning: Warning) -> None:
    """The warning reaches the user's open stream and the hub marks its push delivered."""
    assert person.user_id is not None
    hub = PushHub(db, SETTINGS)
    stream = push.follow(hub, person.user_id)
    waiting = asyncio.ensure_future(asyncio.wait_for(anext(stream), STUCK_SECONDS))
    await settle()  # the stream subscribes
    await hub.pass_once()  # the stream's first pass reads what is pending
    item = await waiting
    assert isinstance(item, Warning)
    assert item.id == warning.id
    more = asyncio.ensure_future(anext(stream))  # the stream goes on (it sent the item)
    await settle()
    await hub.stop()  # marks what the streams sent delivered
    more.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await more
    await stream.aclose()


async def settle() -> None:
    """Let the stream's task run up to its next wait."""
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_push_that_reaches_the_stream_makes_the_sms_unneeded(db: Database) -> None:
    person = Person("+8613800000101", user_id="user-101")
    created = await warn(db, person, "13900000101")
    event = await event_of(db, sms_of(created))
    assert event.topic == SMS_FALLBACK_TOPIC
    assert event.next_attempt_time.replace(tzinfo=UTC) >= created.create_time + timedelta(seconds=4)
    relay = Relay(db)
    assert await relay.relay.relay_once() == 0  # not due yet

    await delivered_on_a_stream(db, person, created)
    after = await stored(db, created.id)
    assert after.state == WarningState.DELIVERED
    assert state_of(after, Channel.APP_PUSH) == DeliveryState.DELIVERED
    assert state_of(after, Channel.SMS) == DeliveryState.NOT_NEEDED
    assert (await event_of(db, sms_of(created))).deliver_time is not None
    await time_passes(db, sms_of(created))
    assert await relay.relay.relay_once() == 0
    assert relay.sent == []


async def test_the_sms_is_sent_when_the_push_did_not_reach_the_person(db: Database) -> None:
    person = Person("+8613800000102", user_id="user-102")
    created = await warn(db, person, "13900000102")
    await time_passes(db, sms_of(created))  # no stream was open within the delay
    relay = Relay(db)
    assert await relay.relay.relay_once() == 1
    assert relay.sent == [sms_of(created)]
    # The push arriving later does not touch the SMS already sent.
    await delivered_on_a_stream(db, person, created)
    after = await stored(db, created.id)
    assert state_of(after, Channel.SMS) == DeliveryState.QUEUED  # the handler records SENT
    assert state_of(after, Channel.APP_PUSH) == DeliveryState.DELIVERED


async def test_acknowledging_makes_the_sms_unneeded(db: Database) -> None:
    person = Person("+8613800000103", user_id="user-103")
    created = await warn(db, person, "13900000103")
    async with UnitOfWork(db) as uow:
        acknowledged = await warnings.acknowledge(uow, created.id, "user-103", datetime.now(UTC))
        await uow.commit()
    assert acknowledged.state == WarningState.ACKNOWLEDGED
    assert state_of(acknowledged, Channel.SMS) == DeliveryState.NOT_NEEDED
    relay = Relay(db)
    await time_passes(db, sms_of(created))
    assert await relay.relay.relay_once() == 0


async def test_a_number_without_the_app_is_texted_at_once(db: Database) -> None:
    created = await warn(db, Person("+8613800000104"), "13900000104")
    event = await event_of(db, sms_of(created))
    assert event.topic == SMS_TOPIC
    relay = Relay(db)
    assert await relay.relay.relay_once() == 1
    assert relay.sent == [sms_of(created)]


async def test_a_relay_restart_does_not_send_a_fallback_early(db: Database) -> None:
    person = Person("+8613800000105", user_id="user-105")
    created = await warn(db, person, "13900000105")
    relay = Relay(db)
    await relay.relay._make_due()  # what a relay does when it starts or a peer comes back
    assert await relay.relay.relay_once() == 0
    assert (await event_of(db, sms_of(created))).deliver_time is None


async def test_a_fanouts_fallback_has_its_own_topic_and_is_made_unneeded_alike(
    db: Database,
) -> None:
    """A fan-out's fallback SMS waits behind single warnings' (``SMS_BULK_FALLBACK_TOPIC``)
    and is cancelled when the push reaches the person, as theirs is."""
    person = Person("+8613800000106", user_id="user-106")
    created = await warn_in_fanout(db, person, "13900000106")
    assert (await event_of(db, sms_of(created))).topic == SMS_BULK_FALLBACK_TOPIC
    await delivered_on_a_stream(db, person, created)
    after = await stored(db, created.id)
    assert state_of(after, Channel.SMS) == DeliveryState.NOT_NEEDED
    relay = Relay(db)
    await time_passes(db, sms_of(created))
    assert await relay.relay.relay_once() == 0
    assert relay.sent == []
