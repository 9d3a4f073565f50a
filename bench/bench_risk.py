"""Risk look-up benchmarks, against the echo server on the same runtime as the baseline.

- CheckIndicator throughput (h2load, unary) vs Echo, listed and unlisted numbers, in rounds
  (echo, listed, unlisted in turn; 5 of 3,000 requests each with --quick, 3 of 12,000): each
  figure is the round with the median ratio to echo, every round's ratio in its notes; p99
  at half the listed rate.
- StreamCheckIndicators verdicts per second at 1, 10 and 100 values per message vs
  EchoStream with the same messages (a curve); at 100, each server's CPU per value over its
  run and the handler's CPU in-process say what limits it. The same message is sent again
  and again, so the risk server answers from the values and answers it keeps
  (``services/risk/README.md``, "Streams": where a value's time goes, before and after,
  and the cost of values never seen before). One more point sends different messages of
  100 values in turn (90 unlisted numbers none of which repeats, 10 listed values), more
  than a run gets through (30,000; 6,000 with --quick; its notes say if any was sent
  again), so most values are new to the server, as on a carrier's stream: that figure,
  beside echo on the same messages, is what kept answers do not help.
- CheckIndicator throughput with 1 and with one worker process per core on one port, with
  the CPU the servers and the load client (h2load, on the same cores) used: requests per
  server CPU-second says whether a second worker does as much work per core as the first.
- CheckIndicator p99 at half load at the deployed default (``ANTIFRAUD_RISK_WORKERS``, one
  worker per core), beside the same with one worker and the echo server's at that rate.
- At 100,000 / 1,000,000 / 5,000,000 indicators (10,000 / 30,000 with --quick): memory
  per indicator in the index, and the time to load them at start vs a plain read of the
  same rows (curves).
- 100,000 assertions lapsing in the same second on SQLite (10,000 with --quick; the
  1,000,000 point is PostgreSQL's, in ``bench_risk_writes``): the time the sweeper takes to
  record them all in the feed vs one plain UPDATE lapsing the same rows.

``--quick`` keeps every figure and curve, with fewer requests and shorter streams, so the
suite ends within a minute.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from bench.harness import (
    ROOT,
    H2Load,
    Result,
    Run,
    Server,
    bearer,
    grpc_frame,
    h2load,
    median_round,
    servers,
    stream_loads,
)
from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.echo.v1 import echo_pb2
from services.api.antifraud.risk.v1 import risk_pb2
from services.common import tokens
from services.common.auth import CallerPolicy
from services.common.config import workers as deployed_workers
from services.common.db import Database
from services.common.indicators import Indicator, IndicatorKind
from services.common.principals import Principal
from services.risk.adapters import tables as t
from services.risk.adapters.bulk import load_new
from services.risk.bootstrap import build
from services.risk.domain.index import RiskIndex
from services.risk.domain.model import (
    Assertion,
    RiskLevel,
    Snapshot,
    SourceType,
    compute_snapshot,
    stages_text,
)
from services.risk.entrypoints import wire
from services.risk.entrypoints.policy import POLICY
from services.risk.service_layer.lookup import Lookup
from tests.factories import dataset
from tests.harness import free_port

SUITE = "risk"
CHECK = "/antifraud.risk.v1.RiskService/CheckIndicator"
STREAM = "/antifraud.risk.v1.RiskService/StreamCheckIndicators"
ECHO = "/antifraud.echo.v1.EchoService/Echo"
ECHO_STREAM = "/antifraud.echo.v1.EchoService/EchoStream"


def _assertions(data: list[Indicator]) -> list[tuple[Indicator, Assertion]]:
    now = datetime.now(UTC)
    return [(i, _assertion(n, now)) for n, i in enumerate(data)]


async def _prepare(url: str, data: list[Indicator]) -> None:
    component = build(url=url)
    await component.migrate()
    async with component.db.unbounded() as conn:
        await load_new(conn, _assertions(data), "bench", datetime.now(UTC))
    await component.db.dispose()


def _pb(i: Indicator) -> common_pb2.Indicator:
    return common_pb2.Indicator(kind=int(i.kind), value=i.value)  # type: ignore[arg-type]


@dataclass
class HalfLoad:
    """The paced load of the p99 figures, and the echo server's p99 under it."""

    rate: float
    seconds: float
    echo_p99: float
    single_p99: float
    single_median: float
    #: Echo's p99 with one request at a time at a low rate: the runtime's floor here, now.
    floor_p99: float = 0.0
    #: The machine's 1-minute load average while the paced runs went on.
    load_average: float = 0.0
    #: Server CPU per call over the paced runs (one process each): risk's, echo's.
    risk_cpu_per_call: float = 0.0
    echo_cpu_per_call: float = 0.0


