"""Screening benchmark on PostgreSQL and SQLite: carriers screen calls from listed numbers,
and each callee's warning must reach their app within a second.

Partners, risk, warning and the echo server each run in their own process (`antifraud
serve NAME`); the warning service screens (WarningService.ScreenContactEvents, what the
gateway's CallScreeningService forwards to), so each call is a risk look-up, a decision
and the contact and the callee's warning committed before the answer.

- **screening within 1 s**: calls arrive at a fixed rate (5/s first, then higher rates up
  to 200/s while the bound holds; --quick: 50, 100, 200 grouped and 5, 20 alone, 2 s
  steps), each from one of the listed MEDIUM numbers to one of the app users, whose live
  streams (StreamWarnings) are open; a call's latency runs from the moment it is sent to
  the moment the callee's stream shows the warning. Printed: the highest rate tried whose
  p99 is within 1 s (achieved calls/s), as a ratio to the echo server's unary throughput
  (h2load, the same runtime's baseline), and its p99. Achieved is the calls recorded per
  second of the sending window (an open loop: n calls at a rate fill n / rate seconds, or
  longer when the client fell behind), so a rate served in full reads as itself; how long the
  answers and the warnings took is what the p99 bound is for. (Dividing by the time to the
  last answer instead counted that answer's own latency against the rate: 400 calls at
  200/s answered 30 ms after the last send read as 197/s.)
- **where the CPU goes**: at each rate, CPU ms per screened call of each server and of the
  bench client, the machine's busy share and what other processes took (PostgreSQL, other
  work on the host); when the bound breaks, what limited the rate.
- **group commit**: the ramp runs once per mode and database, each mode on a warning
  server and database of its own: the warning service's group commit off
  (``ANTIFRAUD_WARNING_GROUP_COMMIT=0``: each screening its own transaction and its own
  risk look-up) and on; the ratio of the two rates is printed.
- **report to first warning**: a number with one app user among its recent contacts is
  confirmed (the police report's promotion, UpsertIndicator HIGH on the risk service);
  the time until that user's stream shows the fan-out's warning, p50 and p99.

Where the time goes per screened call, measured: bench/screening_notes.md.

    python -m bench --only screening [--quick]
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from bench.cpu_use import CpuMeter, CpuUse
from bench.harness import Result, Run, Server, bearer, grpc_frame, h2load, servers
from bench.harness import channel as channel_as
from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.echo.v1 import echo_pb2
from services.api.antifraud.risk.v1 import risk_pb2, risk_pb2_grpc
from services.api.antifraud.warning.v1 import warning_pb2 as pb
from services.api.antifraud.warning.v1 import warning_pb2_grpc
from services.common.config import env_key
from services.partners.directory import SIMULATORS
from tests import harness
from tests.harness import free_port

SUITE = "screening"
ECHO = "/antifraud.echo.v1.EchoService/Echo"
BOUND_SECONDS = 1.0
#: Offered rates, lowest first: a rate past the bound leaves a backlog (SMS, polls) that would
#: slow the next one down.
#: ANTIFRAUD_BENCH_SCREEN_DATABASES narrows the databases (postgresql, sqlite).
DATABASES = os.environ.get("ANTIFRAUD_BENCH_SCREEN_DATABASES", "postgresql,sqlite").split(",")
_DB_NAMES = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}
#: ANTIFRAUD_BENCH_SCREEN_RATES overrides the offered rates (e.g. one rate, to profile it).
_RATES_ENV = os.environ.get("ANTIFRAUD_BENCH_SCREEN_RATES")
FULL_RATES = (5, 10, 20, 50, 100, 200)
#: --quick (the whole quick bench has 5 minutes for its suites; this one about 60 s): fewer,
#: shorter steps; one transaction per call never held 100/s within the bound, so its quick
#: ramp stops below that.
QUICK_RATES = {"1": (50, 100, 200), "0": (5, 20)}
USERS = 50
#: Every server starts at once: each may take longer than alone (imports, migrations).
START_SECONDS = 300.0
#: A warning not seen within this long counts as missed (beyond the bound either way).
GRACE_SECONDS = 10.0
QUICK_GRACE_SECONDS = 3.0


def _rates(quick: bool, group_commit: str) -> tuple[int, ...]:
    if _RATES_ENV:
        return tuple(int(r) for r in _RATES_ENV.split(","))
    return QUICK_RATES[group_commit] if quick else FULL_RATES


def _phone(i: int, prefix: str) -> str:
    return f"+86{prefix}{i:08d}"


def _indicator(value: str) -> common_pb2.Indicator:
    return common_pb2.Indicator(kind=common_pb2.INDICATOR_KIND_PHONE_NUMBER, value=value)


@dataclass
class Inbox:
    """Open StreamWarnings of the app users; when each (user, number) warning arrived."""

    stub: warning_pb2_grpc.WarningServiceStub
    arrived: dict[tuple[str, str], float] = field(default_factory=dict)
    calls: list[grpc.aio.UnaryStreamCall] = field(default_factory=list)  # type: ignore[type-arg]
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def open(self, user_ids: list[str]) -> None:
        for user_id in user_ids:
            call = self.stub.StreamWarnings(pb.StreamWarningsRequest(user_id=user_id))
            self.calls.append(call)
            self.tasks.append(asyncio.create_task(self._read(user_id, call)))

    async def _read(self, user_id: str, call: grpc.aio.UnaryStreamCall) -> None:  # type: ignore[type-arg]
        try:
            async for event in call:
                if event.HasField("warning"):
                    key = (user_id, event.warning.reason.indicator.value)
                    self.arrived.setdefault(key, time.perf_counter())
                    self.changed.set()
        except grpc.aio.AioRpcError:
            return

    async def until(self, keys: Collection[tuple[str, str]], deadline: float) -> None:
        """Return once every key arrived, or at ``deadline`` (perf_counter)."""
        while not all(k in self.arrived for k in keys):
            left = deadline - time.perf_counter()
            if left <= 0:
                return
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)

    def close(self) -> None:
        for call in self.calls:
            call.cancel()
        for task in self.tasks:
            task.cancel()


async def _register(
    stub: warning_pb2_grpc.WarningServiceStub, users: list[tuple[str, str]]
) -> None:
    for user_id, phone in users:
        await stub.UpsertRecipient(
            pb.UpsertRecipientRequest(recipient=pb.Recipient(user_id=user_id, phone_number=phone))
        )


async def _list(risk: risk_pb2_grpc.RiskServiceStub, numbers: list[str], level: int) -> None:
    for number in numbers:
        await risk.UpsertIndicator(
            risk_pb2.UpsertIndicatorRequest(
                request_id=str(uuid.uuid4()),
                indicator=_indicator(number),
                assertion=risk_pb2.Assertion(
                    source_type=risk_pb2.SOURCE_TYPE_POLICE,
                    source_id="bench",
                    level=level,  # type: ignore[arg-type]
                    reason="bench",
                ),
            )
        )


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def _screen_at(
    screening: warning_pb2_grpc.WarningServiceStub,
    inbox: Inbox,
    users: list[tuple[str, str]],
    callers: list[str],
    rate: int,
    seconds: float,
    grace: float,
) -> tuple[float, float, int]:
    """(achieved calls/s, p99 seconds to the callee's stream, calls missed)."""
    count = int(rate * seconds)
    sent: dict[tuple[str, str], float] = {}
    pending: list[asyncio.Future[pb.ScreenContactEventsResponse]] = []
    started = time.perf_counter()
    for i in range(count):
        due = started + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        user_id, callee = users[i % len(users)]
        caller = callers[i // len(users)]
        sent[(user_id, caller)] = time.perf_counter()
        request = pb.ScreenContactEventsRequest(
            events=[
                pb.ScreeningEvent(
                    event_id=str(uuid.uuid4()), caller=caller, callee=callee,
                    kind=pb.CONTACT_KIND_CALL,
                )
            ]
        )  # fmt: skip
        pending.append(asyncio.ensure_future(screening.ScreenContactEvents(request, timeout=30)))
    # The offered window, n / rate; a client that fell more than a call's interval behind
    # widens it: the rate is what was really offered.
    window = max(count / rate, time.perf_counter() - started)
    answers = await asyncio.gather(*pending, return_exceptions=True)
    recorded = sum(
        1
        for a in answers
        if isinstance(a, pb.ScreenContactEventsResponse)
        and a.decisions[0].record_state == pb.SCREENING_RECORD_STATE_RECORDED
    )
    await inbox.until(sent.keys(), time.perf_counter() + grace)
    latencies = [inbox.arrived[k] - t if k in inbox.arrived else grace for k, t in sent.items()]
    missed = sum(1 for k in sent if k not in inbox.arrived)
    achieved = recorded / window
    return achieved, _percentile(latencies, 0.99), missed


async def _first_warnings(
    warning: warning_pb2_grpc.WarningServiceStub,
    risk: risk_pb2_grpc.RiskServiceStub,
    inbox: Inbox,
    users: list[tuple[str, str]],
    rounds: int,
    grace: float,
) -> list[float]:
    """Seconds from a number's confirmation to the first contact's warning on their stream."""
    found: list[float] = []
    now = datetime.now(UTC)
    for r in range(rounds):
        number = _phone(r, "171")
        user_id, phone = users[r % len(users)]
        when = Timestamp()
        when.FromDatetime(now - timedelta(minutes=5))
        await warning.RecordContactEvents(
            pb.RecordContactEventsRequest(
                events=[
                    pb.ContactEvent(
                        caller=number, callee=phone, time=when, kind=pb.CONTACT_KIND_CALL,
                        caller_level=common_pb2.RISK_LEVEL_MEDIUM,
                    )
                ]
            )
        )  # fmt: skip
        started = time.perf_counter()
        await _list(risk, [number], common_pb2.RISK_LEVEL_HIGH)
        await inbox.until([(user_id, number)], started + grace)
        found.append(inbox.arrived.get((user_id, number), started + grace) - started)
    return found


async def _echo_rate(run: Run, echo: Server) -> float:
    body = grpc_frame(echo_pb2.EchoRequest(indicator=_indicator(_phone(1, "170"))))
    auth = (bearer("carrier:bench", "echo"),)
    n = 3_000 if run.quick else 20_000
    h2load(echo.address, ECHO, body, requests=1000, workdir=run.workdir, headers=auth)
    return h2load(
        echo.address, ECHO, body, requests=n, workdir=run.workdir, headers=auth
    ).requests_per_second


#: The warning service's group commit off (each screening its own transaction, the
#: baseline) and on, in the same run; on PostgreSQL and SQLite.
MODES = {"one transaction per call": "0", "group commit": "1"}
#: ANTIFRAUD_BENCH_SCREEN_MODES=grouped runs the group commit only (e.g. against older code).
if os.environ.get("ANTIFRAUD_BENCH_SCREEN_MODES") == "grouped":
    MODES = {"group commit": "1"}


@dataclass
class _Setup:
    """One database's servers: partners, risk and a warning server per mode (each warning
    server on a fresh database of its own)."""

    database: str
    partners: Server
    risk: Server
    warnings: dict[str, Server]
    schemas: list[str]

    @property
    def servers(self) -> list[Server]:
        return [self.partners, self.risk, *self.warnings.values()]


def _setup(run: Run, database: str) -> _Setup:
    simulators = {f"ANTIFRAUD_{env_key(n)}_ADDR": f"127.0.0.1:{free_port()}" for n in SIMULATORS}
    quiet = {
        "ANTIFRAUD_PARTNERS_LATENCY_MS": "0",
        "ANTIFRAUD_PARTNERS_JITTER_MS": "0",
        "ANTIFRAUD_PARTNERS_DELIVERY_DELAY_MS": "0",
    }
    schemas: list[str] = []
    warning_db: dict[str, dict[str, str]] = {}
    if database == "postgresql":
        schemas = [harness.new_schema("bench_screen_risk")]
        risk_db = {
            "ANTIFRAUD_RISK_DATABASE_URL": harness.PG_URL,
            "ANTIFRAUD_RISK_DB_SCHEMA": schemas[0],
        }
        for mode in MODES:
            schemas.append(harness.new_schema("bench_screen_warn"))
            warning_db[mode] = {
                "ANTIFRAUD_WARNING_DATABASE_URL": harness.PG_URL,
                "ANTIFRAUD_WARNING_DB_SCHEMA": schemas[-1],
            }
    else:
        files = Path(tempfile.mkdtemp(prefix="screening-", dir=run.workdir))
        risk_db = {"ANTIFRAUD_RISK_DATABASE_URL": harness.sqlite_url(files, "risk")}
        for n, mode in enumerate(MODES):
            url = harness.sqlite_url(files, f"warning-{n}")
            warning_db[mode] = {"ANTIFRAUD_WARNING_DATABASE_URL": url}
    partners = Server("partners", simulators | quiet, run.workdir)
    partners.log = run.workdir / f"partners-{database}.log"
    risk = Server("risk", risk_db, run.workdir)
    risk.log = run.workdir / f"risk-{database}.log"
    warnings: dict[str, Server] = {}
    for n, (mode, enabled) in enumerate(MODES.items()):
        warnings[mode] = Server(
            "warning",
            simulators
            | warning_db[mode]
            | {"ANTIFRAUD_RISK_TARGET": risk.address, "ANTIFRAUD_WARNING_GROUP_COMMIT": enabled},
            run.workdir,
        )
        warnings[mode].log = run.workdir / f"warning-{database}-{n}.log"
    return _Setup(database, partners, risk, warnings, schemas)


async def run(run: Run) -> None:
    """Every server of the suite starts at once (a start is mostly imports and migrations,
    and --quick has about 60 s): the echo server is measured first while the others stand
    idle, then stopped; then each database's modes in turn, a database's servers stopped
    before the next one's ramps. An idle server costs a few polls a second meanwhile
    (counted among "others" in the CPU figures)."""
    seconds = 2.0 if run.quick else 8.0
    databases = [d for d in DATABASES if d != "postgresql" or harness.postgres_reachable()]
    if "postgresql" not in databases:
        print("  screening: PostgreSQL not reachable; SQLite only")
    echo = Server("echo", {}, run.workdir)
    setups = [_setup(run, d) for d in databases]
    everything = [echo, *(server for setup in setups for server in setup.servers)]
    try:
        with servers(*everything):
            started = time.perf_counter()
            # Nine at once on a busy machine take longer than one alone: a longer start limit.
            await asyncio.gather(*(server.start(timeout=START_SECONDS) for server in everything))
            print(
                f"  {SUITE:<8} {len(everything)} servers up in "
                f"{time.perf_counter() - started:.1f} s",
                flush=True,
            )
            baseline = await _echo_rate(run, echo)
            echo.stop()
            for setup in setups:
                found: dict[str, dict[int, tuple[float, float]]] = {}
                for n, (mode, enabled) in enumerate(MODES.items()):
                    print(f"  {SUITE:<8} {_DB_NAMES[setup.database]}, {mode}:", flush=True)
                    found[mode] = await _measure(
                        run,
                        setup.database,
                        (setup.warnings[mode], setup.risk, setup.partners),
                        seconds,
                        enabled,
                        mode,
                        n,
                    )
                _report(run, setup.database, found, baseline)
                for server in setup.servers:
                    server.terminate()
                for server in setup.servers:
                    server.stop()
    finally:
        for setup in setups:
            for schema in setup.schemas:
                await harness.drop_schema(schema)


def _at_bound(ramp: dict[int, tuple[float, float]]) -> tuple[int, float, float]:
    """(offered rate, achieved calls/s, p99) of the highest rate within the bound."""
    within = [(rate, a, p) for rate, (a, p) in sorted(ramp.items()) if p <= BOUND_SECONDS]
    return within[-1] if within else (0, 0.0, 0.0)


def _report(
    run: Run, database: str, found: dict[str, dict[int, tuple[float, float]]], baseline: float
) -> None:
    db = _DB_NAMES[database]
    alone_ramp, grouped_ramp = found.get("one transaction per call", {}), found["group commit"]
    alone_rate, alone, alone_p99 = _at_bound(alone_ramp)
    rate, achieved, p99 = _at_bound(grouped_ramp)
    run.add(
        Result(
            SUITE,
            f"screened calls/s with the callee warned within 1 s p99 ({db})",
            achieved,
            "calls/s",
            baseline,
            "echo unary",
            ">= 200 calls/s" if database == "postgresql" else "",
            notes=f"group commit; offered {rate}/s; p99 {p99 * 1000:.0f} ms",
        )
    )
    run.add(
        Result(
            SUITE,
            f"  the same, one transaction per call ({db})",
            alone,
            "calls/s",
            baseline,
            "echo unary",
            notes=f"offered {alone_rate}/s; p99 {alone_p99 * 1000:.0f} ms",
        )
    )
    run.add(
        Result(
            SUITE,
            f"  group commit vs one transaction per call ({db})",
            achieved,
            "calls/s",
            alone or None,
            "one transaction per call",
        )
    )
    run.add(Result(SUITE, f"screening: callee's warning p99 ({db})", p99 * 1000, "ms"))
    # The same offered rate, both ways: how much sooner the callee is warned.
    for offered in sorted(set(alone_ramp) & set(grouped_ramp)):
        run.add(
            Result(
                SUITE,
                f"  callee's warning p99 at {offered} calls/s, grouped ({db})",
                grouped_ramp[offered][1] * 1000,
                "ms",
                alone_ramp[offered][1] * 1000,
                "one transaction per call",
            )
        )


def _cpu_line(rate: int, achieved: float, use: CpuUse) -> str:
    """Where the CPU went at one offered rate, per screened call and as a share of a core."""
    per_call = {n: s * 1000 / max(1.0, achieved * use.wall) for n, s in use.by_process.items()}
    shown = ", ".join(
        f"{n} {per_call[n]:.1f} ms/call ({use.per_second(n):.2f} core)" for n in use.by_process
    )
    others = use.others * 1000 / max(1.0, achieved * use.wall)
    return (
        f"at {rate}/s: machine {use.busy_share * 100:.0f}% busy of {use.cores} cores; {shown}; "
        f"others (PostgreSQL, other work on the host) {others:.1f} ms/call "
        f"({use.others / use.wall:.2f} core)"
    )


def _limit(rate: int, achieved: float, use: CpuUse) -> str:
    """What held the rate back, as the CPU figures show it."""
    warning = use.per_second("warning")
    ours = sum(use.by_process.values()) * 1000 / max(1.0, achieved * use.wall)
    ceiling = use.cores * 1000 / ours if ours else 0.0
    if use.busy_share >= 0.9:
        return (
            f"the machine's {use.cores} cores were {use.busy_share * 100:.0f}% busy at {rate}/s "
            f"(others than our servers: {use.others / use.wall:.2f} core); our processes took "
            f"{ours:.1f} ms CPU per screened call, so {use.cores} cores would hold at most "
            f"{ceiling:.0f} calls/s for them alone (a PostgreSQL server's work not counted)"
        )
    if warning >= 0.75:  # a Python process with gRPC's own threads tops out below 1.0
        per_call = use.by_process["warning"] * 1000 / max(1.0, achieved * use.wall)
        return (
            f"the warning service's one process ({warning:.2f} core at {rate}/s): "
            f"{per_call:.1f} ms CPU per screened call, so one core holds at most "
            f"{1000 / per_call:.0f} calls/s in it"
        )
    return f"neither a core nor the machine was saturated at {rate}/s: waiting (round trips)"


async def _measure(
    run: Run,
    database: str,
    processes: tuple[Server, Server, Server],
    seconds: float,
    group_commit: str,
    mode: str,
    series: int,
) -> dict[int, tuple[float, float]]:
    db = _DB_NAMES[database]
    warning, risk, partners = processes
    rates = _rates(run.quick, group_commit)
    grace = QUICK_GRACE_SECONDS if run.quick else GRACE_SECONDS
    users = [(f"bench-user-{i}", _phone(i, "139")) for i in range(USERS)]
    callers_needed = int(max(rates) * seconds) // USERS + 1
    meter = CpuMeter(
        {s.name: s.proc.pid for s in (warning, risk, partners) if s.proc is not None}
        | {"bench client": 0}
    )
    async with (
        channel_as(warning.address, "admin:bench") as admin_channel,
        channel_as(warning.address, "carrier:carrier-cmcc") as carrier_channel,
        channel_as(risk.address, "admin:bench") as risk_channel,
    ):
        stub = warning_pb2_grpc.WarningServiceStub(admin_channel)  # type: ignore[no-untyped-call]
        screening = warning_pb2_grpc.WarningServiceStub(carrier_channel)  # type: ignore[no-untyped-call]
        risk_stub = risk_pb2_grpc.RiskServiceStub(risk_channel)  # type: ignore[no-untyped-call]
        await _register(stub, users)
        inbox = Inbox(stub)
        inbox.open([u for u, _ in users])
        try:
            ramp: dict[int, tuple[float, float]] = {}
            for n, rate in enumerate(rates):
                # Callers of their own per mode and rate (the risk server is shared).
                callers = [
                    _phone(series * 1_000_000 + n * 10_000 + i, "170")
                    for i in range(callers_needed)
                ]
                await _list(risk_stub, callers, common_pb2.RISK_LEVEL_MEDIUM)
                meter.start()
                achieved, p99, missed = await _screen_at(
                    screening, inbox, users, callers, rate, seconds, grace
                )
                use = meter.stop()
                print(
                    f"  {SUITE:<8}   offered {rate} calls/s: achieved {achieved:.1f}/s, "
                    f"callee's warning p99 {p99 * 1000:.0f} ms, missed {missed}\n"
                    f"  {SUITE:<8}     CPU {_cpu_line(rate, achieved, use)}",
                    flush=True,
                )
                ramp[rate] = (achieved, p99)
                if p99 > BOUND_SECONDS:
                    if group_commit == "1":
                        print(
                            f"  {SUITE:<8}     limit ({db}, {mode}): {_limit(rate, achieved, use)}"
                            f"; ANTIFRAUD_BENCH_PROFILE=warning profiles where its time goes",
                            flush=True,
                        )
                    break
            if group_commit != "1":
                return ramp
            firsts_found = await _first_warnings(
                stub, risk_stub, inbox, users, 6 if run.quick else 30, grace
            )
            run.add(
                Result(
                    SUITE,
                    f"report confirmed -> first warning delivered p50 ({db})",
                    statistics.median(firsts_found) * 1000,
                    "ms",
                )
            )
            run.add(
                Result(
                    SUITE,
                    f"report confirmed -> first warning delivered p99 ({db})",
                    _percentile(firsts_found, 0.99) * 1000,
                    "ms",
                )
            )
            return ramp
        finally:
            inbox.close()
