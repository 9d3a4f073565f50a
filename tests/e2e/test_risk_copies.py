"""Partners' local copies of the risk list, with real risk processes; SQLite and PostgreSQL.

- A copy follows the list while two replicas on one database change it concurrently, asking
  either replica in turn: every diff verifies against the service's checksum, and at the end
  the copy is the service's list, entry for entry and by checksum.
- Downloads as columns (what the reference client asks for) and as a message per entry (older
  clients) carry the same list and checksum; an unknown encoding is INVALID_ARGUMENT.
- A download changed in transit does not add up and is refused.
- A corrupted copy fails its checksum on the next diff and is downloaded again; a version
  of another feed or beyond the end answers RESET; a kind the role may not hold is refused.
- With the risk service stopped the copy keeps screening (the client's, and the carrier
  simulators' ScreenCall), and follows again when it is back.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from services.api.antifraud.common.v1 import common_pb2 as c
from services.api.antifraud.partner.v1 import simulator_pb2 as sim
from services.api.antifraud.partner.v1 import simulator_pb2_grpc as simg
from services.api.antifraud.risk.v1 import risk_pb2 as r
from services.api.antifraud.risk.v1 import risk_pb2_grpc as rg
from services.clients.risk_copy import CopyMismatch, RiskListFollower, entry_of
from services.common.config import ServerSettings
from services.common.indicators import IndicatorKind
from services.common.principals import Role
from services.partners.bootstrap import build_partners
from services.partners.domain.behavior import Behavior
from services.risk.domain.copies import ListEntry, checksum_bytes
from services.risk.domain.model import RiskLevel, categories_mask
from services.risk.entrypoints.policy import LIST_KINDS
from tests import harness
from tests.e2e.test_risk_service import assertion
from tests.harness import ProcessSuite, serving

pytestmark = pytest.mark.slow

K = IndicatorKind
CARRIER = [("x-principal", "carrier:cmcc")]
ANALYST = [("x-principal", "analyst:a-1")]
LEVELS = [c.RISK_LEVEL_LOW, c.RISK_LEVEL_MEDIUM, c.RISK_LEVEL_HIGH]


def value_of(i: int) -> tuple[IndicatorKind, str]:
    """A value of a kind carriers hold, numbered."""
    match i % 4:
        case 0:
            return K.PHONE_NUMBER, f"+86139{i:08d}"
        case 1:
            return K.SMS_SENDER, f"1065{i:08d}"
        case 2:
            return K.URL, f"pay{i}.evil.example/login/"
        case _:
            return K.DOMAIN, f"fraud{i}.example"


async def upsert(stub: rg.RiskServiceStub, i: int, level: int) -> None:
    kind, value = value_of(i)
    await stub.UpsertIndicator(
        r.UpsertIndicatorRequest(
            request_id=str(uuid.uuid4()),
            indicator=c.Indicator(kind=int(kind), value=value),  # type: ignore[arg-type]
            assertion=assertion(level=level, categories=[1 + i % 11]),
        ),
        timeout=30,
        wait_for_ready=True,  # a restarted server: wait for it rather than fail at once
    )


async def retire(stub: rg.RiskServiceStub, i: int) -> None:
    kind, value = value_of(i)
    await stub.RetireIndicator(
        r.RetireIndicatorRequest(
            request_id=str(uuid.uuid4()),
            indicator=c.Indicator(kind=int(kind), value=value),  # type: ignore[arg-type]
            reason="withdrawn",
        ),
        timeout=30,
    )


async def service_list(stub: rg.RiskServiceStub) -> set[ListEntry]:
    """The service's list of the carrier's kinds, as an analyst lists it."""
    found: set[ListEntry] = set()
    for kind in sorted(LIST_KINDS[Role.CARRIER]):
        token = ""
        while True:
            page = await stub.ListIndicators(
                r.ListIndicatorsRequest(kind=int(kind), page_size=500, page_token=token),  # type: ignore[arg-type]
                metadata=ANALYST,
            )
            for v in page.verdicts:
                if v.level > c.RISK_LEVEL_NONE or v.verified:
                    found.add(
                        ListEntry(
                            int(kind),
                            v.indicator.value,
                            int(v.level),
                            categories_mask(frozenset(v.categories)),  # type: ignore[arg-type]
                            v.verified,
                            v.verified_label if v.verified else "",
                        )
                    )
            token = page.next_page_token
            if not token:
                break
    return found


async def settle(follower: RiskListFollower, replicas: list[rg.RiskServiceStub]) -> None:
    """Sync from each replica once both have applied every write (they poll every 50 ms)."""
    await asyncio.sleep(0.5)
    for stub in replicas:
        follower.stub = stub
        await follower.sync_once()


@pytest.fixture
async def processes(
    db_target: tuple[str, str | None], tmp_path: Path
) -> AsyncIterator[ProcessSuite]:
    url, schema = db_target
    env = {"ANTIFRAUD_RISK_POLL_SECONDS": "0.05", "ANTIFRAUD_LOG_LEVEL": "info"}
    if schema is not None:
        env |= {"ANTIFRAUD_DATABASE_URL": url, "ANTIFRAUD_RISK_DB_SCHEMA": schema}
    suite = ProcessSuite(["risk"], data_dir=tmp_path, extra_env=env, replicas={"risk": 2})
    try:
        await suite.start_all()
        yield suite
    finally:
        suite.stop_all()


async def test_a_copy_follows_two_replicas_under_concurrent_changes(
    processes: ProcessSuite,
) -> None:
    async with (
        harness.channel(processes.addrs["risk"]) as one,
        harness.channel(processes.addrs["risk-2"]) as two,
    ):
        replicas = [rg.RiskServiceStub(one), rg.RiskServiceStub(two)]
        for i in range(40):
            await upsert(replicas[i % 2], i, LEVELS[i % 3])
        follower = RiskListFollower(replicas[0], metadata=CARRIER, timeout=30)
        await settle(follower, replicas)
        assert set(follower.copy.entries()) == await service_list(replicas[1])
        assert len(follower.copy) >= 40  # ours, and the allow list seeded at start

        rng = random.Random(16)

        async def writer(stub: rg.RiskServiceStub, offset: int) -> None:
            listed = {i for i in range(40) if i % 2 == offset}  # each writer its own values
            for step in range(60):
                if step % 4 == 3:
                    i = rng.choice(sorted(listed))
                    listed.discard(i)
                    await retire(stub, i)
                else:
                    i = rng.randrange(80) * 2 + offset
                    listed.add(i)
                    await upsert(stub, i, rng.choice(LEVELS))

        writers = asyncio.gather(writer(replicas[0], 0), writer(replicas[1], 1))
        syncs = 0
        while not writers.done() or syncs < 2:
            follower.stub = replicas[syncs % 2]  # either replica, in turn
            await follower.sync_once()
            syncs += 1
            await asyncio.sleep(0.02)
        await writers
        assert (follower.downloads, follower.resets) == (1, 0)  # every diff verified
        assert syncs > 5

        # Both replicas have applied every write: the copy is the service's list.
        await settle(follower, replicas)
        assert follower.resets == 0
        assert set(follower.copy.entries()) == await service_list(replicas[0])
        for stub in replicas:
            fresh = RiskListFollower(stub, metadata=CARRIER, timeout=30)
            await fresh.download()
            if fresh.copy.version == follower.copy.version:
                assert fresh.copy.checksum == follower.copy.checksum
                assert set(fresh.copy.entries()) == set(follower.copy.entries())
            # Older clients (a message per entry, the default) get the same list, the same
            # checksum; columns carry every entry that is not verified.
            as_columns = await downloaded(stub, r.RISK_LIST_ENCODING_COLUMNS)
            assert as_columns == await downloaded(stub, r.RISK_LIST_ENCODING_UNSPECIFIED)
            assert as_columns == await downloaded(stub, r.RISK_LIST_ENCODING_ENTRIES)
            assert as_columns[2] == set(follower.copy.entries())
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await downloaded(replicas[0], 7)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "encoding" in str(caught.value.details())


async def downloaded(stub: rg.RiskServiceStub, encoding: int) -> tuple[str, bytes, set[ListEntry]]:
    """The version, the checksum and the entries of a download in ``encoding``, as sent."""
    version, checksum, entries = "", b"", set[ListEntry]()
    request = r.DownloadRiskListRequest(encoding=encoding)  # type: ignore[arg-type]
    async for chunk in stub.DownloadRiskList(request, metadata=CARRIER):
        if chunk.version_token:
            version, checksum = chunk.version_token, chunk.checksum
        entries.update(map(entry_of, chunk.entries))
        if encoding == r.RISK_LIST_ENCODING_COLUMNS:
            assert all(e.verified for e in chunk.entries)
        else:
            assert not chunk.columns
        for col in chunk.columns:
            entries.update(
                ListEntry(col.kind, v, level, mask, False, "")
                for v, level, mask in zip(col.values, col.levels, col.category_masks, strict=True)
            )
    return version, checksum, entries


class Tampering:
    """A stub whose downloads have one level changed in transit, in the first columns."""

    def __init__(self, stub: rg.RiskServiceStub) -> None:
        self.stub = stub

    async def DownloadRiskList(
        self, request: r.DownloadRiskListRequest, **kwargs: Any
    ) -> AsyncIterator[r.DownloadRiskListResponse]:
        changed = False
        async for chunk in self.stub.DownloadRiskList(request, **kwargs):
            if chunk.columns and not changed:
                levels = chunk.columns[0].levels
                levels[0] = c.RISK_LEVEL_LOW if levels[0] != c.RISK_LEVEL_LOW else c.RISK_LEVEL_HIGH
                changed = True
            yield chunk
        assert changed


async def test_reset_refusals_and_screening_while_the_service_is_stopped(
    processes: ProcessSuite,
) -> None:
    processes.terminate("risk-2")
    async with harness.channel(processes.addrs["risk"]) as channel:
        stub = rg.RiskServiceStub(channel)
        for i in range(12):
            await upsert(stub, i, c.RISK_LEVEL_HIGH)
        follower = RiskListFollower(stub, metadata=CARRIER, timeout=30, max_wait=0.05)
        await follower.sync_once()

        # A corrupted copy (an entry the service never listed, added as a bug would, sum and
        # all): the next diff does not add up, and the copy is downloaded again.
        bogus = ListEntry(int(K.PHONE_NUMBER), "+8613800138000", int(RiskLevel.HIGH), 0, False, "")
        corrupt = checksum_bytes(int.from_bytes(follower.copy.checksum, "big") + bogus.digest())
        follower.copy.apply([bogus], [], follower.copy.version, corrupt)
        assert follower.copy.check(K.PHONE_NUMBER, "13800138000").level == RiskLevel.HIGH
        phone, number = value_of(0)
        await upsert(stub, 100, c.RISK_LEVEL_MEDIUM)
        await follower.sync_once()
        assert (follower.downloads, follower.resets) == (2, 1)
        assert follower.copy.check(phone, number).level == RiskLevel.HIGH
        assert set(follower.copy.entries()) == await service_list(stub)

        # A download changed in transit does not add up: refused, the copy as it was.
        tampered = RiskListFollower(Tampering(stub), metadata=CARRIER, timeout=30)  # type: ignore[arg-type]
        with pytest.raises(CopyMismatch):
            await tampered.download()
        assert (tampered.copy.version, len(tampered.copy), tampered.downloads) == ("", 0, 0)

        # Versions the service cannot diff from answer RESET; kinds not the role's are refused.
        feed, _, last = follower.copy.version.rpartition("-")
        for version in (f"0{feed}-1", f"{feed}-{int(last) + 1000}"):
            reply = await stub.ComputeRiskListDiff(
                r.ComputeRiskListDiffRequest(version_token=version), metadata=CARRIER
            )
            assert reply.response_type == r.DIFF_RESPONSE_TYPE_RESET
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ComputeRiskListDiff(
                r.ComputeRiskListDiffRequest(version_token="not a version"), metadata=CARRIER
            )
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in stub.DownloadRiskList(
                r.DownloadRiskListRequest(kinds=[c.INDICATOR_KIND_BANK_ACCOUNT]), metadata=CARRIER
            ):
                pass
        assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED

        # The carrier simulators screen calls from their own copy, followed the same way.
        partners = build_partners(
            settings_for=lambda name: ServerSettings(name, "127.0.0.1:0", grace_seconds=0.2),
            behavior=Behavior(),
            follow_risk_list=lambda copy: RiskListFollower(
                stub, copy, kinds=(K.PHONE_NUMBER, K.SMS_SENDER), metadata=CARRIER, max_wait=0.05
            ),
        )
        follower.start()
        async with (
            serving(partners) as running,
            harness.channel(running.address) as control_channel,
        ):
            control = simg.SimulatorControlServiceStub(control_channel)

            async def screened(number: str) -> int:
                reply = await control.ScreenCall(
                    sim.ScreenCallRequest(simulator="carrier-cmcc", caller_number=number)
                )
                return int(reply.level)

            phone, number = value_of(0)
            for _ in range(600):
                if partners.risk_copy.version:
                    break
                await asyncio.sleep(0.05)
            assert await screened(number) == c.RISK_LEVEL_HIGH
            try:
                # The service stops: the followers keep trying, the copies keep screening.
                processes.terminate("risk")
                await asyncio.sleep(0.5)
                for i in range(12):
                    kind, value = value_of(i)
                    assert follower.copy.check(kind, value).level == RiskLevel.HIGH
                assert follower.copy.check(K.PHONE_NUMBER, "13800138000").level == RiskLevel.NONE
                assert await screened(number) == c.RISK_LEVEL_HIGH
                assert await screened("13800138000") == c.RISK_LEVEL_NONE
                assert await screened("+86 96110") == c.RISK_LEVEL_MEDIUM  # spoofed official

                # Back again: the copy follows from where it was, without downloading.
                processes.start("risk")
                await processes.wait("risk")
                async with harness.channel(processes.addrs["risk"]) as again:
                    await upsert(rg.RiskServiceStub(again), 200, c.RISK_LEVEL_HIGH)
                kind, value = value_of(200)
                for _ in range(300):
                    if await screened(value) == c.RISK_LEVEL_HIGH and (
                        follower.copy.check(kind, value).level == RiskLevel.HIGH
                    ):
                        break
                    await asyncio.sleep(0.1)
            finally:
                await follower.stop()
        assert follower.copy.check(kind, value).level == RiskLevel.HIGH
        assert partners.risk_copy.check(kind, value).level == RiskLevel.HIGH
        assert follower.downloads == 2
