"""The 12381 model end to end: a number confirmed high on the risk service warns everyone
recently in contact with it, once each, at a level that follows recency and frequency,
guardians included; app users get it on their stream, live or on reconnect; with two
replicas on one database only one follows the feed."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.risk.v1 import risk_pb2, risk_pb2_grpc
from services.api.antifraud.warning.v1 import warning_pb2 as pb
from services.api.antifraud.warning.v1 import warning_pb2_grpc
from services.common.server import RunningServer
from services.risk.bootstrap import build as build_risk
from services.warning.adapters.directory import PartnerDirectory
from services.warning.bootstrap import build
from tests import harness
from tests.e2e.test_warning_service import (
    FAST,
    Stack,
    eventually,
    number,
    register,
    sms_received,
    warning_stack,
)
from tests.harness import serving

FRAUD = "+8613912345678"
FRAUD_INDICATOR = common_pb2.Indicator(kind=common_pb2.INDICATOR_KIND_PHONE_NUMBER, value=FRAUD)
FOLLOWING = replace(FAST, follow_risk=True)
CONTACTS = 300


@dataclass
class World:
    stack: Stack
    risk: risk_pb2_grpc.RiskServiceStub
    risk_running: RunningServer
    url: str
    schema: str | None


@pytest.fixture
async def world(db_target: tuple[str, str | None], tmp_path: Path) -> AsyncIterator[World]:
    url, schema = db_target
    risk_schema = harness.new_schema("risk") if schema is not None else None
    risk_url = url if schema is not None else harness.sqlite_url(tmp_path, "risk")
    try:
        async with AsyncExitStack() as stack:
            risk_running = await stack.enter_async_context(
                serving(build_risk(url=risk_url, schema=risk_schema))
            )
            channel = await stack.enter_async_context(harness.channel(risk_running.address))
            warning = await stack.enter_async_context(
                warning_stack(url, schema, settings=FOLLOWING, risk_target=risk_running.address)
            )
            yield World(warning, risk_pb2_grpc.RiskServiceStub(channel), risk_running, url, schema)
    finally:
        if risk_schema is not None:
            await harness.drop_schema(risk_schema)


def stamp(t: datetime) -> Timestamp:
    found = Timestamp()
    found.FromDatetime(t)
    return found


def contact_plan(now: datetime) -> dict[str, tuple[int, datetime]]:
    """number -> (how many contacts with FRAUD, the latest): varied recency and frequency."""
    return {
        number(i): (1 + i % 6, now - timedelta(hours=1 + (i % 5) * 30)) for i in range(CONTACTS)
    }


async def record_contacts(
    stub: warning_pb2_grpc.WarningServiceStub, plan: dict[str, tuple[int, datetime]]
) -> None:
    events = []
    for phone, (times, last) in plan.items():
        for k in range(times):
            caller, callee = (FRAUD, phone) if k % 2 == 0 else (phone, FRAUD)
            kind = pb.CONTACT_KIND_CALL if k % 3 else pb.CONTACT_KIND_SMS
            events.append(
                pb.ContactEvent(
                    caller=caller,
                    callee=callee,
                    time=stamp(last - timedelta(minutes=k)),
                    kind=kind,
                    # As the carriers' screening saw FRAUD: a suspected fraud number.
                    caller_level=common_pb2.RISK_LEVEL_MEDIUM,
                )
            )
    reply = await stub.RecordContactEvents(pb.RecordContactEventsRequest(events=events))
    assert (reply.accepted_count, reply.rejected_count) == (len(events), 0)


async def confirm_high(risk: risk_pb2_grpc.RiskServiceStub) -> None:
    await risk.UpsertIndicator(
        risk_pb2.UpsertIndicatorRequest(
            request_id=str(uuid.uuid4()),
            indicator=FRAUD_INDICATOR,
            assertion=risk_pb2.Assertion(
                source_type=risk_pb2.SOURCE_TYPE_POLICE,
                source_id="police-110",
                level=common_pb2.RISK_LEVEL_HIGH,
                categories=[common_pb2.FRAUD_CATEGORY_IMPERSONATING_OFFICIALS],
                reason="confirmed by police",
            ),
        )
    )


async def fanouts(stub: warning_pb2_grpc.WarningServiceStub) -> list[pb.Fanout]:
    reply = await stub.ListFanouts(pb.ListFanoutsRequest(indicator=FRAUD_INDICATOR))
    return list(reply.fanouts)


async def all_warnings(stub: warning_pb2_grpc.WarningServiceStub) -> list[pb.Warning]:
    found: list[pb.Warning] = []
    token = ""
    while True:
        page = await stub.ListWarnings(
            pb.ListWarningsRequest(indicator=FRAUD_INDICATOR, page_size=500, page_token=token)
        )
        found.extend(page.warnings)
        token = page.next_page_token
        if not token:
            return found


async def test_a_confirmed_number_warns_its_contacts_once_each(world: World) -> None:
    stub = world.stack.stub
    now = datetime.now(UTC)
    plan = contact_plan(now)
    elder_phone, online_phone, offline_phone = number(7), number(11), number(12)
    await register(stub, "elder", elder_phone, ("13012345678", "13312345678"))
    await register(stub, "online", online_phone)
    await register(stub, "offline", offline_phone)
    await record_contacts(stub, plan)
    stream = stub.StreamWarnings(pb.StreamWarningsRequest(user_id="online"))
    try:
        await asyncio.sleep(0.3)
        await confirm_high(world.risk)

        async def done() -> pb.Fanout | None:
            found = await fanouts(stub)
            return found[0] if found and found[0].state == pb.FANOUT_STATE_DONE else None

        fanout = await eventually(done, timeout=60)
        live = await asyncio.wait_for(stream.read(), 10)
    finally:
        stream.cancel()
    assert (fanout.contact_count, fanout.warned_count, fanout.suppressed_count) == (
        CONTACTS,
        CONTACTS,
        0,
    )

    warnings = await all_warnings(stub)
    assert len(warnings) == CONTACTS
    masked = Counter(w.masked_phone_number for w in warnings)
    assert set(masked.values()) == {1}  # once each
    rule = FOLLOWING.contact_rule
    levels: Counter[int] = Counter()
    for w in warnings:
        assert w.fanout == fanout.name
        assert w.reason.category == common_pb2.FRAUD_CATEGORY_IMPERSONATING_OFFICIALS
        expected = rule.level(
            w.last_contact_time.ToDatetime(tzinfo=UTC),
            w.contact_count,
            w.create_time.ToDatetime(tzinfo=UTC),
        )
        assert w.level == int(expected)
        levels[w.level] += 1
    assert set(levels) == {
        common_pb2.RISK_LEVEL_LOW,
        common_pb2.RISK_LEVEL_MEDIUM,
        common_pb2.RISK_LEVEL_HIGH,
    }
    by_phone = {plan_phone: plan[plan_phone] for plan_phone in plan}
    sample = next(w for w in warnings if w.user_id == "offline")
    assert (sample.contact_count, sample.last_contact_time.ToDatetime(tzinfo=UTC)) == by_phone[
        offline_phone
    ]

    elder = next(w for w in warnings if w.user_id == "elder")
    assert sorted(d.masked_phone_number for d in elder.deliveries if d.guardian) == [
        "+86130****5678",
        "+86133****5678",
    ]
    assert live.warning.user_id == "online"
    assert live.warning.reason.indicator.value == FRAUD

    reconnect = stub.StreamWarnings(pb.StreamWarningsRequest(user_id="offline"))
    try:
        later = await asyncio.wait_for(reconnect.read(), 10)
    finally:
        reconnect.cancel()
    assert later.warning.name == sample.name

    # Every SMS of the fan-out reaches the carriers once.
    carried = sum(
        1
        for w in warnings
        for d in w.deliveries
        if d.channel in (pb.CHANNEL_SMS, pb.CHANNEL_FLASH_SMS)
    )

    async def all_sent() -> bool:
        return len(await sms_received(world.stack.partners)) >= carried

    await eventually(all_sent, timeout=60)
    received = await sms_received(world.stack.partners)
    assert len(received) == carried
    assert len({r.idempotency_key for r in received}) == carried

    # The number stays high (another source, a sighting): no second fan-out, nobody warned twice.
    await world.risk.AddIndicatorSighting(
        risk_pb2.AddIndicatorSightingRequest(
            request_id=str(uuid.uuid4()),
            indicator=FRAUD_INDICATOR,
            source_type=risk_pb2.SOURCE_TYPE_CARRIER,
            reporter_ref="carrier-cmcc",
        )
    )
    await asyncio.sleep(1.0)
    assert len(await fanouts(stub)) == 1
    assert len(await all_warnings(stub)) == CONTACTS


async def test_two_replicas_follow_the_feed_one_at_a_time(world: World) -> None:
    """Both replicas try to follow; one fan-out happens. A user streaming from each replica
    gets the warning, whichever replica created it."""
    stub = world.stack.stub
    await register(stub, "on-first", number(21))
    await register(stub, "on-second", number(22))
    await record_contacts(stub, contact_plan(datetime.now(UTC)))
    second = build(
        url=world.url,
        schema=world.schema,
        settings=FOLLOWING,
        directory=PartnerDirectory(world.stack.overrides),
        risk_target=world.risk_running.address,
    )
    async with (
        serving(second) as second_running,
        harness.channel(second_running.address) as second_channel,
    ):
        second_stub = warning_pb2_grpc.WarningServiceStub(second_channel)
        streams = [
            stub.StreamWarnings(pb.StreamWarningsRequest(user_id="on-first")),
            second_stub.StreamWarnings(pb.StreamWarningsRequest(user_id="on-second")),
        ]
        try:
            await asyncio.sleep(0.5)  # both replicas up, both trying to follow
            await confirm_high(world.risk)

            async def done() -> bool:
                found = await fanouts(stub)
                return bool(found) and all(f.state == pb.FANOUT_STATE_DONE for f in found)

            await eventually(done, timeout=60)
            live = [await asyncio.wait_for(s.read(), 10) for s in streams]
        finally:
            for s in streams:
                s.cancel()
        assert [m.warning.user_id for m in live] == ["on-first", "on-second"]
        assert len(await fanouts(stub)) == 1
        warnings = await all_warnings(second_stub)
        assert len(warnings) == CONTACTS
        assert len({w.masked_phone_number for w in warnings}) == CONTACTS
