"""The order in which the warning service's outbox relay claims, on a real database (SQLite
and PostgreSQL): a fan-out's SMS have a topic of their own, so a single warning's SMS
written behind a few hundred of them goes out in the relay's first batch, right after a
bank order written with it, also while the relay gives way to a fan-out being queued; the
fan-out's SMS follow in the order they were written, and every event goes out once."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from services.common.db import Database, UnitOfWork
from services.common.indicators import IndicatorKind, normalize
from services.common.outbox import GIVE_WAY_BATCH, OutboxEvent, OutboxRelay
from services.warning.adapters.bank_orders_repo import BANK_ORDER_TOPIC
from services.warning.adapters.directory import PartnerDirectory
from services.warning.adapters.tables import outbox
from services.warning.adapters.warnings_repo import SMS_BULK_TOPIC, SMS_TOPIC, SMS_TOPICS
from services.warning.bootstrap import URGENT_TOPICS
from services.warning.domain.model import BankOrderType, Channel, Person, Reason, RiskLevel
from services.warning.service_layer import bank_orders, warnings
from services.warning.settings import WarningSettings
from tests.integration.warning_database import warning_database  # noqa: F401 (db)

SETTINGS = WarningSettings(follow_risk=False)
FANOUT_SMS = 300
BATCH = 50


def reason(caller: str) -> Reason:
    return Reason(normalize(IndicatorKind.PHONE_NUMBER, caller), None)


async def fanout_written(db: Database) -> None:
    """A fan-out's chunk: a LOW warning (an SMS: no app) to each of FANOUT_SMS contacts."""
    drafts = [
        warnings.Draft(
            Person(f"+86138{i:08d}"), RiskLevel.LOW, reason("13900000001"), fanout_id="f-1"
        )
        for i in range(FANOUT_SMS)
    ]
    async with UnitOfWork(db) as uow:
        created = await warnings.create_warnings(uow.conn, SETTINGS, drafts, datetime.now(UTC))
        await uow.commit()
    assert all(created)


async def single_and_order_written(db: Database) -> tuple[str, str]:
    """A dispatched warning's SMS and a stop-payment order, in one transaction (the SMS
    first); their keys (the delivery id, the order id)."""
    directory = PartnerDirectory()
    try:
        async with UnitOfWork(db) as uow:
            now = datetime.now(UTC)
            done = await warnings.dispatch(
                uow, SETTINGS, Person("+8613700000001"), RiskLevel.LOW, reason("13900000002"),
                None, now,
            )  # fmt: skip
            order = await bank_orders.create(
                uow,
                directory,
                BankOrderType.STOP_PAYMENT,
                normalize(IndicatorKind.BANK_ACCOUNT, "6222020200112233445"),
                "case-1",
                None,
                "stop-payment",
                now,
            )
            await uow.commit()
    finally:
        await directory.close()
    (sms,) = (d.id for d in done.warning.deliveries if d.channel == Channel.SMS)
    return sms, order.id


async def written(db: Database) -> list[tuple[str, str]]:
    """Every outbox event's (topic, key), in the order written (id order)."""
    async with db.read() as conn:
        rows = await conn.execute(sa.select(outbox.c.topic, outbox.c.key).order_by(outbox.c.id))
        return [(r.topic, r.key) for r in rows]


async def test_a_single_warnings_sms_goes_out_in_the_first_batch_after_a_bank_order(
    db: Database,
) -> None:
    await fanout_written(db)
    sms, order = await single_and_order_written(db)
    events = await written(db)
    bulk = [key for topic, key in events if topic == SMS_BULK_TOPIC]
    assert len(bulk) == FANOUT_SMS
    assert events[FANOUT_SMS:] == [(SMS_TOPIC, sms), (BANK_ORDER_TOPIC, order)]

    received: list[str] = []

    async def receive(event: OutboxEvent) -> None:
        received.append(event.key)

    giving_way = True  # a fan-out is being queued in the process
    relay = OutboxRelay(
        db,
        outbox,
        {**dict.fromkeys(SMS_TOPICS, receive), BANK_ORDER_TOPIC: receive},
        batch=BATCH,
        urgent=URGENT_TOPICS,
        give_way=lambda: giving_way,
    )
    # Claimed and handed to the carrier in this order: the order, the SMS, the oldest bulk.
    assert await relay.relay_once() == 2 + GIVE_WAY_BATCH
    assert received == [order, sms, *bulk[:GIVE_WAY_BATCH]]
    giving_way = False
    while await relay.relay_once():
        pass
    assert received == [order, sms, *bulk]  # each once, the fan-out's in their order
    async with db.read() as conn:
        waiting = await conn.scalar(
            sa.select(sa.func.count()).select_from(outbox).where(outbox.c.deliver_time.is_(None))
        )
    assert waiting == 0


async def test_an_sms_written_before_the_upgrade_under_sms_is_still_sent(db: Database) -> None:
    """Rows of topic ``sms`` from before fan-outs had their own (a fan-out's among them) are
    sent by the same handler; they now count as single warnings' SMS."""
    await fanout_written(db)
    async with UnitOfWork(db) as uow:
        await uow.conn.execute(sa.update(outbox).values(topic=SMS_TOPIC))
        await uow.commit()
    received: list[str] = []

    async def receive(event: OutboxEvent) -> None:
        received.append(event.key)

    relay = OutboxRelay(db, outbox, dict.fromkeys(SMS_TOPICS, receive), urgent=URGENT_TOPICS)
    while await relay.relay_once():
        pass
    assert received == [key for _, key in await written(db)]
