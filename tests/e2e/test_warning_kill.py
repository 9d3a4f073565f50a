"""kill -9 of the warning service during a fan-out of 10,000, then a restart: every warning is
created once and its SMS delivered exactly once.

Partners, risk and warning run as real processes. 10,000 numbers were in contact with a
number that the police then confirm; the warning service is killed with SIGKILL while it is
warning them and sending their SMS, and started again. In the end each of the 10,000 has
exactly one warning, and the carrier took exactly one SMS for each (a repeat after the crash
is answered from the carrier's idempotency record, never sent again); and no number appears
in clear in the service's log.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.risk.v1 import risk_pb2_grpc
from services.api.antifraud.warning.v1 import warning_pb2 as pb
from services.api.antifraud.warning.v1 import warning_pb2_grpc
from services.partners.directory import SIMULATORS, PartnerClients
from tests import harness
from tests.e2e.test_warning_fanout import all_warnings, confirm_high, fanouts, stamp
from tests.e2e.test_warning_service import eventually, number, sms_received
from tests.harness import ProcessSuite, free_port

pytestmark = pytest.mark.slow

CONTACTS = 10_000


@pytest.fixture
async def suite(db_target: tuple[str, str | None], tmp_path: Path) -> AsyncIterator[ProcessSuite]:
    url, schema = db_target
    env = {
        "ANTIFRAUD_PARTNERS_LATENCY_MS": "1",
        "ANTIFRAUD_PARTNERS_JITTER_MS": "1",
        "ANTIFRAUD_PARTNERS_DELIVERY_DELAY_MS": "50",
        "ANTIFRAUD_WARNING_SMS_POLL_SECONDS": "0.2",
        "ANTIFRAUD_WARNING_LEASE_SECONDS": "3",
        "ANTIFRAUD_WARNING_FANOUT_CHUNK": "250",
        "ANTIFRAUD_LOG_LEVEL": "info",
    }
    schemas: list[str] = []
    if schema is not None:
        risk_schema = harness.new_schema("risk")
        schemas = [schema, risk_schema]
        env |= {
            "ANTIFRAUD_DATABASE_URL": url,
            "ANTIFRAUD_WARNING_DB_SCHEMA": schema,
            "ANTIFRAUD_RISK_DB_SCHEMA": risk_schema,
        }
    processes = ProcessSuite(["partners", "risk", "warning"], data_dir=tmp_path, extra_env=env)
    for name in SIMULATORS:
        processes.set_addr(name, f"127.0.0.1:{free_port()}")
    try:
        yield processes
    finally:
        processes.stop_all()
        for name in schemas[1:]:
            await harness.drop_schema(name)


async def test_kill_during_a_fanout_of_10000_delivers_each_warning_once(
    suite: ProcessSuite,
) -> None:
    await suite.start_all(timeout=60)
    overrides = {
        name: suite.env[f"ANTIFRAUD_{name.upper().replace('-', '_')}_ADDR"] for name in SIMULATORS
    }
    overrides["partners"] = suite.addrs["partners"]
    now = datetime.now(UTC)
    async with (
        harness.channel(suite.addrs["warning"]) as warning_channel,
        harness.channel(suite.addrs["risk"]) as risk_channel,
        PartnerClients(overrides) as partners,
    ):
        stub = warning_pb2_grpc.WarningServiceStub(warning_channel)
        risk = risk_pb2_grpc.RiskServiceStub(risk_channel)
        events = [
            pb.ContactEvent(
                caller="+8613912345678",
                callee=number(i),
                time=stamp(now - timedelta(hours=1 + (i % 9) * 20)),
                kind=pb.CONTACT_KIND_CALL if i % 2 else pb.CONTACT_KIND_SMS,
                caller_level=common_pb2.RISK_LEVEL_MEDIUM,
            )
            for i in range(CONTACTS)
        ]
        reply = await stub.RecordContactEvents(pb.RecordContactEventsRequest(events=events))
        assert reply.accepted_count == CONTACTS

        await confirm_high(risk)

        async def under_way() -> bool:
            found = await fanouts(stub)
            return bool(found) and found[0].processed_count >= 1000

        await eventually(under_way, timeout=60)
        suite.kill("warning")
        sent_before = len(await sms_received(partners))
        assert sent_before < CONTACTS  # killed with SMS still to send

        suite.start("warning")
        await suite.wait("warning", timeout=60)

        async def all_delivered() -> bool:
            found = await fanouts(stub)
            if not found or found[0].state != pb.FANOUT_STATE_DONE:
                return False
            stats: pb.GetWarningStatsResponse = await stub.GetWarningStats(
                pb.GetWarningStatsRequest()
            )
            delivered = {c.state: c.count for c in stats.warnings}
            return delivered.get(pb.WARNING_STATE_DELIVERED, 0) == CONTACTS

        await eventually(all_delivered, timeout=240)

        [fanout] = await fanouts(stub)
        assert (fanout.contact_count, fanout.warned_count) == (CONTACTS, CONTACTS)
        warnings = await all_warnings(stub)
        assert len(warnings) == CONTACTS
        assert len({w.masked_phone_number for w in warnings}) == CONTACTS
        stats = await stub.GetWarningStats(pb.GetWarningStatsRequest())
        carried = {
            (c.channel, c.state): c.count
            for c in stats.deliveries
            if c.channel in (pb.CHANNEL_SMS, pb.CHANNEL_FLASH_SMS)
        }
        assert sum(carried.values()) == CONTACTS
        assert all(state == pb.DELIVERY_STATE_DELIVERED for _, state in carried)

        received = await sms_received(partners)
        assert len(received) == CONTACTS  # each effect once...
        assert len({r.idempotency_key for r in received}) == CONTACTS
        people = {r.summary["masked_phone_number"] for r in received}
        assert len(people) == CONTACTS  # ...per person

    # Thousands of numbers went through the service: not one reached its log in clear.
    log = suite.log_text("warning")
    assert '"fan-out done"' in log
    assert not re.search(r"(?<![\w*-])(?:\+?86)?1[3-9]\d{9}(?![\w-])", log)