async def run(run: Run) -> None:
    listed = list(dataset(10_000 if run.quick else 100_000))
    url = f"sqlite+aiosqlite:///{run.workdir / 'risk-bench.db'}"
    await _prepare(url, listed)
    echo = Server("echo", {}, run.workdir)
    risk = Server("risk", {"ANTIFRAUD_RISK_DATABASE_URL": url}, run.workdir)
    with servers(echo, risk):
        await asyncio.gather(echo.start(), risk.start())
        half = await _unary(run, echo, risk, listed)
        await _streams(run, echo, risk, listed, url)
    await _workers(run, url, listed, half)
    await _index_curve(run)
    await _lapses(run)


def _requests(run: Run) -> int:
    """Requests per throughput figure (a few seconds of load each; the unary figures' rounds
    share them out in the full bench: ``_round_requests``)."""
    return 3_000 if run.quick else 36_000


def _rounds(run: Run) -> int:
    """Rounds of the unary throughput figures: echo, listed and unlisted in turn in each, so
    the three meet the same moments of a shared machine; each figure is the round with the
    median ratio to echo."""
    return 5 if run.quick else 3


def _round_requests(run: Run) -> int:
    """Requests per server in one round: the quick bench's few requests each round (under a
    second of load), the full bench's ``_requests`` split over its rounds."""
    return _requests(run) if run.quick else _requests(run) // _rounds(run)


def _warm_up(run: Run) -> int:
    return 300 if run.quick else 2000


@dataclass
class Rounds:
    """One unary throughput figure measured in rounds against echo, each round's rates and
    each server's CPU per call over its runs."""

    name: str
    rates: list[float]
    echo_rates: list[float]
    cpu_per_call: float
    echo_cpu_per_call: float

    @property
    def ratios(self) -> list[float]:
        return [got / base for got, base in zip(self.rates, self.echo_rates, strict=True)]

    @property
    def cpu_ratio(self) -> float:
        """Echo's CPU per call over risk's: the rate ratio with a core each, whatever else
        the machine runs."""
        return self.echo_cpu_per_call / self.cpu_per_call if self.cpu_per_call else 0.0

    @property
    def median_round(self) -> int:
        """The round whose ratio to echo is the median (the lower one of an even count)."""
        return median_round(self.ratios)

    def result(self, run: Run) -> Result:
        at = self.median_round
        ratios = ", ".join(f"{r:.2f}" for r in self.ratios)
        return Result(
            SUITE,
            f"CheckIndicator throughput ({self.name})",
            self.rates[at],
            "req/s",
            self.echo_rates[at],
            "echo",
            ">= 0.85x echo",
            notes=(
                f"the round with the median ratio of {len(self.ratios)} (echo, listed, "
                f"unlisted in turn, the order reversed every other round; "
                f"{_round_requests(run):,} requests each): ratios {ratios}; "
                f"{self.name} {min(self.rates):,.0f}-{max(self.rates):,.0f} req/s, echo "
                f"{min(self.echo_rates):,.0f}-{max(self.echo_rates):,.0f}. Server CPU per call "
                f"over the rounds: risk {self.cpu_per_call * 1e6:.0f} us, echo "
                f"{self.echo_cpu_per_call * 1e6:.0f} us (with a core each, risk answers at most "
                f"{self.cpu_ratio:.2f}x echo's rate: what the rates say when others leave the "
                f"cores alone)"
            ),
        )


