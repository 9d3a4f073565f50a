"""Partners' local copies and private look-ups, against a risk server in its own process.

- DownloadRiskList of every kind at 1,000,000 entries (100,000 with --quick): the time to
  download, verify and load it into a RiskCopy (the first one also builds the service's
  checksums), and its size on the wire, vs a plain SELECT of the same rows.
- ComputeRiskListDiff after 1,000 changes, applied and verified, vs one CheckIndicator.
- Look-ups per second from the copy (normalisation included) vs plain CheckIndicator calls
  one after another from the same client.
- Private look-ups per second (SearchHashPrefixes, blinding and unblinding included) of
  phone numbers and of URLs, beside plain CheckIndicator calls of the same values.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import sqlalchemy as sa

from bench.bench_risk import _prepare
from bench.harness import Result, Run, Server, channel, servers
from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.risk.v1 import risk_pb2, risk_pb2_grpc
from services.clients.private_check import PrivateChecker
from services.clients.risk_copy import RiskListFollower
from services.common.db import Database
from services.common.indicators import Indicator, IndicatorKind
from tests.factories import dataset

SUITE = "copies"
CITIZEN = [("x-principal", "citizen:bench")]
ANALYST = [("x-principal", "analyst:bench")]


async def run(run: Run) -> None:
    n = 100_000 if run.quick else 1_000_000
    data = list(dataset(n, seed=16))
    url = f"sqlite+aiosqlite:///{run.workdir / 'copies-bench.db'}"
    await _prepare(url, data)
    plain = await _plain_select(url)
    risk = Server("risk", {"ANTIFRAUD_RISK_DATABASE_URL": url}, run.workdir)
    with servers(risk):
        await risk.start()
        async with channel(risk.address, "admin:bench") as ch:
            stub = risk_pb2_grpc.RiskServiceStub(ch)
            follower = await _snapshot(run, stub, n, plain)
            await _diff(run, stub, follower)
            await _local(run, stub, follower, data)
            await _private(run, stub, data)


async def _plain_select(url: str) -> float:
    db = Database("risk", url=url)
    started = time.perf_counter()
    async with db.read() as conn:
        rows = (await conn.execute(sa.text("SELECT * FROM indicators"))).all()
    seconds = time.perf_counter() - started
    del rows
    await db.dispose()
    return seconds


async def _snapshot(
    run: Run, stub: risk_pb2_grpc.RiskServiceStub, n: int, plain: float
) -> RiskListFollower:
    follower = RiskListFollower(stub, timeout=600)
    for label in ("first, checksums built", "again"):
        started = time.perf_counter()
        await follower.download()
        seconds = time.perf_counter() - started
        run.add(
            Result(
                SUITE,
                f"snapshot download + verify + load at {n:,} ({label})",
                seconds,
                "s",
                plain,
                "plain SELECT of the same rows",
                "< 10 s",
            )
        )
    size = 0
    async for chunk in stub.DownloadRiskList(risk_pb2.DownloadRiskListRequest(), timeout=600):
        size += chunk.ByteSize()
    run.add(
        Result(SUITE, f"snapshot size at {n:,}", size / 1e6, "MB", notes=f"{size / n:.1f} B/entry")
    )
    return follower


async def _diff(run: Run, stub: risk_pb2_grpc.RiskServiceStub, follower: RiskListFollower) -> None:
    changes = list(dataset(1_000, seed=99))

    async def items() -> AsyncIterator[risk_pb2.ImportIndicatorsRequest]:
        for i in changes:
            yield risk_pb2.ImportIndicatorsRequest(
                indicator=_pb(i),
                assertion=risk_pb2.Assertion(
                    source_type=risk_pb2.SOURCE_TYPE_ANALYST,
                    level=common_pb2.RISK_LEVEL_HIGH,
                    reason="bench",
                ),
            )

    await stub.ImportIndicators(items(), metadata=ANALYST, timeout=600)
    await asyncio.sleep(0.5)
    check = await _per_call(lambda: _check(stub, changes[0]), 50)
    started = time.perf_counter()
    await follower.sync_once()
    seconds = time.perf_counter() - started
    assert follower.resets == 0
    run.add(
        Result(
            SUITE,
            "diff of 1,000 changes: fetch + apply + verify",
            seconds * 1000,
            "ms",
            check * 1000,
            "one CheckIndicator",
            "< 100 ms",
        )
    )


async def _local(
    run: Run, stub: risk_pb2_grpc.RiskServiceStub, follower: RiskListFollower, data: list[Indicator]
) -> None:
    phones = [i for i in data if i.kind is IndicatorKind.PHONE_NUMBER][:5_000]
    check = follower.copy.check
    started = time.perf_counter()
    for _ in range(4):
        for i in phones:
            check(i.kind, i.value)
    local = 4 * len(phones) / (time.perf_counter() - started)
    plain = 1 / await _per_call(lambda: _check(stub, phones[0]), 300)
    run.add(
        Result(
            SUITE,
            "look-ups from the copy (phone numbers)",
            local,
            "/s",
            plain,
            "plain CheckIndicator calls",
        )
    )


async def _private(run: Run, stub: risk_pb2_grpc.RiskServiceStub, data: list[Indicator]) -> None:
    private = PrivateChecker(stub, metadata=CITIZEN)
    for kind in (IndicatorKind.PHONE_NUMBER, IndicatorKind.URL):
        values = [i for i in data if i.kind is kind][:100]
        mine = await _rate(lambda i: private.check(i.kind, i.value), values)
        plain = await _rate(lambda i: _check(stub, i), values)
        run.add(
            Result(
                SUITE,
                f"private look-ups, {kind.name.lower()}",
                mine,
                "/s",
                plain,
                "plain CheckIndicator calls",
            )
        )


async def _rate(call: Callable[[Indicator], Awaitable[object]], values: list[Indicator]) -> float:
    """Calls per second, one after another, over ``values`` (after one to warm up)."""
    await call(values[0])
    started = time.perf_counter()
    for i in values:
        await call(i)
    return len(values) / (time.perf_counter() - started)


def _pb(i: Indicator) -> common_pb2.Indicator:
    return common_pb2.Indicator(kind=int(i.kind), value=i.value)  # type: ignore[arg-type]


async def _check(stub: risk_pb2_grpc.RiskServiceStub, i: Indicator) -> object:
    return await stub.CheckIndicator(
        risk_pb2.CheckIndicatorRequest(indicator=_pb(i)), metadata=CITIZEN, timeout=30
    )


async def _per_call(call: Callable[[], Awaitable[object]], times: int) -> float:
    """Seconds per call, calls one after another (after one to warm up)."""
    await call()
    started = time.perf_counter()
    for _ in range(times):
        await call()
    return (time.perf_counter() - started) / times
