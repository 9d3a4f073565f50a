"""Partners' local copies and private look-ups, against a risk server in its own process.

- DownloadRiskList of every kind at 1,000,000 entries (30,000 with --quick): the time to
  download, verify and load it into a RiskCopy (the first request soon after the server
  started, while its checksums may still be being built, then again), vs the same run's
  transfer of the same bytes and plain protobuf decode of them; the server's time to its
  first chunk; the size on the wire; the same for the previous encoding (a message per
  entry, as older clients ask).
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
from typing import Any

import grpc

from bench.bench_risk import _prepare
from bench.harness import Result, Run, Server, channel, servers
from bench.index_load import plain_read
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
    n = 30_000 if run.quick else 1_000_000
    data = list(dataset(n, seed=16))
    url = f"sqlite+aiosqlite:///{run.workdir / 'copies-bench.db'}"
    await _prepare(url, data)
    plain = await _plain_select(url)
    risk = Server("risk", {"ANTIFRAUD_RISK_DATABASE_URL": url}, run.workdir)
    with servers(risk):
        await risk.start()
        async with channel(risk.address, "admin:bench") as ch:
            stub = risk_pb2_grpc.RiskServiceStub(ch)
            follower = await _snapshot(run, ch, stub, n, plain)
            await _diff(run, stub, follower)
            await _local(run, stub, follower, data)
            await _private(run, stub, data)


async def _plain_select(url: str) -> float:
    db = Database("risk", url=url)
    try:
        return await plain_read(db)
    finally:
        await db.dispose()


_DOWNLOAD = "/antifraud.risk.v1.RiskService/DownloadRiskList"


async def _snapshot(
    run: Run, ch: grpc.aio.Channel, stub: risk_pb2_grpc.RiskServiceStub, n: int, plain: float
) -> RiskListFollower:
    """The first download after the server started (its checksums may still be being built
    beside look-ups), then again; each beside the same run's plain transfer of the same
    bytes and plain protobuf decode of them (the least any client does). Then the previous
    encoding (a message per entry, what older clients ask for), the same way."""
    columns = risk_pb2.RISK_LIST_ENCODING_COLUMNS
    follower = RiskListFollower(stub, timeout=600)
    for label in ("first request after start", "again"):
        started = time.perf_counter()
        await follower.download()
        seconds = time.perf_counter() - started
        transfer, decode, size, first = await _raw_download(ch, columns)
        run.add(
            Result(
                SUITE,
                f"snapshot to a verified copy at {n:,} ({label})",
                seconds,
                "s",
                transfer + decode,
                "transfer + plain protobuf decode of the same bytes",
                "< 10 s",
                notes=f"transfer {transfer:.2f} s, decode {decode:.2f} s",
            )
        )
    run.add(
        Result(
            SUITE,
            f"snapshot: the server's time to its first chunk at {n:,}",
            first,
            "s",
            transfer,
            "the whole transfer",
            notes="snapshot of the index taken, first chunk encoded",
        )
    )
    run.add(
        Result(
            SUITE,
            f"snapshot size at {n:,}",
            size / 1e6,
            "MB",
            notes=f"{size / n:.1f} B/entry; a plain SELECT of the same rows took {plain:.2f} s",
        )
    )
    entries = RiskListFollower(_EntriesStub(stub), timeout=600)  # type: ignore[arg-type]
    started = time.perf_counter()
    await entries.download()
    seconds = time.perf_counter() - started
    assert entries.copy.checksum == follower.copy.checksum
    transfer, decode, size, _ = await _raw_download(ch, risk_pb2.RISK_LIST_ENCODING_ENTRIES)
    run.add(
        Result(
            SUITE,
            f"snapshot to a verified copy at {n:,}, a message per entry (older clients)",
            seconds,
            "s",
            transfer + decode,
            "transfer + plain protobuf decode of the same bytes",
            notes=f"{size / n:.1f} B/entry",
        )
    )
    return follower


class _EntriesStub:
    """A stub that asks for the list as a message per entry, as clients written before the
    columns encoding do."""

    def __init__(self, stub: risk_pb2_grpc.RiskServiceStub) -> None:
        self._stub = stub

    def DownloadRiskList(self, request: risk_pb2.DownloadRiskListRequest, **kwargs: Any) -> Any:
        request.encoding = risk_pb2.RISK_LIST_ENCODING_ENTRIES
        return self._stub.DownloadRiskList(request, **kwargs)


async def _raw_download(ch: grpc.aio.Channel, encoding: int) -> tuple[float, float, int, float]:
    """The list's bytes received without decoding, then decoded by protobuf alone: seconds
    to transfer, seconds to decode, bytes, and seconds to the first chunk."""
    call = ch.unary_stream(
        _DOWNLOAD,
        request_serializer=risk_pb2.DownloadRiskListRequest.SerializeToString,
        response_deserializer=None,
    )
    request = risk_pb2.DownloadRiskListRequest(encoding=encoding)  # type: ignore[arg-type]
    started = time.perf_counter()
    first = 0.0
    chunks: list[bytes] = []
    async for chunk in call(request, timeout=600):
        if not chunks:
            first = time.perf_counter() - started
        chunks.append(chunk)
    transfer = time.perf_counter() - started
    started = time.perf_counter()
    for chunk in chunks:
        message = risk_pb2.DownloadRiskListResponse.FromString(chunk)
        for columns in message.columns:  # the columns as Python lists: what any use needs
            list(columns.values), list(columns.levels), list(columns.category_masks)
        for entry in message.entries:
            entry.value  # noqa: B018 (each entry's value, read as any use reads it)
    decode = time.perf_counter() - started
    return transfer, decode, sum(map(len, chunks)), first


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
        values = [i for i in data if i.kind is kind][: 30 if run.quick else 100]
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
