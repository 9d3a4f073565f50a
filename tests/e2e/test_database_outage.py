"""Every service's PostgreSQL refused, then black-holed, for 20 s under load.

Each service (identity, risk, report, warning, and the gateway's key store) reaches its
database through a TCP proxy of its own (``tests.tcp_proxy``). A steady mixed load runs
through the gateway and directly to the services: checks, reports, cases, contact
events, payee checks, warning streams and screening streams. All proxies refuse for
``ANTIFRAUD_OUTAGE_SECONDS`` (20 by default) at once, then pass again, then black-hole
for as long (open connections held silent, new ones accepted and never answered), then
pass again.

What must hold:
- clients see only OK, UNAVAILABLE or DEADLINE_EXCEEDED (a stream may also end at its
  own deadline), never UNKNOWN or INTERNAL;
- while its database is away a service says NOT_SERVING, and after each outage every
  service is SERVING again by itself and calls succeed within a bounded number of tries;
- nothing accepted is lost: every report accepted before, during or after the outages is
  readable afterwards, and every accepted case's stop-payment (relayed through two
  outboxes) reaches its bank and is acknowledged.

Every client call has a deadline, every wait a bound, and the proxies cut every socket
they hold on teardown, so a fault cannot hang the test.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from services.api.antifraud.common.v1 import common_pb2 as c
from services.api.antifraud.gateway.v1 import gateway_pb2 as gw
from services.api.antifraud.identity.v1 import identity_pb2 as idn
from services.api.antifraud.identity.v1 import identity_pb2_grpc
from services.api.antifraud.report.v1 import report_pb2 as rp
from services.api.antifraud.risk.v1 import risk_pb2 as rk
from services.api.antifraud.risk.v1 import risk_pb2_grpc
from services.api.antifraud.warning.v1 import warning_pb2 as wn
from services.api.antifraud.warning.v1 import warning_pb2_grpc
from services.common.config import env_key
from services.common.health_client import is_serving
from tests import harness
from tests.e2e.deployment import WITH_DATABASE, Citizen, Deployment, deployment, new_phone
from tests.factories import card
from tests.tcp_proxy import Proxy

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

OUTAGE = float(os.environ.get("ANTIFRAUD_OUTAGE_SECONDS", "20"))
#: Every client call's deadline.
DEADLINE = 5.0
#: How long a warning stream stays open before its own deadline ends it.
STREAM_SECONDS = 2.0
#: After an outage: how long every service may take to say SERVING again, and how many
#: tries (half a second apart) a call may need once it does.
RECOVERY_SECONDS = 30.0
RECOVERY_TRIES = 10
ALLOWED = {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
#: grpc.aio's client reports a write to a call that has already ended as INTERNAL with
#: this text, without any server involved (grpc/grpc#36066); see test_runtime_chaos.
CLIENT_LOCAL_INTERNAL = "Internal error from Core"


def _pg_upstream() -> tuple[str, int]:
    host, _, port = harness.PG_URL.split("@", 1)[1].split("/", 1)[0].partition(":")
    return host, int(port or 5432)


def _through(proxy: Proxy) -> str:
    host_port = harness.PG_URL.split("@", 1)[1].split("/", 1)[0]
    return harness.PG_URL.replace(host_port, f"127.0.0.1:{proxy.port}")


@pytest.fixture(scope="module")
async def proxies() -> AsyncIterator[dict[str, Proxy]]:
    if not harness.postgres_reachable():
        pytest.skip(f"PostgreSQL not reachable at {harness.PG_URL}")
    found = {name: Proxy(_pg_upstream()) for name in WITH_DATABASE}
    try:
        for proxy in found.values():
            await proxy.start()
        yield found
    finally:
        for proxy in found.values():
            await proxy.close()


@pytest.fixture(scope="module")
async def suite(
    proxies: dict[str, Proxy], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Deployment]:
    data_dir: Path = tmp_path_factory.mktemp("outage")
    env = {
        f"ANTIFRAUD_{env_key(name)}_DATABASE_URL": _through(proxy)
        for name, proxy in proxies.items()
    }
    # The load is the test's, not the rate limits' (the gateway's, reports and cases).
    env |= {
        "ANTIFRAUD_GATEWAY_RATE_PER_SECOND": "100000",
        "ANTIFRAUD_GATEWAY_RATE_BURST": "100000",
        "ANTIFRAUD_REPORT_RATE_LIMIT": "100000",
        "ANTIFRAUD_REPORT_CASE_RATE_LIMIT": "100000",
    }
    async with deployment("postgresql", data_dir, extra_env=env, replicas={}) as found:
        if not found.local:
            pytest.skip("the databases' proxies are wired into processes started here")
        yield found


class Seen:
    """What the clients saw, by phase and call."""

    def __init__(self) -> None:
        self.phase = "before"
        self.codes: Counter[tuple[str, str, grpc.StatusCode]] = Counter()
        self.client_local = 0

    def add(self, phase: str, call: str, code: grpc.StatusCode, details: str | None = None) -> None:
        if code is grpc.StatusCode.INTERNAL and details == CLIENT_LOCAL_INTERNAL:
            self.client_local += 1
            return
        self.codes[(phase, call, code)] += 1

    def bad(self) -> dict[tuple[str, str, str], int]:
        codes = self.codes.items()
        return {(p, m, code.name): n for (p, m, code), n in codes if code not in ALLOWED}

    def count(self, phase: str, call: str, ok: bool) -> int:
        return sum(
            n
            for (p, m, code), n in self.codes.items()
            if p == phase and m == call and (code is grpc.StatusCode.OK) == ok
        )


def _timestamp(ago: timedelta) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(datetime.now(UTC) - ago)
    return stamp


def _phone(value: str = "") -> c.Indicator:
    return c.Indicator(kind=c.INDICATOR_KIND_PHONE_NUMBER, value=value or new_phone())


def _report() -> rp.Report:
    return rp.Report(
        kind=rp.REPORT_KIND_FRAUD_CALL,
        indicators=[_phone()],
        description="冒充客服，说我的快递丢了要理赔，让我下载会议软件",
        category=c.FRAUD_CATEGORY_FAKE_CUSTOMER_SERVICE,
    )


def _case(payee: str) -> rp.Case:
    return rp.Case(
        description="刷单返利，先小额返现，后来要求大额垫付",
        category=c.FRAUD_CATEGORY_ORDER_BRUSHING,
        amount_lost=c.Money(currency_code="CNY", units=3_000),
        incident_time=_timestamp(timedelta(hours=1)),
        payees=[rp.Payee(account=c.Indicator(kind=c.INDICATOR_KIND_BANK_ACCOUNT, value=payee))],
    )


def _contact() -> wn.ContactEvent:
    return wn.ContactEvent(
        caller=new_phone(),
        callee=new_phone(),
        kind=wn.CONTACT_KIND_CALL,
        time=_timestamp(timedelta(minutes=1)),
    )


class Load:
    """A steady mixed load through the gateway and directly to the services."""

    def __init__(self, suite: Deployment, seen: Seen) -> None:
        assert suite.suite is not None
        self.suite = suite
        self.seen = seen
        self.stop = asyncio.Event()
        self.rng = random.Random(13)
        addrs = suite.suite.addrs
        self.channels = [harness.channel(addrs[name]) for name in ("risk", "warning", "identity")]
        self.risk = risk_pb2_grpc.RiskServiceStub(self.channels[0])
        self.warning = warning_pb2_grpc.WarningServiceStub(self.channels[1])
        self.identity = identity_pb2_grpc.IdentityServiceStub(self.channels[2])
        #: Accepted work, to be found afterwards: (reporter, report name), (victim, case name).
        self.reports: list[tuple[Citizen, str]] = []
        self.cases: list[tuple[Citizen, str]] = []

    async def prepare(self) -> None:
        suite = self.suite
        self.carrier = await suite.key(gw.ROLE_CARRIER, "carrier-cmcc")
        self.bank = await suite.key(gw.ROLE_BANK, "bank-icbc")
        self.citizens = [await suite.register() for _ in range(2)]

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close(None)

    async def _repeat(self, name: str, one: Callable[[], Awaitable[None]], pause: float) -> None:
        while not self.stop.is_set():
            phase = self.seen.phase  # a call counts in the phase it was made in
            try:
                await one()
                self.seen.add(phase, name, grpc.StatusCode.OK)
            except grpc.aio.AioRpcError as err:
                self.seen.add(phase, name, err.code(), err.details())
            await asyncio.sleep(pause)

    # The calls, each with a deadline.

    async def check(self) -> None:
        await self.suite.risk.CheckIndicator(
            rk.CheckIndicatorRequest(indicator=_phone()), metadata=self.carrier, timeout=DEADLINE
        )

    async def check_directly(self) -> None:
        await self.risk.CheckIndicator(
            rk.CheckIndicatorRequest(indicator=_phone()), timeout=DEADLINE
        )

    async def report(self) -> None:
        reporter = self.rng.choice(self.citizens)
        got = await self.suite.report.SubmitReport(
            rp.SubmitReportRequest(request_id=str(uuid.uuid4()), report=_report()),
            metadata=reporter.metadata,
            timeout=DEADLINE,
        )
        self.reports.append((reporter, got.report.name))

    async def file_case(self) -> None:
        victim = self.rng.choice(self.citizens)
        got = await self.suite.report.FileCase(
            rp.FileCaseRequest(request_id=str(uuid.uuid4()), case=_case(card(self.rng))),
            metadata=victim.metadata,
            timeout=DEADLINE,
        )
        self.cases.append((victim, got.case.name))

    async def contacts(self) -> None:
        await self.suite.warning.RecordContactEvents(
            wn.RecordContactEventsRequest(events=[_contact() for _ in range(5)]),
            metadata=self.carrier,
            timeout=DEADLINE,
        )

    async def contacts_directly(self) -> None:
        async def events() -> AsyncIterator[wn.StreamContactEventsRequest]:
            for _ in range(3):
                yield wn.StreamContactEventsRequest(events=[_contact()])

        await self.warning.StreamContactEvents(
            events(), metadata=(("x-principal", "carrier:carrier-cmcc"),), timeout=DEADLINE
        )

    async def payee(self) -> None:
        await self.suite.payee.CheckPayee(
            gw.CheckPayeeRequest(
                account=c.Indicator(kind=c.INDICATOR_KIND_BANK_ACCOUNT, value=card(self.rng)),
                payee_name="张三",
            ),
            metadata=self.bank,
            timeout=DEADLINE,
        )

    async def user_directly(self) -> None:
        citizen = self.rng.choice(self.citizens)
        await self.identity.GetUser(
            idn.GetUserRequest(name=f"users/{citizen.user_id}"),
            metadata=(("x-principal", f"citizen:{citizen.user_id}"),),
            timeout=DEADLINE,
        )

    async def warnings_stream(self) -> None:
        """A citizen's warning stream, open until its own deadline ends it."""
        citizen = self.rng.choice(self.citizens)
        call = self.suite.warning.StreamWarnings(
            wn.StreamWarningsRequest(), metadata=citizen.metadata, timeout=STREAM_SECONDS
        )
        try:
            async for _ in call:
                pass
        except grpc.aio.AioRpcError as err:
            if err.code() is not grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
            # The stream's own deadline ending it is the normal end: counted as OK.

    async def screen(self) -> None:
        """A carrier screens two calls on one stream, then closes it."""
        call = self.suite.screening.ScreenEvents(metadata=self.carrier, timeout=DEADLINE)
        try:
            for _ in range(2):
                await call.write(
                    gw.ScreenEventsRequest(
                        events=[
                            gw.ScreenEvent(
                                event_id=str(uuid.uuid4()),
                                caller=new_phone(),
                                callee=new_phone(),
                                kind=wn.CONTACT_KIND_CALL,
                            )
                        ]
                    )
                )
                await call.read()
            await call.done_writing()
        except asyncio.InvalidStateError:
            pass  # written after the call ended: its status says why
        code = await call.code()
        if code is not grpc.StatusCode.OK:
            details = await call.details()
            raise grpc.aio.AioRpcError(
                code, grpc.aio.Metadata(), grpc.aio.Metadata(), details, None
            )

    async def run(self) -> None:
        loops: list[tuple[str, Callable[[], Awaitable[None]], float]] = [
            ("gateway CheckIndicator", self.check, 0.05),
            ("risk CheckIndicator", self.check_directly, 0.05),
            ("gateway SubmitReport", self.report, 0.1),
            ("gateway FileCase", self.file_case, 0.5),
            ("gateway RecordContactEvents", self.contacts, 0.1),
            ("warning StreamContactEvents", self.contacts_directly, 0.1),
            ("gateway CheckPayee", self.payee, 0.1),
            ("identity GetUser", self.user_directly, 0.1),
            ("gateway StreamWarnings", self.warnings_stream, 0.1),
            ("gateway ScreenEvents", self.screen, 0.1),
        ]
        async with asyncio.TaskGroup() as group:
            for name, one, pause in loops:
                group.create_task(self._repeat(name, one, pause))

    async def until_ok(self, name: str, one: Callable[[], Awaitable[None]]) -> int:
        """Tries a call until it succeeds (only retryable failures allowed): how many it took."""
        for attempt in range(1, RECOVERY_TRIES + 1):
            try:
                await one()
                return attempt
            except grpc.aio.AioRpcError as err:
                if err.code() not in RETRYABLE:
                    raise AssertionError(f"{name}: {err.code()} {err.details()}") from err
            await asyncio.sleep(0.5)
        raise AssertionError(f"{name} still failing after {RECOVERY_TRIES} tries")


