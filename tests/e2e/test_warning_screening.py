"""Screening's side effects are durable, late contacts are warned, partners that lose
messages lose no warning, fan-outs are capped and report progress: through the gateway,
with every process running as deployed (tests/e2e/deployment.py), one deployment per
database for the module.

- The warning service is killed for 10 s while a carrier screens calls: every call answered
  RECORDED has its contact and the callee's warning; every call answered NOT_RECORDED is
  recorded once the carrier sends it again; none is recorded twice.
- The gateway is killed with SIGKILL mid-screening: what it answered as RECORDED is there.
- A contact reported after its number was listed is warned at once; a retried upload
  (same batch id) counts nothing twice.
- An SMS the carrier lost in a restart is sent again and delivered.
- A screened callee with the app open gets the push and no SMS (NOT_NEEDED); one without an
  open stream gets the SMS once the push did not reach them within the fallback's delay.
- A fan-out's call and home-visit tasks stop at their caps; its progress is by channel.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sized
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp

from services.api.antifraud.common.v1 import common_pb2 as c
from services.api.antifraud.gateway.v1 import gateway_pb2 as gw
from services.api.antifraud.partner.v1 import simulator_pb2
from services.api.antifraud.risk.v1 import risk_pb2 as rk
from services.api.antifraud.warning.v1 import warning_pb2 as wn
from tests.e2e.deployment import (
    SUITE_PARAMS,
    Deployment,
    Processes,
    deployment,
    eventually,
    new_phone,
)

pytestmark = pytest.mark.slow

Metadata = tuple[tuple[str, str], ...]
OUTAGE_SECONDS = 10.0
CALL_TASK_CAP = 2
HOME_VISIT_TASK_CAP = 1


@pytest.fixture(scope="module", params=SUITE_PARAMS)
async def suite(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Deployment]:
    data_dir: Path = tmp_path_factory.mktemp(f"screening-{request.param}")
    env = {
        "ANTIFRAUD_WARNING_SMS_POLL_SECONDS": "0.2",
        # Carriers here open a stream per batch; the gateway's per-key limit is not under test.
        "ANTIFRAUD_GATEWAY_RATE_PER_SECOND": "1000",
        "ANTIFRAUD_GATEWAY_RATE_BURST": "2000",
        "ANTIFRAUD_WARNING_FANOUT_CALL_TASK_CAP": str(CALL_TASK_CAP),
        "ANTIFRAUD_WARNING_FANOUT_HOME_VISIT_TASK_CAP": str(HOME_VISIT_TASK_CAP),
    }
    # One warning replica: killing it is an outage of the service.
    replicas = {"risk": 1, "warning": 1}
    async with deployment(request.param, data_dir, extra_env=env, replicas=replicas) as found:
        yield found


def phone(value: str) -> c.Indicator:
    return c.Indicator(kind=c.INDICATOR_KIND_PHONE_NUMBER, value=value)


def stamp(t: datetime) -> Timestamp:
    found = Timestamp()
    found.FromDatetime(t)
    return found


async def keys(suite: Deployment) -> tuple[Metadata, Metadata]:
    """(carrier, analyst) keys."""
    return (
        await suite.key(gw.ROLE_CARRIER, "carrier-cmcc"),
        await suite.key(gw.ROLE_ANALYST, "officer-7"),
    )


async def list_number(suite: Deployment, analyst: Metadata, number: str, level: int) -> None:
    await suite.risk.UpsertIndicator(
        rk.UpsertIndicatorRequest(
            request_id=str(uuid.uuid4()),
            indicator=phone(number),
            assertion=rk.Assertion(
                source_type=rk.SOURCE_TYPE_POLICE,
                source_id="officer-7",
                level=level,  # type: ignore[arg-type]
                reason="reported by victims",
            ),
        ),
        metadata=analyst,
    )


async def screen_batch(
    suite: Deployment, carrier: Metadata, events: list[gw.ScreenEvent]
) -> list[gw.ScreenDecision]:
    async def requests() -> AsyncIterator[gw.ScreenEventsRequest]:
        yield gw.ScreenEventsRequest(events=events)

    found: list[gw.ScreenDecision] = []
    async for response in suite.screening.ScreenEvents(requests(), metadata=carrier):
        found.extend(response.decisions)
    return found


def call(caller: str, callee: str) -> gw.ScreenEvent:
    return gw.ScreenEvent(
        event_id=str(uuid.uuid4()), caller=caller, callee=callee, kind=wn.CONTACT_KIND_CALL
    )


async def until_screened_as(suite: Deployment, carrier: Metadata, caller: str, action: int) -> str:
    """Wait until the risk service knows the caller; returns the callee of the call that
    was screened so (the earlier ones met a caller of no known risk: nothing recorded)."""

    async def known() -> str | None:
        event = call(caller, new_phone())
        [decision] = await screen_batch(suite, carrier, [event])
        return event.callee if decision.action == action else None

    return await eventually(known)


async def warnings_about(
    suite: Deployment, analyst: Metadata, callee: str, number: str
) -> list[wn.Warning]:
    found = await suite.warning.ListWarnings(
        wn.ListWarningsRequest(phone_number=callee, indicator=phone(number)), metadata=analyst
    )
    return list(found.warnings)


async def count_warnings(suite: Deployment, analyst: Metadata, number: str) -> int:
    count, token = 0, ""
    while True:
        page = await suite.warning.ListWarnings(
            wn.ListWarningsRequest(indicator=phone(number), page_size=500, page_token=token),
            metadata=analyst,
        )
        count += len(page.warnings)
        token = page.next_page_token
        if not token:
            return count


async def finished_fanout(suite: Deployment, analyst: Metadata, number: str) -> wn.Fanout:
    async def done() -> wn.Fanout | None:
        found = await suite.warning.ListFanouts(
            wn.ListFanoutsRequest(indicator=phone(number)), metadata=analyst
        )
        return next((f for f in found.fanouts if f.state == wn.FANOUT_STATE_DONE), None)

    return await eventually(done, timeout=30)


async def fault_setup(suite: Deployment) -> tuple[Processes, Metadata, Metadata, str, str]:
    """For a fault test: the processes, carrier and analyst keys, a number listed MEDIUM
    that screening knows, and the callee of the first call screened as WARN."""
    if suite.processes is None:
        pytest.skip("needs control of the deployment's processes")
    carrier, analyst = await keys(suite)
    fraudster = new_phone()
    await list_number(suite, analyst, fraudster, c.RISK_LEVEL_MEDIUM)
    probe = await until_screened_as(suite, carrier, fraudster, gw.SCREEN_ACTION_WARN)
    return suite.processes, carrier, analyst, fraudster, probe


async def test_a_warning_outage_during_screening_loses_no_warning_and_no_contact(
    suite: Deployment,
) -> None:
    processes, carrier, analyst, fraudster, probe = await fault_setup(suite)

    answered: dict[str, tuple[gw.ScreenEvent, gw.ScreenDecision]] = {}
    stop = asyncio.Event()

    async def carrier_screens() -> None:
        while not stop.is_set():
            events = [call(fraudster, new_phone()) for _ in range(3)]
            try:
                decisions = await screen_batch(suite, carrier, events)
            except grpc.aio.AioRpcError:
                decisions = []
            for event, decision in zip(events, decisions, strict=True):
                answered[event.event_id] = (event, decision)
            await asyncio.sleep(0.2)  # a carrier's pace, not a wait for a condition

    screening = asyncio.create_task(carrier_screens())
    await eventually(lambda: _at_least(answered, 10))
    processes.kill("warning")
    await asyncio.sleep(OUTAGE_SECONDS)  # the outage itself, while the carrier screens
    processes.start("warning")
    await processes.wait("warning")
    before = len(answered)
    await eventually(lambda: _at_least(answered, before + 10))
    stop.set()
    await screening

    states = [d.record_state for _, d in answered.values()]
    assert wn.SCREENING_RECORD_STATE_RECORDED in states
    assert wn.SCREENING_RECORD_STATE_NOT_RECORDED in states, "the outage was not seen"
    for _, decision in answered.values():
        if decision.record_state == wn.SCREENING_RECORD_STATE_NOT_RECORDED:
            assert decision.action == gw.SCREEN_ACTION_ALLOW  # fail open, and said so
            assert decision.error

    # The carrier sends again what was not recorded, with the same event ids.
    pending = [
        e for e, d in answered.values() if d.record_state != wn.SCREENING_RECORD_STATE_RECORDED
    ]
    resent = list(pending)
    while pending:
        decisions = await screen_batch(suite, carrier, pending)
        pending = [
            e
            for e, d in zip(pending, decisions, strict=True)
            if d.record_state != wn.SCREENING_RECORD_STATE_RECORDED
        ]
    # A repeat of a recorded event is answered as recorded, and adds nothing.
    repeated = [e for e, _ in list(answered.values())[:5]]
    again = await screen_batch(suite, carrier, repeated)
    assert all(d.record_state == wn.SCREENING_RECORD_STATE_RECORDED for d in again)

    callees = {e.callee for e, _ in answered.values()} | {probe}
    # One warning per callee (the once-per-window rule allows no more), and as many as callees.
    assert await count_warnings(suite, analyst, fraudster) == len(callees)
    for event in resent[:30] + [e for e, _ in list(answered.values())[:10]]:
        found = await warnings_about(suite, analyst, event.callee, fraudster)
        assert len(found) == 1, "each callee is warned once"
        assert found[0].level == c.RISK_LEVEL_MEDIUM
    # Every contact is there: the fan-out when the number is confirmed finds each callee once.
    await list_number(suite, analyst, fraudster, c.RISK_LEVEL_HIGH)
    fanout = await finished_fanout(suite, analyst, fraudster)
    assert fanout.contact_count == len(callees)


async def _reachable(suite: Deployment, analyst: Metadata) -> bool:
    try:
        await suite.warning.ListFanouts(wn.ListFanoutsRequest(page_size=1), metadata=analyst)
    except grpc.aio.AioRpcError as err:
        if err.code() == grpc.StatusCode.UNAVAILABLE:
            return False
        raise
    return True


async def _at_least(answered: Sized, count: int) -> bool:
    return len(answered) >= count


async def test_a_gateway_killed_mid_screening_loses_nothing_it_answered(
    suite: Deployment,
) -> None:
    processes, carrier, analyst, fraudster, _ = await fault_setup(suite)
    recorded: list[gw.ScreenEvent] = []

    async def carrier_screens() -> None:
        while True:
            events = [call(fraudster, new_phone()) for _ in range(5)]
            try:
                decisions = await screen_batch(suite, carrier, events)
            except grpc.aio.AioRpcError:
                return  # the gateway went away mid-call: unanswered, so promised nothing
            recorded.extend(
                e
                for e, d in zip(events, decisions, strict=True)
                if d.record_state == wn.SCREENING_RECORD_STATE_RECORDED
            )

    screening = [asyncio.create_task(carrier_screens()) for _ in range(4)]
    await eventually(lambda: _at_least(recorded, 20))
    processes.kill("gateway")
    await asyncio.gather(*screening)
    processes.start("gateway")
    await processes.wait("gateway")
    await eventually(lambda: _reachable(suite, analyst))

    for event in recorded:
        found = await warnings_about(suite, analyst, event.callee, fraudster)
        assert len(found) == 1, "a call answered as recorded has its callee's warning"
    await list_number(suite, analyst, fraudster, c.RISK_LEVEL_HIGH)
    fanout = await finished_fanout(suite, analyst, fraudster)
    assert fanout.contact_count >= len(recorded), "a call answered as recorded has its contact"


async def test_late_contacts_are_warned_and_a_retried_upload_counts_once(
    suite: Deployment,
) -> None:
    carrier, analyst = await keys(suite)
    now = datetime.now(UTC)
    # A number already confirmed: a contact reported now is warned at once.
    confirmed = new_phone()
    await list_number(suite, analyst, confirmed, c.RISK_LEVEL_HIGH)
    await finished_fanout(suite, analyst, confirmed)  # it had no contact yet
    late = new_phone()
    upload = wn.RecordContactEventsRequest(
        batch_id=str(uuid.uuid4()),
        events=[
            wn.ContactEvent(
                caller=confirmed,
                callee=late,
                time=stamp(now - timedelta(hours=2)),
                kind=wn.CONTACT_KIND_CALL,
            )
        ],
    )
    first = await suite.warning.RecordContactEvents(upload, metadata=carrier)
    assert (first.accepted_count, first.warned_count) == (1, 1)
    [warning] = await warnings_about(suite, analyst, late, confirmed)
    assert warning.contact_count == 1
    # The same upload again (a retry): answered as the first time, nothing added.
    retried = await suite.warning.RecordContactEvents(upload, metadata=carrier)
    assert retried == first
    assert len(await warnings_about(suite, analyst, late, confirmed)) == 1

    # Contacts of a number not yet listed, uploaded twice in a stream under one batch id,
    # then the number is confirmed: its fan-out counts them once.
    suspect, contact = new_phone(), new_phone()
    batch = wn.StreamContactEventsRequest(
        batch_id=str(uuid.uuid4()),
        events=[
            wn.ContactEvent(
                caller=suspect,
                callee=contact,
                time=stamp(now - timedelta(minutes=30 + i)),
                kind=wn.CONTACT_KIND_SMS,
                caller_level=c.RISK_LEVEL_MEDIUM,
            )
            for i in range(3)
        ],
    )

    async def twice() -> AsyncIterator[wn.StreamContactEventsRequest]:
        yield batch
        yield batch

    streamed = await suite.warning.StreamContactEvents(twice(), metadata=carrier)
    assert (streamed.accepted_count, streamed.duplicate_batch_count) == (3, 1)
    await list_number(suite, analyst, suspect, c.RISK_LEVEL_HIGH)
    await finished_fanout(suite, analyst, suspect)
    [warned] = await warnings_about(suite, analyst, contact, suspect)
    assert warned.contact_count == 3


async def test_an_sms_the_carrier_lost_in_a_restart_is_sent_again(suite: Deployment) -> None:
    _, analyst = await keys(suite)
    target = "+86139" + str(uuid.uuid4().int)[:8]  # a China Mobile number
    # Slow deliveries, so that the SMS is still on its way when the carrier restarts.
    await suite.control.SetBehavior(
        simulator_pb2.SetBehaviorRequest(
            simulator="carrier-cmcc",
            behavior=simulator_pb2.Behavior(latency_ms=5, delivery_delay_ms=60_000),
        )
    )
    dispatched = await suite.warning.DispatchWarning(
        wn.DispatchWarningRequest(
            request_id=str(uuid.uuid4()),
            recipient=wn.RecipientRef(phone_number=target),
            level=c.RISK_LEVEL_LOW,
            reason=wn.WarningReason(indicator=phone(new_phone())),
        ),
        metadata=analyst,
    )

    async def sms(state: int) -> wn.Delivery | None:
        found = await suite.warning.GetWarning(
            wn.GetWarningRequest(name=dispatched.warning.name), metadata=analyst
        )
        [delivery] = [d for d in found.warning.deliveries if d.channel == wn.CHANNEL_SMS]
        return delivery if delivery.state == state else None

    sent = await eventually(lambda: sms(wn.DELIVERY_STATE_SENT))
    # The carrier restarts (start-up behaviour: fast deliveries) and forgets the message.
    await suite.control.Reset(simulator_pb2.ResetRequest(simulator="carrier-cmcc"))
    delivered = await eventually(lambda: sms(wn.DELIVERY_STATE_DELIVERED), timeout=30)
    assert delivered.carrier_message_id != sent.carrier_message_id
    assert len(await suite.handset(target)) == 1


async def test_a_screened_callee_with_the_app_open_is_pushed_and_not_texted(
    suite: Deployment,
) -> None:
    carrier, analyst = await keys(suite)
    fraudster = new_phone()
    await list_number(suite, analyst, fraudster, c.RISK_LEVEL_MEDIUM)
    await until_screened_as(suite, carrier, fraudster, gw.SCREEN_ACTION_WARN)
    watching, away = await suite.register(), await suite.register()
    texts = {p: len(await suite.handset(p)) for p in (watching.phone, away.phone)}  # the codes
    stream = suite.warning.StreamWarnings(wn.StreamWarningsRequest(), metadata=watching.metadata)

    async def first_warning() -> wn.Warning:
        async for reply in stream:
            if reply.HasField("warning"):
                return reply.warning
        raise AssertionError("the stream ended without the warning")

    # The app is open before the call (a stream opened later gets it too, from its first read).
    shown = asyncio.ensure_future(first_warning())
    decisions = await screen_batch(
        suite, carrier, [call(fraudster, watching.phone), call(fraudster, away.phone)]
    )
    assert [d.action for d in decisions] == [gw.SCREEN_ACTION_WARN] * 2
    assert (await shown).level == c.RISK_LEVEL_MEDIUM
    stream.cancel()

    async def sms(person: str, state: int) -> wn.Delivery | None:
        [found] = await warnings_about(suite, analyst, person, fraudster)
        [delivery] = [d for d in found.deliveries if d.channel == wn.CHANNEL_SMS]
        return delivery if delivery.state == state else None

    await eventually(lambda: sms(watching.phone, wn.DELIVERY_STATE_NOT_NEEDED))
    # Nobody streams the other callee's warnings: the SMS follows the push's delay.
    await eventually(lambda: sms(away.phone, wn.DELIVERY_STATE_DELIVERED), timeout=30)
    assert len(await suite.handset(away.phone)) == texts[away.phone] + 1
    assert len(await suite.handset(watching.phone)) == texts[watching.phone]


async def test_a_fanout_stops_tasks_at_its_caps_and_reports_progress(suite: Deployment) -> None:
    carrier, analyst = await keys(suite)
    now = datetime.now(UTC)
    suspect = new_phone()
    contacts = [new_phone() for _ in range(5)]
    # Five contacts each, within the day: each is warned HIGH (a visit, a call, a flash SMS).
    await suite.warning.RecordContactEvents(
        wn.RecordContactEventsRequest(
            events=[
                wn.ContactEvent(
                    caller=suspect,
                    callee=contact,
                    time=stamp(now - timedelta(minutes=10 + i)),
                    kind=wn.CONTACT_KIND_CALL,
                    caller_level=c.RISK_LEVEL_MEDIUM,
                )
                for contact in contacts
                for i in range(5)
            ]
        ),
        metadata=carrier,
    )
    await list_number(suite, analyst, suspect, c.RISK_LEVEL_HIGH)
    fanout = await finished_fanout(suite, analyst, suspect)
    assert fanout.warned_count == len(contacts)
    assert (fanout.call_task_cap, fanout.home_visit_task_cap) == (
        CALL_TASK_CAP,
        HOME_VISIT_TASK_CAP,
    )
    assert (fanout.call_task_count, fanout.home_visit_task_count) == (
        CALL_TASK_CAP,
        HOME_VISIT_TASK_CAP,
    )
    assert fanout.capped_count == 2 * len(contacts) - CALL_TASK_CAP - HOME_VISIT_TASK_CAP
    by_channel: dict[int, int] = {}
    for count in fanout.deliveries:
        by_channel[count.channel] = by_channel.get(count.channel, 0) + count.count
    assert by_channel[wn.CHANNEL_CALL_TASK] == CALL_TASK_CAP
    assert by_channel[wn.CHANNEL_HOME_VISIT_TASK] == HOME_VISIT_TASK_CAP
    assert by_channel[wn.CHANNEL_FLASH_SMS] == len(contacts)  # everyone is texted

    # An analyst changes the caps; the fan-out says so.
    updated = await suite.warning.UpdateFanout(
        wn.UpdateFanoutRequest(
            fanout=wn.Fanout(name=fanout.name, call_task_cap=50),
            update_mask=FieldMask(paths=["call_task_cap", "home_visit_task_cap"]),
        ),
        metadata=analyst,
    )
    assert updated.fanout.call_task_cap == 50
    assert not updated.fanout.HasField("home_visit_task_cap")  # no cap now
    got = await suite.warning.GetFanout(wn.GetFanoutRequest(name=fanout.name), metadata=analyst)
    assert got.fanout.call_task_cap == 50
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await suite.warning.UpdateFanout(
            wn.UpdateFanoutRequest(
                fanout=wn.Fanout(name=fanout.name), update_mask=FieldMask(paths=["state"])
            ),
            metadata=analyst,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_bad_input_gets_deliberate_codes(suite: Deployment) -> None:
    carrier, analyst = await keys(suite)
    [broken] = await screen_batch(
        suite, carrier, [gw.ScreenEvent(event_id="e-1", caller="not a number", callee="1")]
    )
    assert (broken.action, broken.record_state) == (
        gw.SCREEN_ACTION_ALLOW,
        wn.SCREENING_RECORD_STATE_NOT_NEEDED,
    )
    assert broken.error.startswith("events[0].")
    refusals = [
        suite.warning.RecordContactEvents(
            wn.RecordContactEventsRequest(
                batch_id="batch-1",
                events=[wn.ContactEvent(caller=new_phone(), callee=new_phone())],
            ),
            metadata=carrier,
        ),
        suite.warning.UpdateFanout(
            wn.UpdateFanoutRequest(
                fanout=wn.Fanout(name=f"fanouts/{uuid.uuid4()}", call_task_cap=-1),
                update_mask=FieldMask(paths=["call_task_cap"]),
            ),
            metadata=analyst,
        ),
    ]
    for call_ in refusals:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call_
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await suite.warning.GetFanout(
            wn.GetFanoutRequest(name=f"fanouts/{uuid.uuid4()}"), metadata=analyst
        )
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    # Fan-outs are the analysts'.
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await suite.warning.GetFanout(
            wn.GetFanoutRequest(name=f"fanouts/{uuid.uuid4()}"), metadata=carrier
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
