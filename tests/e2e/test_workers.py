"""Several server processes on one port (``ANTIFRAUD_RISK_WORKERS``), as ``antifraud up``
runs them: each loads the index on its own and follows the database, each has its own
health and shutdown, and one that dies is restarted while the others keep answering.
On a real database, both backends."""

from __future__ import annotations

import os
import signal
import uuid
from functools import partial
from pathlib import Path

import grpc
import pytest

from services.api.antifraud.common.v1 import common_pb2 as c
from services.api.antifraud.risk.v1 import risk_pb2 as rk
from services.api.antifraud.risk.v1 import risk_pb2_grpc
from services.common.health_client import wait_serving
from tests import harness
from tests.e2e.deployment import eventually
from tests.e2e.test_supervisor import WAIT, up, wait_gone

pytestmark = pytest.mark.slow


def _phone() -> str:
    return f"+86139{uuid.uuid4().int % 10**8:08d}"


async def _level(address: str, number: str) -> int | None:
    """The verdict's level through a new connection (the kernel picks a worker for it);
    None while no worker answers on the port."""
    async with harness.channel(address) as channel:
        try:
            reply = await risk_pb2_grpc.RiskServiceStub(channel).CheckIndicator(
                rk.CheckIndicatorRequest(
                    indicator=c.Indicator(kind=c.INDICATOR_KIND_PHONE_NUMBER, value=number)
                ),
                timeout=5,
            )
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            return None
        return int(reply.verdict.level)


async def _list_high(address: str, number: str) -> None:
    async with harness.channel(address) as channel:
        await risk_pb2_grpc.RiskServiceStub(channel).UpsertIndicator(
            rk.UpsertIndicatorRequest(
                request_id=str(uuid.uuid4()),
                indicator=c.Indicator(kind=c.INDICATOR_KIND_PHONE_NUMBER, value=number),
                assertion=rk.Assertion(
                    source_type=rk.SOURCE_TYPE_POLICE,
                    source_id="police-110",
                    level=c.RISK_LEVEL_HIGH,
                    categories=[c.FRAUD_CATEGORY_IMPERSONATING_OFFICIALS],
                    reason="confirmed by police",
                ),
            ),
            timeout=10,
        )


async def _answers_high_on_every_connection(address: str, number: str, tries: int = 8) -> bool:
    levels = [await _level(address, number) for _ in range(tries)]
    return all(level == c.RISK_LEVEL_HIGH for level in levels)


async def test_workers_share_a_port_each_follow_the_index_and_restart_alone(
    tmp_path: Path, db_target: tuple[str, str | None]
) -> None:
    url, schema = db_target
    database = {"ANTIFRAUD_RISK_DATABASE_URL": url, "ANTIFRAUD_RISK_METRICS_ADDR": "off"}
    if schema is not None:
        database["ANTIFRAUD_RISK_DB_SCHEMA"] = schema
    with up(tmp_path, ["risk"], **database, ANTIFRAUD_RISK_WORKERS="2") as suite:
        await suite.wait_for(lambda: suite.events("all serving"))
        assert "all 2 servers SERVING" in suite.stdout()
        serving = [r for r in suite.events("serving") if r.get("service") == "risk"]
        assert sorted(r["worker"] for r in serving) == [1, 2]
        address = suite.addrs["risk"]

        # Written through one worker, seen by whichever answers: each follows the database.
        first = _phone()
        await _list_high(address, first)
        await eventually(lambda: _answers_high_on_every_connection(address, first), WAIT)

        # One worker killed: the port keeps answering; the restarted one loads on its own.
        pids = {r["server"]: r["pid"] for r in suite.events("started")}
        os.kill(pids["risk-1"], signal.SIGKILL)
        await eventually(lambda: _answers_high_on_every_connection(address, first), WAIT)
        restarted = await suite.wait_for(lambda: suite.events("restarted"))
        assert restarted[0]["server"] == "risk-1"
        second = _phone()
        await _list_high(address, second)
        os.kill(pids["risk-2"], signal.SIGKILL)
        await suite.wait_for(lambda: len(suite.events("restarted")) == 2)
        await wait_serving(address, timeout=WAIT)
        for number in (first, second):
            await eventually(partial(_answers_high_on_every_connection, address, number), WAIT)

        suite.proc.send_signal(signal.SIGTERM)
        assert suite.exit_status() == 0
        await wait_gone(suite.child_pids())
        stopped = [r for r in suite.events("stopped") if r.get("service") == "risk"]
        assert len(stopped) == 2, "each worker drains and stops on its own"