async def _unary(run: Run, echo: Server, risk: Server, listed: list[Indicator]) -> HalfLoad:
    phone = next(i for i in listed if i.kind == 1)
    n = _round_requests(run)
    # Both servers get the same signed token: risk verifies it, echo carries the same bytes.
    auth = (bearer("carrier:bench", "risk"),)
    assert risk.proc is not None
    assert echo.proc is not None
    echo_body = grpc_frame(echo_pb2.EchoRequest(indicator=_pb(phone)))
    body = grpc_frame(risk_pb2.CheckIndicatorRequest(indicator=_pb(phone)))
    miss_body = grpc_frame(
        risk_pb2.CheckIndicatorRequest(
            indicator=common_pb2.Indicator(
                kind=common_pb2.INDICATOR_KIND_PHONE_NUMBER, value="+8613012345678"
            )
        )
    )
    loads = {
        "echo": (echo.address, ECHO, echo_body, echo.proc.pid),
        "listed": (risk.address, CHECK, body, risk.proc.pid),
        "unlisted": (risk.address, CHECK, miss_body, risk.proc.pid),
    }
    for address, method, data, _ in loads.values():  # warm up
        h2load(address, method, data, requests=_warm_up(run), workdir=run.workdir, headers=auth)
    rates: dict[str, list[float]] = {name: [] for name in loads}
    cpu = dict.fromkeys(loads, 0.0)
    calls = dict.fromkeys(loads, 0)
    for k in range(_rounds(run)):
        for name in list(loads)[:: 1 if k % 2 == 0 else -1]:
            address, method, data, pid = loads[name]
            before = _cpu_seconds(pid)
            got = h2load(address, method, data, requests=n, workdir=run.workdir, headers=auth)
            cpu[name] += _cpu_seconds(pid) - before
            calls[name] += got.succeeded
            rates[name].append(got.requests_per_second)
    per_call = {name: cpu[name] / max(calls[name], 1) for name in loads}
    for name in ("listed number", "unlisted number"):
        key = name.split()[0]
        run.add(
            Rounds(name, rates[key], rates["echo"], per_call[key], per_call["echo"]).result(run)
        )
        if key == "listed":
            _token_cost(run, statistics.median(rates[key]))
    half = HalfLoad(
        statistics.median(rates["listed"]) / 2, 2.0 if run.quick else 10.0, 0.0, 0.0, 0.0
    )
    before = _cpu_seconds(risk.proc.pid)
    paced = _paced(run, risk.address, CHECK, body, half)
    half.risk_cpu_per_call = (_cpu_seconds(risk.proc.pid) - before) / max(paced.succeeded, 1)
    before = _cpu_seconds(echo.proc.pid)
    base_paced = _paced(run, echo.address, ECHO, echo_body, half)
    half.echo_cpu_per_call = (_cpu_seconds(echo.proc.pid) - before) / max(base_paced.succeeded, 1)
    half.echo_p99 = base_paced.percentile(0.99)
    half.single_p99, half.single_median = paced.percentile(0.99), paced.median_ms
    floor = h2load(
        echo.address,
        ECHO,
        echo_body,
        requests=int(FLOOR_RATE * half.seconds),
        clients=1,
        streams=1,
        rps_per_client=FLOOR_RATE,
        workdir=run.workdir,
        headers=auth,
    )
    half.floor_p99 = floor.percentile(0.99)
    half.load_average = os.getloadavg()[0]
    return half


#: Requests per second of the runtime's floor: one at a time, far below any load.
FLOOR_RATE = 50


#: Connections of the paced load, and requests in flight on each at most.
PACED_CLIENTS = 4
PACED_STREAMS = 4


def _paced(run: Run, address: str, method: str, body: bytes, half: HalfLoad) -> H2Load:
    """h2load at ``half.rate`` requests per second for ``half.seconds``."""
    return h2load(
        address,
        method,
        body,
        requests=int(half.rate * half.seconds),
        clients=PACED_CLIENTS,
        streams=PACED_STREAMS,
        rps_per_client=half.rate / PACED_CLIENTS,
        workdir=run.workdir,
        headers=(bearer("carrier:bench", "risk"),),
    )


def _token_cost(run: Run, calls_per_second: float) -> None:
    """What proving the caller adds to a call once tokens are warm: the gateway finds its
    token for (caller, service) in its cache, the service finds the verified claims for
    that token in its own and checks its table. Against the time of one whole call."""
    keyring = tokens.keyring()
    minter, verifier = tokens.Minter(keyring), tokens.Verifier(keyring, "risk")
    policy = CallerPolicy("risk", POLICY)
    caller = Principal.parse("carrier:bench")
    rounds = 50_000 if run.quick else 200_000
    started = time.perf_counter()
    for _ in range(rounds):
        claims = verifier.verify(minter.token(caller, "risk", "key-1"))
        policy.check(CHECK, claims.principal)
    per_call_us = (time.perf_counter() - started) / rounds * 1e6
    run.add(
        Result(
            SUITE,
            "token work per call (cached mint + verify + caller table)",
            per_call_us,
            "us",
            1e6 / calls_per_second,
            "one CheckIndicator at the measured rate",
            "<= 0.05x (tokens cost under 5 %)",
        )
    )


#: Values per StreamCheckIndicators message along the stream curve.
VALUES_PER_MESSAGE = (1, 10, 100)


