"""kill -9 in the middle of the work: one replica of each replicated service and the
only replica of the others, then restart them. Nothing accepted is lost, nothing is
done twice: every accepted report is there, every corroborated number is promoted
once, every case's stop-payment reaches the bank exactly once and is acknowledged.

Clients behave as the app and partners do: a call that fails with UNAVAILABLE is
retried with the same request id, so it is accepted once or not at all.

Against containers (``make test-containers``) the same kills are ``podman kill -s KILL``
of those containers and the restarts ``podman start``.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TypeVar

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from services.api.antifraud.common.v1 import common_pb2 as c
from services.api.antifraud.gateway.v1 import gateway_pb2 as gw
from services.api.antifraud.partner.v1 import simulator_pb2
from services.api.antifraud.report.v1 import report_pb2 as rp
from services.api.antifraud.risk.v1 import risk_pb2 as rk
from tests.e2e.deployment import (
    Citizen,
    Deployment,
    eventually,
    new_phone,
)
from tests.factories import card

pytestmark = pytest.mark.slow
T = TypeVar("T")
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
VICTIMS = ["report", "risk-2", "warning-2", "identity"]


@pytest.fixture
def suite(suite: Deployment) -> Deployment:
    """The shared deployment (tests/e2e/conftest.py): every process is restarted and
    SERVING again by the end of the test."""
    if suite.processes is None:
        pytest.skip(
            "kill -9 needs the processes or containers (ANTIFRAUD_E2E_PODMAN_PROJECT); "
            "against another deployment, kill pods instead"
        )
    return suite


async def until_accepted(call: Callable[[], Awaitable[T]], attempts: int = 200) -> T:
    """Retry an idempotent call (same request id) while the service is down."""
    for _ in range(attempts):
        try:
            return await call()
        except grpc.aio.AioRpcError as err:
            if err.code() not in RETRYABLE:
                raise
        await asyncio.sleep(0.1)
    raise AssertionError("never accepted")


def _report(number: str) -> rp.Report:
    return rp.Report(
        kind=rp.REPORT_KIND_FRAUD_CALL,
        indicators=[c.Indicator(kind=c.INDICATOR_KIND_PHONE_NUMBER, value=number)],
        description="冒充银行客服，说我的卡被冻结了",
        category=c.FRAUD_CATEGORY_FAKE_CUSTOMER_SERVICE,
    )


def _case(payee: str) -> rp.Case:
    stamp = Timestamp()
    stamp.FromDatetime(datetime.now(UTC) - timedelta(hours=1))
    return rp.Case(
        description="刷单返利，先小额返现，后来要求大额垫付",
        category=c.FRAUD_CATEGORY_ORDER_BRUSHING,
        amount_lost=c.Money(currency_code="CNY", units=8_800),
        incident_time=stamp,
        payees=[rp.Payee(account=c.Indicator(kind=c.INDICATOR_KIND_BANK_ACCOUNT, value=payee))],
    )


async def test_kill_9_loses_nothing_and_does_nothing_twice(suite: Deployment) -> None:
    assert suite.processes is not None
    processes = suite.processes
    reporters = [await suite.register() for _ in range(3)]
    victims = [await suite.register() for _ in range(4)]
    numbers = [new_phone() for _ in range(8)]
    rng = random.Random(3)
    payees = [card(rng) for _ in victims]
    accepted: list[tuple[Citizen, str]] = []

    async def submit(reporter: Citizen, number: str) -> None:
        await asyncio.sleep(rng.uniform(0, 2.0))  # spread over the time the kills land in
        request = rp.SubmitReportRequest(request_id=str(uuid.uuid4()), report=_report(number))
        got = await until_accepted(
            lambda: suite.report.SubmitReport(request, metadata=reporter.metadata)
        )
        accepted.append((reporter, got.report.name))

    async def file(victim: Citizen, payee: str) -> str:
        await asyncio.sleep(rng.uniform(0, 2.0))
        request = rp.FileCaseRequest(request_id=str(uuid.uuid4()), case=_case(payee))
        got = await until_accepted(lambda: suite.report.FileCase(request, metadata=victim.metadata))
        return got.case.name

    async def chaos() -> None:
        await asyncio.sleep(0.5)
        for name in VICTIMS:
            processes.kill(name)
        await asyncio.sleep(1.0)
        for name in VICTIMS:
            processes.start(name)
        await asyncio.gather(*(processes.wait(name) for name in VICTIMS))

    work: list[Awaitable[object]] = [submit(r, n) for n in numbers for r in reporters]
    work += [file(v, p) for v, p in zip(victims, payees, strict=True)]
    results = await asyncio.gather(chaos(), *work)
    cases = [r for r in results if isinstance(r, str)]
    assert len(cases) == len(victims)

    # Every accepted report is there, as its reporter sees it.
    for reporter, report_name in accepted:
        got = await until_accepted(
            partial(
                suite.report.GetReport,
                rp.GetReportRequest(name=report_name),
                metadata=reporter.metadata,
            )
        )
        assert got.report.name == report_name
    assert len(accepted) == len(numbers) * len(reporters)

    # Every number was corroborated by three reporters: promoted, and exactly once.
    analyst = await suite.key(gw.ROLE_ANALYST, "analyst-faults")
    for number in numbers:
        indicator = c.Indicator(kind=c.INDICATOR_KIND_PHONE_NUMBER, value=number)

        async def promoted(i: c.Indicator = indicator) -> rk.GetIndicatorResponse | None:
            try:
                got = await suite.risk.GetIndicator(
                    rk.GetIndicatorRequest(indicator=i), metadata=analyst
                )
            except grpc.aio.AioRpcError as err:
                if err.code() in (*RETRYABLE, grpc.StatusCode.NOT_FOUND):
                    return None
                raise
            return got if got.record.verdict.level == c.RISK_LEVEL_MEDIUM else None

        record = await eventually(promoted, timeout=30)
        upserts = [
            h
            for h in record.history
            if h.change_type == rk.CHANGE_TYPE_UPSERTED
            and h.source_type == rk.SOURCE_TYPE_CITIZEN_REPORTS
        ]
        assert len(upserts) == 1, f"promoted {len(upserts)} times"

    # Every payee's bank got exactly one stop-payment, and each case shows it acknowledged.
    for victim, name in zip(victims, cases, strict=True):

        async def acknowledged(v: Citizen = victim, n: str = name) -> bool:
            try:
                got = await suite.report.GetCase(rp.GetCaseRequest(name=n), metadata=v.metadata)
            except grpc.aio.AioRpcError as err:
                if err.code() in RETRYABLE:
                    return False
                raise
            return got.case.payees[0].stop_payment_status == rp.STOP_PAYMENT_STATUS_ACKNOWLEDGED

        await eventually(acknowledged, timeout=30)
    received = await suite.control.ListReceived(
        simulator_pb2.ListReceivedRequest(method="StopPayment", page_size=1000)
    )
    per_case = Counter(r.summary.get("case_reference", "") for r in received.received_calls)
    for name in cases:
        matches = [k for k in per_case if k and (k == name or name.endswith(k))]
        assert len(matches) == 1
        assert per_case[matches[0]] == 1, f"{per_case[matches[0]]} stop-payments for one payee"