async def _watch_health(addrs: dict[str, str], seen: Seen, down: set[tuple[str, str]]) -> None:
    """Every half second, which services say NOT_SERVING, by phase."""
    while True:
        for name, addr in addrs.items():
            if not await is_serving(addr, timeout=1):
                down.add((seen.phase, name))
        await asyncio.sleep(0.5)


async def _all_serving(addrs: dict[str, str]) -> float:
    """Seconds until every service says SERVING again by itself."""
    started = time.monotonic()
    waiting = set(addrs)
    while waiting:
        assert time.monotonic() - started < RECOVERY_SECONDS, f"still NOT_SERVING: {waiting}"
        waiting = {name for name in waiting if not await is_serving(addrs[name], timeout=1)}
        if waiting:
            await asyncio.sleep(0.25)
    return time.monotonic() - started


async def test_every_database_refused_then_black_holed_under_load(
    suite: Deployment, proxies: dict[str, Proxy]
) -> None:
    assert suite.suite is not None
    addrs = {name: suite.suite.addrs[name] for name in WITH_DATABASE}
    seen = Seen()
    load = Load(suite, seen)
    down: set[tuple[str, str]] = set()
    recovered: dict[str, float] = {}
    tries: dict[tuple[str, str], int] = {}
    probes: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        ("gateway CheckIndicator", load.check),
        ("gateway SubmitReport", load.report),
        ("gateway FileCase", load.file_case),
        ("gateway RecordContactEvents", load.contacts),
        ("warning StreamContactEvents", load.contacts_directly),
        ("gateway CheckPayee", load.payee),
        ("identity GetUser", load.user_directly),
        ("gateway ScreenEvents", load.screen),
    ]

    async def outages() -> None:
        await asyncio.sleep(3)  # steady load first
        for fault in ("refuse", "blackhole"):
            seen.phase = fault
            await asyncio.gather(*(getattr(p, fault)() for p in proxies.values()))
            await asyncio.sleep(OUTAGE)
            seen.phase = f"after {fault}"
            await asyncio.gather(*(p.forward() for p in proxies.values()))
            recovered[fault] = await _all_serving(addrs)
            for name, probe in probes:
                tries[(fault, name)] = await load.until_ok(name, probe)
        await asyncio.sleep(3)  # and steady load after
        load.stop.set()

    await load.prepare()
    health = asyncio.create_task(_watch_health(addrs, seen, down))
    try:
        async with asyncio.timeout(2 * OUTAGE + 4 * RECOVERY_SECONDS + 60):
            await asyncio.gather(load.run(), outages())
    finally:
        load.stop.set()
        health.cancel()
        await asyncio.gather(health, return_exceptions=True)
        for proxy in proxies.values():
            await proxy.forward()

    try:
        print(f"\nrecovered (s): {recovered}; tries after: {dict(tries)}")
        print(f"outcomes: {sorted((k[0], k[1], k[2].name, n) for k, n in seen.codes.items())}")
        assert not seen.bad(), seen.bad()
        # The outages were felt: database-backed calls failed, and every service said so.
        for fault in ("refuse", "blackhole"):
            assert seen.count(fault, "gateway SubmitReport", ok=False) > 0, fault
            assert {name for phase, name in down if phase == fault} == set(addrs), (fault, down)
            # Look-ups need no database, and the gateway honours keys it saw lately while
            # its key store is away (stale if error): they keep working throughout.
            for call in ("gateway CheckIndicator", "risk CheckIndicator"):
                assert seen.count(fault, call, ok=True) > 0, (fault, call)
                assert seen.count(fault, call, ok=False) == 0, (fault, call)
        # Nothing accepted is lost: every report readable, every case's stop-payment acked.
        assert load.reports
        assert load.cases
        for reporter, name in load.reports:

            async def read_report(who: Citizen = reporter, n: str = name) -> None:
                got = await suite.report.GetReport(
                    rp.GetReportRequest(name=n), metadata=who.metadata, timeout=DEADLINE
                )
                assert got.report.name == n

            await load.until_ok("GetReport", read_report)
        waiting = list(load.cases)
        deadline = time.monotonic() + 60
        while waiting:
            assert time.monotonic() < deadline, f"stop-payments never acknowledged: {waiting}"
            still = []
            for victim, name in waiting:
                try:
                    got = await suite.report.GetCase(
                        rp.GetCaseRequest(name=name), metadata=victim.metadata, timeout=DEADLINE
                    )
                    acked = rp.STOP_PAYMENT_STATUS_ACKNOWLEDGED
                    if got.case.payees[0].stop_payment_status != acked:
                        still.append((victim, name))
                except grpc.aio.AioRpcError as err:
                    if err.code() not in RETRYABLE:
                        raise
                    still.append((victim, name))
            waiting = still
            if waiting:
                await asyncio.sleep(0.5)
        # Nobody died on the way.
        died = {n: p.returncode for n, p in suite.suite.procs.items() if p.poll() is not None}
        assert not died, f"processes died: {died}"
    finally:
        await load.close()