async def _streams(run: Run, echo: Server, risk: Server, listed: list[Indicator], url: str) -> None:
    seconds = 1.0 if run.quick else 8.0
    runs: list[tuple[str, str, bytes | list[bytes]]] = []
    for per_message in VALUES_PER_MESSAGE:
        half = max(1, per_message // 2)
        values = [_pb(i) for i in listed[:half]] + [
            common_pb2.Indicator(
                kind=common_pb2.INDICATOR_KIND_PHONE_NUMBER, value=f"+86130{n:08d}"
            )
            for n in range(per_message - half)
        ]
        # Echo, then risk, at each point: both under the same conditions, in one client.
        runs.append(
            (echo.address, ECHO_STREAM,
             echo_pb2.EchoStreamRequest(indicators=values).SerializeToString())
        )  # fmt: skip
        runs.append(
            (risk.address, STREAM,
             risk_pb2.StreamCheckIndicatorsRequest(indicators=values).SerializeToString())
        )  # fmt: skip
    # The same 100-value message again and again is what a carrier's stream is not: the
    # risk service keeps the answers of values it saw twice. One more point sends
    # different messages in turn (90 unlisted numbers never repeated, 10 listed values in
    # turn), more than a run gets through, so most values are new to the server.
    fresh = _fresh_messages(listed, FRESH_MESSAGES_QUICK if run.quick else FRESH_MESSAGES)
    runs.append(
        (echo.address, ECHO_STREAM,
         [echo_pb2.EchoStreamRequest(indicators=m).SerializeToString() for m in fresh])
    )  # fmt: skip
    runs.append(
        (risk.address, STREAM,
         [risk_pb2.StreamCheckIndicatorsRequest(indicators=m).SerializeToString() for m in fresh])
    )  # fmt: skip
    # One client process per point, echo then risk: each server's CPU over its own run.
    assert echo.proc is not None
    assert risk.proc is not None
    pids = (echo.proc.pid, risk.proc.pid)
    measured: list[dict[str, float]] = []
    cpu: list[float] = []
    for k in range(len(VALUES_PER_MESSAGE) + 1):
        before = [_cpu_seconds(pid) for pid in pids]
        measured += stream_loads(runs[2 * k : 2 * k + 2], seconds=seconds, streams=4)
        cpu += [_cpu_seconds(pid) - used for pid, used in zip(pids, before, strict=True)]
    last = 2 * (len(VALUES_PER_MESSAGE) - 1)
    echo_body, risk_body = runs[last][2], runs[last + 1][2]
    assert isinstance(echo_body, bytes)
    assert isinstance(risk_body, bytes)
    work = await _stream_work(url, echo_body, risk_body)
    for k, per_message in enumerate(VALUES_PER_MESSAGE):
        base, got = measured[2 * k], measured[2 * k + 1]
        notes = ""
        if per_message == VALUES_PER_MESSAGE[-1]:
            per_value = (
                _cpu_per_value(cpu[2 * k], base, per_message),
                _cpu_per_value(cpu[2 * k + 1], got, per_message),
            )
            notes = _stream_limit(work, per_value, base["messages_per_second"], per_message)
        run.add(
            Result(
                SUITE,
                f"StreamCheckIndicators verdicts ({per_message} values/message)",
                got["messages_per_second"] * per_message,
                "verdicts/s",
                base["messages_per_second"] * per_message,
                "echo stream values/s",
                ">= 0.7x echo" if per_message == 100 else "",
                notes=notes,
                curve="StreamCheckIndicators verdicts/s",
                x=per_message,
                x_label="values per message",
            )
        )
    k = len(VALUES_PER_MESSAGE)
    base, got = measured[2 * k], measured[2 * k + 1]
    echo_cpu = _cpu_per_value(cpu[2 * k], base, FRESH_VALUES)
    risk_cpu = _cpu_per_value(cpu[2 * k + 1], got, FRESH_VALUES)
    sent = [_messages_sent(m) for m in (base, got)]
    # Echo keeps nothing, so what it is sent again costs it the same; the risk server keeps
    # answers, so none of its messages may come round again.
    repeated = (
        "each of risk's sent once"
        if sent[1] <= len(fresh)
        else f"risk's sent again: {sent[1] / len(fresh):.1f} turns"
    )
    run.add(
        Result(
            SUITE,
            f"StreamCheckIndicators verdicts ({FRESH_VALUES} values/message, "
            "different messages in turn)",
            got["messages_per_second"] * FRESH_VALUES,
            "verdicts/s",
            base["messages_per_second"] * FRESH_VALUES,
            "echo stream values/s",
            "",
            notes=(
                f"most values new to the server (the figure above sends one message again and "
                f"again): echo {sent[0]:,.0f} and risk {sent[1]:,.0f} messages of {len(fresh):,} "
                f"different, {repeated}; server CPU per value over the run: "
                f"risk {risk_cpu * 1e6:.2f} us, "
                f"echo {echo_cpu * 1e6:.2f} us (with a core each, at most "
                f"{echo_cpu / risk_cpu if risk_cpu else 0.0:.2f}x echo)"
            ),
        )
    )


#: The point of different messages: values per message, and the messages made, more than
#: either server answers in a run (echo about 2,000 a second on this machine).
FRESH_VALUES = 100
FRESH_MESSAGES = 30_000
FRESH_MESSAGES_QUICK = 6_000


def _fresh_messages(listed: list[Indicator], count: int) -> list[list[common_pb2.Indicator]]:
    """``count`` messages of FRESH_VALUES values: 90 unlisted numbers none of which
    repeats, and 10 listed values taken in turn."""
    unlisted = FRESH_VALUES - 10
    return [
        [_pb(listed[(m * 10 + j) % len(listed)]) for j in range(10)]
        + [
            common_pb2.Indicator(
                kind=common_pb2.INDICATOR_KIND_PHONE_NUMBER,
                value=f"+86131{m * unlisted + j:08d}",
            )
            for j in range(unlisted)
        ]
        for m in range(count)
    ]


def _messages_sent(measured: dict[str, float]) -> float:
    """Messages a stream run sent, warm-up included."""
    return measured["messages_per_second"] * measured["seconds"] + measured.get(
        "warm_up_messages", 0.0
    )


def _cpu_per_value(cpu: float, measured: dict[str, float], per_message: int) -> float:
    """A server's CPU seconds per value over a stream run, warm-up included (both counted)."""
    messages = _messages_sent(measured)
    return cpu / (messages * per_message) if messages else 0.0


async def _stream_work(url: str, echo_body: bytes, risk_body: bytes) -> tuple[float, float]:
    """CPU seconds of handler work per message, measured in this process on the same index the
    server loaded: (echo: parse and copy the values back, serialised; risk: parse, then
    normalise, look up and write every verdict as ``wire`` does)."""
    db = Database("risk", url=url)
    lookup = Lookup(db)
    await lookup.load()
    await db.dispose()

    def echo_once() -> None:
        request = echo_pb2.EchoStreamRequest.FromString(echo_body)
        echo_pb2.EchoStreamResponse(indicators=request.indicators).SerializeToString()

    def risk_once() -> None:
        wire.stream_response(
            risk_pb2.StreamCheckIndicatorsRequest.FromString(risk_body), lookup.index
        )

    return _per_call_seconds(echo_once), _per_call_seconds(risk_once)


def _per_call_seconds(once: Callable[[], None], rounds: int = 2_000) -> float:
    """CPU seconds per call (this process's own, not the wall clock: on a machine others
    load, the wall clock counts their time too)."""
    once()  # warm: the kept explanations and prepared values, the interned kinds
    started = time.process_time()
    for _ in range(rounds):
        once()
    return (time.process_time() - started) / rounds


def _stream_limit(
    work: tuple[float, float],
    per_value: tuple[float, float],
    echo_messages: float,
    per_message: int,
) -> str:
    """What limits the stream: each server's CPU per value over its run (echo, risk), which
    says how their rates compare when each has a core to itself, whatever else the machine
    runs; and the handler's own CPU per message in-process against echo's, over the
    per-message cost of the stream itself (gRPC, the event loop), which both pay alike and
    is estimated from echo's measured rate (its server the bottleneck)."""
    echo_work, risk_work = work
    echo_cpu, risk_cpu = per_value
    stream_cost = max(1 / echo_messages - echo_work, 0.0)
    bound = 1 / (stream_cost + risk_work)
    return (
        f"limit: server CPU per value over the run, risk {risk_cpu * 1e6:.2f} us, echo "
        f"{echo_cpu * 1e6:.2f} us: with a core each, risk answers at most "
        f"{echo_cpu / risk_cpu if risk_cpu else 0.0:.2f}x echo's values/s. Handler CPU per "
        f"message (in-process, same index) risk {risk_work * 1e3:.3f} ms = "
        f"{risk_work / per_message * 1e6:.2f} us per value, echo {echo_work * 1e3:.3f} ms; the "
        f"stream itself ~{stream_cost * 1e3:.2f} ms per message (echo's measured time less its "
        f"work); so at most ~{bound * per_message:,.0f} verdicts/s ({bound / echo_messages:.2f}x "
        f"echo) on one core"
    )


def _cpu_seconds(pid: int) -> float:
    """User and system CPU a process has used (/proc/PID/stat, clock ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy() -> float:
    """CPU-seconds every core of the machine has been busy (/proc/stat), whoever used them."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq = map(int, f.readline().split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    """CPU used by this process's finished children (h2load runs are those)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


@dataclass
class Measured:
    """One throughput run and the CPU it took: the servers' and the load client's."""

    load: H2Load
    seconds: float
    server_cpu: float
    client_cpu: float
    #: CPU the whole machine was busy with meanwhile: servers, h2load and everything else.
    machine_cpu: float


def _measure(run: Run, address: str, body: bytes, clients: int, pids: list[int]) -> Measured:
    server_before = sum(_cpu_seconds(pid) for pid in pids)
    client_before = _children_cpu()
    machine_before = _machine_busy()
    started = time.perf_counter()
    load = h2load(
        address,
        CHECK,
        body,
        requests=_requests(run),
        clients=clients,
        workdir=run.workdir,
        headers=(bearer("carrier:bench", "risk"),),
    )
    return Measured(
        load,
        time.perf_counter() - started,
        sum(_cpu_seconds(pid) for pid in pids) - server_before,
        _children_cpu() - client_before,
        _machine_busy() - machine_before,
    )


async def _workers(run: Run, url: str, listed: list[Indicator], half: HalfLoad) -> None:
    """CheckIndicator throughput with 1 and with N server processes on one port
    (``--worker``, SO_REUSEPORT), N the number of cores; h2load opens enough connections
    for the kernel to spread them over every worker. The CPU each side used says what
    limits scaling: requests per server CPU-second (the work a core does per request) with
    1 and N workers, and what the load client itself took of the same cores. Then the p99
    at half load at the deployed default (one worker per core)."""
    cores = os.cpu_count() or 1
    default = deployed_workers("risk")
    counts = sorted({1, cores, default})
    phone = next(i for i in listed if i.kind == 1)
    body = grpc_frame(risk_pb2.CheckIndicatorRequest(indicator=_pb(phone)))
    auth = (bearer("carrier:bench", "risk"),)
    single: Measured | None = None
    for count in counts:
        address = f"127.0.0.1:{free_port()}"
        env = {"ANTIFRAUD_RISK_DATABASE_URL": url}
        workers = [
            Server("risk", env, run.workdir, worker=k, address=address) for k in range(1, count + 1)
        ]
        with servers(*workers):
            await asyncio.gather(*(worker.start() for worker in workers))
            pids = [w.proc.pid for w in workers if w.proc is not None]
            clients = 4 * count
            h2load(address, CHECK, body, requests=_warm_up(run), clients=clients,
                   workdir=run.workdir, headers=auth)  # fmt: skip
            got = _measure(run, address, body, clients, pids)
            paced = _paced(run, address, CHECK, body, half) if count == default else None
        single = single or got
        rate = got.load.requests_per_second
        per_cpu = got.load.succeeded / got.server_cpu if got.server_cpu else 0.0
        single_per_cpu = single.load.succeeded / single.server_cpu if single.server_cpu else 0.0
        efficiency = per_cpu / single_per_cpu if single_per_cpu else 0.0
        notes = (
            f"{clients} h2load connections; {got.load.failed} failed. CPU over "
            f"{got.seconds:.2f} s on {cores} cores: servers {got.server_cpu:.2f} s "
            f"({got.server_cpu / got.seconds / cores:.0%} of the machine), h2load "
            f"{got.client_cpu:.2f} s ({got.client_cpu / got.seconds / cores:.0%}), other "
            f"processes {max(0.0, got.machine_cpu - got.server_cpu - got.client_cpu):.2f} s; "
            f"{per_cpu:,.0f} requests per server CPU-second"
        )
        if count > 1:
            # The cores the workers could have had: the machine's, less h2load's and what
            # every other process took meanwhile, at most one per worker.
            others = max(0.0, got.machine_cpu - got.server_cpu - got.client_cpu) / got.seconds
            free = max(0.0, min(float(count), cores - got.client_cpu / got.seconds - others))
            ceiling = free * per_cpu / single.load.requests_per_second if single_per_cpu else 0.0
            notes += (
                f" ({efficiency:.2f}x one worker's). Limit: {count} workers can use at most "
                f"{cores} cores less what h2load and the other processes take: {free:.2f} "
                f"cores free, they used {got.server_cpu / got.seconds:.2f}; at their "
                f"{per_cpu:,.0f} requests per CPU-second that is at most {ceiling:.2f}x one "
                f"worker's rate here"
            )
        run.add(
            Result(
                SUITE,
                f"CheckIndicator throughput, {count} worker process{'es' if count > 1 else ''}",
                rate,
                "req/s",
                single.load.requests_per_second,
                "1 worker",
                f">= {0.8 * count:.1f}x with {count} workers on {cores} cores" if count > 1 else "",
                notes=notes,
                curve="CheckIndicator req/s by workers",
                x=count,
                x_label="server processes on one port",
            )
        )
        if paced is not None:
            run.add(
                Result(
                    SUITE,
                    f"CheckIndicator p99 at half load ({half.rate:,.0f} req/s), "
                    f"{count} worker{'s' if count > 1 else ''} (deployed default)",
                    paced.percentile(0.99),
                    "ms",
                    half.echo_p99,
                    "echo p99 at the same rate (1 process)",
                    "< 5 ms",
                    notes=(
                        f"median {paced.median_ms:.2f} ms; {paced.failed} failed; "
                        f"{PACED_CLIENTS} connections x {PACED_STREAMS} streams paced by h2load. "
                        f"1 worker at the same rate: p99 {half.single_p99:.2f} ms, median "
                        f"{half.single_median:.2f} ms. What limits it: echo (no work at all) "
                        f"has p99 {half.echo_p99:.2f} ms at this rate and {half.floor_p99:.2f} ms "
                        f"at {FLOOR_RATE} req/s one at a time; machine load average "
                        f"{half.load_average:.1f} on {cores} cores. {_per_call_cpu(half)}"
                    ),
                )
            )


def _per_call_cpu(half: HalfLoad) -> str:
    """Server CPU per call at the paced rate, risk against echo: whose cost the latency is."""
    risk, echo = half.risk_cpu_per_call * 1e6, half.echo_cpu_per_call * 1e6
    said = f"Server CPU per call at this rate (1 process): risk {risk:.0f} us, echo {echo:.0f} us"
    if echo and risk <= 1.25 * echo:
        return f"{said}: the runtime's own per-call cost (echo's) is most of risk's"
    return f"{said}: risk's own work adds {risk - echo:.0f} us per call"


def _index_sizes(run: Run) -> tuple[int, ...]:
    """Indicators along the index curve: 1,000,000 and 5,000,000 only in the full bench."""
    return (10_000, 30_000) if run.quick else (100_000, 1_000_000, 5_000_000)


async def _index_curve(run: Run) -> None:
    """One data set grown through every size: the memory of one index as it grows, then one
    database as it grows, loaded at each size. Each value is normalised once, and the
    database is written in bulk (``_grow_fixture``), so the 5,000,000 point takes minutes."""
    sizes = _index_sizes(run)
    data = [(i.kind, i.value) for i in dataset(sizes[-1], seed=11)]
    now = datetime.now(UTC)
    # Verdicts computed before tracing (one per level the data set uses): only what the
    # index keeps is counted.
    snapshots = [compute_snapshot([_assertion(n, now)], now) for n in range(_LEVELS)]
    index = RiskIndex()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    done = 0
    for n in sizes:
        for k in range(done, n):
            kind, listed = data[k]
            # A fresh copy of the value, as loading from the database makes: the index owns it.
            index.put(kind, listed.encode().decode(), snapshots[k % _LEVELS])
        done = n
        used = tracemalloc.get_traced_memory()[0] - before
        run.add(
            Result(
                SUITE,
                f"index memory per indicator at {n:,}",
                used / n,
                "bytes",
                target="< 200 bytes",
                notes=f"tracemalloc of the packed index, keys included: {used / 2**20:,.0f} MiB",
                curve="index memory per indicator",
                x=n,
                x_label="indicators",
            )
        )
    tracemalloc.stop()
    del index
    path = run.workdir / "risk-index.db"
    url = f"sqlite+aiosqlite:///{path}"
    component = build(url=url)
    await component.migrate()
    await component.db.dispose()
    done = 0
    for n in sizes:
        await _grow_fixture(url, data[done:n], snapshots, done, now)
        done = n
        await _load_at(run, url, n)
    path.unlink(missing_ok=True)


#: The levels the bench data sets cycle through (LOW, MEDIUM, HIGH).
_LEVELS = 3


def _assertion(n: int, now: datetime) -> Assertion:
    return Assertion(
        SourceType.CARRIER,
        "feed",
        RiskLevel(2 + n % _LEVELS),
        frozenset(),
        "feed",
        now + timedelta(days=30),
        now,
        now,
    )


async def _grow_fixture(
    url: str,
    data: list[tuple[IndicatorKind, str]],
    snapshots: list[Snapshot],
    first: int,
    now: datetime,
) -> None:
    """Append ``data`` to the indicators table as ``bulk.load_new`` would list them (the k-th
    value's verdict is ``snapshots[k % 3]``), in plain multi-row statements: the load at
    start reads this table only, so the fixture leaves out the assertions and the feed."""
    db = Database("risk", url=url)
    i_t = t.indicators
    columns = [c for c in i_t.columns if c.name != "id"]
    sql = (
        f"INSERT INTO indicators ({', '.join(c.name for c in columns)}) "
        f"VALUES ({', '.join('?' for _ in columns)})"
    )
    stamp = i_t.c.update_time.type.bind_processor(db.engine.dialect)
    updated = stamp(now) if stamp else now
    tails = [
        (
            int(s.level), s.categories, s.flags, s.reporters, s.first_seen, s.last_seen,
            s.expire, s.verified, s.label, updated, stages_text(s),
        )
        for s in snapshots
    ]  # fmt: skip
    async with db.engine.begin() as conn:
        for start in range(0, len(data), 50_000):
            rows = [
                (int(kind), value, *tails[(first + start + k) % _LEVELS])
                for k, (kind, value) in enumerate(data[start : start + 50_000])
            ]
            await conn.exec_driver_sql(sql, rows)
    await db.dispose()


async def _load_at(run: Run, url: str, n: int) -> None:
    """The load at start and its plain read, timed in a fresh process (``bench.index_load``):
    in this one, the curve's data set (millions of values kept for the next point) shares
    the heap and the collector with the load (1,000,000 read 10.6 s here, 4.5 s alone)."""
    out = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bench.index_load", url],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=900,
    )
    timed = json.loads(out.stdout.strip().splitlines()[-1])
    if timed["indicators"] != n or timed["unloadable"]:
        raise RuntimeError(f"index curve: {timed['indicators']:,} of {n:,} indicators loaded")
    run.add(
        Result(
            SUITE,
            f"index load at start, {n:,} indicators (SQLite)",
            timed["loaded"],
            "s",
            timed["plain"],
            "plain SELECT of the same rows",
            "< 10 s at 1,000,000" if n == 1_000_000 else "",
            notes="each in a fresh process, as at a server's start",
            curve="index load time",
            x=n,
            x_label="indicators",
        )
    )


