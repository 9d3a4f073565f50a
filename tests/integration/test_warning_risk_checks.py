"""The warning service's look-ups of callers against a real risk server (SQLite and
PostgreSQL): concurrent screenings share their BatchCheckIndicators calls, each still gets
the verdicts of its own numbers in order, a bad value in a shared call touches no other
request, an unreachable risk service fails every waiting request, and a shared call is
no one caller's (its deadline, its trace)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from services.api.antifraud.common.v1 import common_pb2 as c
from services.api.antifraud.risk.v1 import risk_pb2 as r
from services.api.antifraud.risk.v1 import risk_pb2_grpc as rg
from services.common import context as ctx
from services.risk.bootstrap import build
from services.warning.adapters.risk_checks import RiskChecks, RiskUnavailable
from tests import harness
from tests.harness import serving

LISTED = "+8617000000001"


@pytest.fixture(autouse=True)
def as_warning_service() -> None:
    """The look-ups speak for the warning service, as in its process (the test's context)."""
    ctx.service_var.set("warning")


@pytest.fixture
async def risk_address(db_target: tuple[str, str | None]) -> AsyncIterator[str]:
    url, schema = db_target
    async with (
        serving(build(url=url, schema=schema)) as running,
        harness.channel(running.address) as channel,
    ):
        await rg.RiskServiceStub(channel).UpsertIndicator(  # type: ignore[no-untyped-call]
            r.UpsertIndicatorRequest(
                request_id=str(uuid.uuid4()),
                indicator=c.Indicator(kind=c.INDICATOR_KIND_PHONE_NUMBER, value=LISTED),
                assertion=r.Assertion(
                    source_type=r.SOURCE_TYPE_POLICE,
                    source_id="test",
                    level=c.RISK_LEVEL_HIGH,
                    reason="confirmed",
                ),
            )
        )
        yield running.address


def number(i: int) -> str:
    return f"+86139{i:08d}"


@pytest.mark.parametrize("shared", [True, False], ids=["shared", "alone"])
async def test_concurrent_look_ups_share_calls_and_each_gets_its_own_verdicts(
    risk_address: str, shared: bool
) -> None:
    checks = RiskChecks(risk_address, shared=shared)
    try:
        # Overlapping numbers across requests; the listed one in every third.
        asks = [[number(i), number(i + 1)] + ([LISTED] if i % 3 == 0 else []) for i in range(30)]
        answers = await asyncio.gather(*(checks.phone_verdicts(a) for a in asks))
    finally:
        await checks.close()
    for asked, verdicts in zip(asks, answers, strict=True):
        assert [v.indicator.value for v in verdicts] == asked
        assert [v.level for v in verdicts] == [
            c.RISK_LEVEL_HIGH if n == LISTED else c.RISK_LEVEL_NONE for n in asked
        ]
    assert checks.requests == len(asks)
    if shared:
        assert checks.rpcs < len(asks)
    else:
        assert checks.rpcs == len(asks)


async def test_a_bad_value_in_a_shared_call_touches_no_other_request(risk_address: str) -> None:
    checks = RiskChecks(risk_address)
    try:
        good = [checks.phone_verdicts([number(i), LISTED]) for i in range(5)]
        bad = checks.phone_verdicts(["not a number"])
        *fine, refused = await asyncio.gather(*good, bad)
    finally:
        await checks.close()
    # The risk service answers a value it cannot read with a note, not an error.
    [verdict] = refused
    assert verdict.level == c.RISK_LEVEL_UNSPECIFIED
    assert "not a valid phone number" in verdict.notes
    for answer in fine:
        assert [v.level for v in answer] == [c.RISK_LEVEL_NONE, c.RISK_LEVEL_HIGH]


async def test_an_unreachable_risk_service_fails_every_waiting_request() -> None:
    checks = RiskChecks(f"127.0.0.1:{harness.free_port()}")
    try:
        answers = await asyncio.gather(
            *(checks.phone_verdicts([number(i)]) for i in range(5)), return_exceptions=True
        )
    finally:
        await checks.close()
    assert all(isinstance(a, RiskUnavailable) for a in answers)


async def test_a_caller_at_its_deadline_does_not_cut_a_shared_look_up_short(
    risk_address: str,
) -> None:
    """The shared call is sent from the first caller's task; it must not inherit that
    caller's deadline (nor its request id or trace), or one hurried caller fails them all."""
    checks = RiskChecks(risk_address)

    async def hurried() -> list[r.Verdict]:
        ctx.deadline_var.set(time.monotonic() + 0.001)
        return await checks.phone_verdicts([LISTED])

    try:
        first, *others = await asyncio.gather(
            hurried(), *(checks.phone_verdicts([number(i)]) for i in range(5))
        )
    finally:
        await checks.close()
    assert [v.level for v in first] == [c.RISK_LEVEL_HIGH]
    assert all([v.level for v in answer] == [c.RISK_LEVEL_NONE] for answer in others)