#: Simultaneous lapses on SQLite (the embedded database of ``make run``): the full bench's
#: 1,000,000 point is PostgreSQL's (``bench_risk_writes``). On SQLite 1,000,000 took 320 s
#: (100,000: 13 s; past its page cache it grows faster than the count), a tenth of the full
#: bench's 40 minutes on one figure.
LAPSES_SQLITE = 100_000
LAPSES_SQLITE_QUICK = 10_000


async def _lapses(run: Run) -> None:
    n = LAPSES_SQLITE_QUICK if run.quick else LAPSES_SQLITE
    data = list(dataset(n, seed=13))
    now = datetime.now(UTC)
    items = [
        (i, Assertion(SourceType.CARRIER, "feed", RiskLevel.HIGH, frozenset(), "feed",
                      now - timedelta(seconds=1), now - timedelta(days=1),
                      now - timedelta(days=1)))
        for i in data
    ]  # fmt: skip
    url = f"sqlite+aiosqlite:///{run.workdir / 'risk-lapses.db'}"
    component = build(url=url)
    await component.migrate()
    async with component.db.engine.begin() as conn:
        await load_new(conn, items, "bench", now - timedelta(days=1))
    del data, items
    started = time.perf_counter()
    async with component.db.engine.begin() as conn:
        await conn.execute(sa.text("UPDATE assertions SET lapsed = true"))
    plain = time.perf_counter() - started
    async with component.db.engine.begin() as conn:
        await conn.execute(sa.text("UPDATE assertions SET lapsed = false"))
    await component.lookup.load()
    started = time.perf_counter()
    recorded = await component.sweep_once()
    swept = time.perf_counter() - started
    await component.db.dispose()
    run.add(
        Result(
            SUITE,
            f"sweeper: {recorded:,} simultaneous lapses into the feed (SQLite)",
            swept,
            "s",
            plain,
            "one plain UPDATE of the same rows",
            notes=f"{recorded / swept:,.0f} lapses/s; the 1,000,000 point (< 60 s) is "
            "PostgreSQL's, in risk_writes",
        )
    )
