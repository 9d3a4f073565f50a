"""Report intake benchmark: durable reports accepted per second, against plain inserts.

For SQLite and (when reachable) PostgreSQL:

- the report service runs as its own process (`antifraud serve report`) and a load
  client in another process submits distinct reports (each its own reporter and
  request id, about numbers from a pool so that some corroborate and are listed)
  with a fixed number in flight; every accepted report is committed before it is
  answered, with its idempotency record, corroboration and outbox event;
- the baseline, in the same run and on the same kind of database: the same rows a
  report writes (reporter, report, indicator link, idempotency record) inserted
  with SQLAlchemy Core by the same number of concurrent tasks, one transaction per
  report, with no reads, locks or checks.

Each at 1, 8 and 64 concurrent clients (a curve), in rounds: the report service's load and
its baseline in turn at each point, the order reversed every other round (3 rounds of 150
reports a side with --quick, 5 of 600 without); each point's figure is the round with the
median ratio, every round's ratio in its notes (one load of 150 swung 0.22x-0.61x between
runs of the same code on a shared 2-core machine). With the calls that failed by status
code; and the statements (by kind),
transactions, round trips and driver time one report costs, counted in a report service run
in the bench's process, with each report in its own transaction (as before the group commit)
and grouped (``services/report/service_layer/intake.py``).

Reports that arrive together are accepted in one transaction. Before that, each report was
its own: at 64 in flight on SQLite a few waited past the 4 s busy timeout for the write lock
and were answered UNAVAILABLE ("database is locked"; retryable, nothing stored).

The ratio says what the service's guarantees (idempotency, rate limit, duplicate
check, corroboration in the database, outbox) cost over storing the bare rows.

Where a report's time goes (issue 20; the statement profile below, and the report process
under ``ANTIFRAUD_BENCH_PROFILE=report``), per batch of reports (``intake.py``):

- before (867fff5): per batch, the claim of its request ids, the locks of its reporters and
  of its indicators, and the answers (4 statements); per report, the intake checks (rate
  window and duplicate, one read), the report, its indicator links, the tallies of its
  indicators (a read) and their new standing (5), each statement's construct built again
  for every report; an outbox event when what is asserted at the risk service changes. At
  8 in flight 6.2 statements and 7.0 round trips per report on both databases. The report
  process took 5-7 ms CPU per report at 8 in flight and 4-6 at 64 (PostgreSQL and SQLite,
  a machine loaded 15-35 on 2 cores): of its busy time, an eighth building the statements
  again and a third in the outbox relay trying every new risk sync while the risk service is down (a
  lease and a release transaction and a failed call each, again at 0.4 s, 0.8 s, 1.6 s ...);
- after: the reports of a batch that share no reporter and no indicator with another (most,
  with many callers) are checked one by one (their intake checks: one read each) and then
  stored together (one statement for their reports, one for their links) and counted in one
  read; the others are accepted one after the other as before; each indicator's standing
  written once, at the end of the batch. Per batch 8 statements, + 1 per report stored
  together (4 per report accepted one by one): at 8 in flight 3.3 statements and 4.1 round
  trips per report on both databases (before: 6.2 and 7.0); the statements built once (their
  compiled form cached), the free text masked once, the relay probing a peer that is down
  instead of trying each event (``services/common/outbox.py``). The report process: 2.3-3.5
  ms CPU per report at 8 in flight, 2.0-2.2 at 64, on both databases (same machine and load,
  alternating runs); what is left is SQLAlchemy running the statements (an execution context
  and a result each), the token check (a signature per caller: each report here is from
  another citizen), gRPC and the response.

At 1 in flight every report is a batch of one. Round 5 (issue 20), profiled there (one report
at a time, in the report process, cProfile, and the statements counted):

- before (af9c2e1): 9 statements and BEGIN/COMMIT one after another, about 11 round trips,
  and three of the statements (the claim, the reporter's and the indicators' upserts) built
  as a VALUES list, which SQLAlchemy cannot cache: compiled again for every report. The
  servicer's CPU per report, without gRPC: 4.8-6.6 ms on SQLite, 4.8-7.0 ms on PostgreSQL;
- after: those upserts compiled once (their rows passed as parameters); the indicators'
  tallies read with the intake checks, the new report counted in, not read again once it
  is stored (also for the reports stored together in a larger batch); on PostgreSQL three
  pairs of statements sent as one each (a CTE): the reporter's lock with the claim of the
  request id, the report with its link, the indicator's standing with the answer. A batch
  of one: 5 statements and 7 round trips on PostgreSQL, 8 statements and 10 on SQLite
  (which has no CTE that writes); at 8 in flight, grouped, 2.6 statements and 3.5 round
  trips per report on PostgreSQL, 3.0 and 3.9 on SQLite (before: 3.3 and 4.2 on both). The
  servicer's CPU per report: 3.3-4.4 ms on SQLite, 2.2-2.6 ms on PostgreSQL.

What is left at 1 in flight is waiting, not the report process's CPU: on SQLite each
statement is 3-4 hand-offs to aiosqlite's thread and back (a cursor, the execute, the rows,
the close: about 34 a report, the baseline about 14), each a wake-up of the event loop that
waits for a core on a loaded machine; on PostgreSQL 7 round trips (the baseline 6), after a
gRPC call and a token check the baseline does not make. The next step on SQLite is one
hand-off per statement (execute, rows and close in one call on aiosqlite's thread), in the
SQLAlchemy adapter every service shares.

Why the rounds fall (issue 20, 2026-12-02). Each point's notes list the rounds in order,
with the report process's CPU per report in each. In the full runs the service's rate often
fell from round to round while its baseline held: PostgreSQL at 64 in flight went 476, 418,
415, 305 and 317/s, and its CPU per report rose from 1.9 to 2.5 ms. Eight rounds of 1,800
reports in a row, in-process on SQLite, with every statement timed, show why. As the rounds go
on, more of the pool's 4,000 numbers have three reporters and are listed. A report about a
listed number costs more: an outbox event to sync the new count, and its reports moved to
review. Per round of 1,800, those status UPDATEs grew from 83 to 479 and the outbox INSERTs
from about 600 to 1,583, and the waits for SQLite's write lock grew with them. The mix of the
load changes, not a cost that grows with the rows stored. The baseline's rows are the same
every round.

    python -m bench.bench_report load ADDRESS   (the load client: a line COUNT IN_FLIGHT SEED
                                                a load, its result a JSON line)
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import grpc
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.cpu_use import CpuMeter, CpuUse
from bench.harness import ROOT, Result, Run, Server, median_round, servers
from bench.harness import channel as channel_as
from bench.profiled import statement_kind
from bench.report_hot import hot_number, report_request
from services.api.antifraud.report.v1 import report_pb2, report_pb2_grpc
from services.common.db import Database
from services.common.group_commit import BatchSettings
from services.report.adapters import tables
from services.report.bootstrap import VERSIONS, build
from tests import harness

SUITE = "report"
IN_FLIGHT = 32
#: Distinct numbers the reports are about; with COUNT reports, each is named a few times.
POOL = 4_000


def _request(i: int, seed: int) -> tuple[report_pb2.SubmitReportRequest, str]:
    rng = random.Random(seed * 1_000_003 + i)
    return report_request(f"+86139{rng.randrange(POOL):08d}"), f"citizen:bench-{seed}-{i}"


async def _load(address: str, count: int, in_flight: int, seed: int) -> dict[str, Any]:
    """Submit ``count`` distinct reports with ``in_flight`` outstanding; reports per second,
    and the failed calls by status code."""
    failed: Counter[str] = Counter()
    async with channel_as(address, "") as channel:
        stub = report_pb2_grpc.ReportServiceStub(channel)  # type: ignore[no-untyped-call]
        queue = iter(range(count))

        async def worker() -> None:
            nonlocal failed
            for i in queue:
                request, principal = _request(i, seed)
                try:
                    await stub.SubmitReport(request, metadata=[("x-principal", principal)])
                except grpc.aio.AioRpcError as exc:
                    failed[exc.code().name] += 1

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    lost = sum(failed.values())
    return {
        "per_second": (count - lost) / elapsed,
        "failed": lost,
        "codes": dict(failed),
        "seconds": elapsed,
        "cpu_seconds": cpu,
    }


class LoadClient:
    """The load client in a process of its own, started once for a backend's loads (a
    Python start each is a second or more on a loaded machine): each ``load`` sends it one
    (a line ``COUNT IN_FLIGHT SEED``) and reads back its result (a JSON line)."""

    def __init__(self, address: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.bench_report", "load", address],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )

    def load(self, count: int, seed: int, in_flight: int = IN_FLIGHT) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(f"{count} {in_flight} {seed}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the load client ended (exit code {self.proc.wait()})")
        result: dict[str, Any] = json.loads(line)
        return result

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def _serve_loads(address: str) -> None:
    """The load client's side of ``LoadClient``: one load a line of stdin, until it closes."""
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        count, in_flight, seed = (int(word) for word in line.split())
        print(json.dumps(await _load(address, count, in_flight, seed)), flush=True)


async def plain_inserts(db: Database, count: int, in_flight: int) -> float:
    """The rows of ``count`` reports inserted bare, one transaction each; reports per second."""
    now = datetime.now(UTC)
    async with db.engine.begin() as conn:
        await conn.execute(
            tables.indicators.insert().values(
                key="bench",
                kind=1,
                value="+8613900000000",
                standing=1,
                reporter_count=0,
                score=0.0,
                categories=[],
                version=0,
                synced_version=0,
                update_time=now,
            )
        )
        indicator_id = await conn.scalar(
            tables.indicators.select().with_only_columns(tables.indicators.c.id)
        )
    queue = iter(range(count))

    async def worker() -> None:
        for i in queue:
            report_id = uuid.uuid4().hex
            reporter = f"citizen:plain-{i}"
            request, _ = _request(i, 0)
            async with db.engine.begin() as conn:
                await conn.execute(
                    tables.reporters.insert().values(
                        reporter=reporter,
                        anonymous=False,
                        confirmed_count=0,
                        rejected_count=0,
                        create_time=now,
                    )
                )
                await conn.execute(
                    tables.reports.insert().values(
                        id=report_id,
                        reporter=reporter,
                        anonymous=False,
                        kind=1,
                        status=1,
                        category=6,
                        description=request.report.description,
                        evidence={},
                        create_time=now,
                        update_time=now,
                    )
                )
                await conn.execute(
                    tables.report_indicators.insert().values(
                        report_id=report_id,
                        position=0,
                        indicator_id=indicator_id,
                        reporter=reporter,
                        create_time=now,
                    )
                )
                await conn.execute(
                    tables.idempotency.insert().values(
                        method="SubmitReport",
                        request_id=str(uuid.uuid4()),
                        fingerprint="0" * 64,
                        response=request.SerializeToString(),
                        create_time=now,
                    )
                )

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return count / (time.perf_counter() - started)


#: Concurrent clients along the intake curve.
CLIENTS = (1, 8, 64)


def _rounds(run: Run) -> int:
    """Rounds of each point: the report service's load and its baseline one after the other
    in each (the order reversed every other round), so both meet the same moments of a
    shared machine; the figure is the round with the median ratio."""
    return 3 if run.quick else 5


def _round_count(run: Run) -> int:
    """Reports per side in one round: 150 with --quick; the full bench's 3,000 a point
    split over its rounds."""
    return 150 if run.quick else 3_000 // _rounds(run)


@dataclass
class Point:
    """One point of the intake curve measured in rounds: each round's load of the report
    service, its CPU use, and the baseline's reports/s."""

    clients: int
    loads: list[dict[str, Any]] = field(default_factory=list)
    cpu: list[CpuUse] = field(default_factory=list)
    plain: list[float] = field(default_factory=list)

    @property
    def ratios(self) -> list[float]:
        return [
            float(load["per_second"]) / base
            for load, base in zip(self.loads, self.plain, strict=True)
        ]

    def notes(self, count: int) -> str:
        ratios = ", ".join(f"{r:.2f}" for r in self.ratios)
        cpu = ", ".join(f"{use.by_process['report'] / count * 1000:.1f}" for use in self.cpu)
        busy = ", ".join(f"{use.busy_share * use.cores:.2f}" for use in self.cpu)
        rates = [float(load["per_second"]) for load in self.loads]
        failed = {
            "failed": sum(int(load["failed"]) for load in self.loads),
            "codes": sum((Counter(load.get("codes") or {}) for load in self.loads), Counter()),
        }
        return (
            f"the round with the median ratio of {len(self.plain)} (report service and baseline "
            f"in turn, the order reversed every other round; {count:,} reports each): ratios "
            f"{ratios}; reports {', '.join(f'{r:,.0f}' for r in rates)}/s, baseline "
            f"{', '.join(f'{p:,.0f}' for p in self.plain)}/s, round by round; the report "
            f"process's CPU per report {cpu} ms and the machine's cores busy {busy}, round by "
            f"round; over the rounds {_failures(failed)}"
        )


async def _rounds_of(
    run: Run,
    label: str,
    pg_url: str | None,
    report: Server,
    client: LoadClient,
    points: dict[int, Point],
) -> None:
    """Each point's rounds: the report service's load and the baseline (into a fresh
    database; on PostgreSQL at ``pg_url``) in turn."""
    count = _round_count(run)
    client.load(25 if run.quick else 500, seed=1)  # warm up
    assert report.proc is not None
    meter = CpuMeter({"report": report.proc.pid})
    for k in range(_rounds(run)):
        for i, clients in enumerate(CLIENTS):
            point = points[clients]
            for side in ("report", "plain")[:: 1 if k % 2 == 0 else -1]:
                if side == "plain":
                    point.plain.append(await _plain_fresh(run, label, pg_url, count, clients, k))
                else:
                    meter.start()
                    seed = 2 + k * len(CLIENTS) + i  # distinct reporters in every load
                    point.loads.append(client.load(count, seed=seed, in_flight=clients))
                    use = meter.stop()
                    # Its calls only, not the rest of its process's life.
                    use.by_process["load client"] = point.loads[-1]["cpu_seconds"]
                    point.cpu.append(use)


async def _backend(run: Run, label: str, url: str, schema: str | None) -> None:
    env = {
        "ANTIFRAUD_REPORT_DATABASE_URL": url,
        # Nothing listens there: promotions wait in the outbox, as with the risk service down.
        "ANTIFRAUD_RISK_TARGET": "127.0.0.1:1",
        "ANTIFRAUD_WARNING_TARGET": "127.0.0.1:1",
    }
    if schema is not None:
        env["ANTIFRAUD_REPORT_DB_SCHEMA"] = schema
    count = _round_count(run)
    report = Server("report", env, run.workdir)
    points = {clients: Point(clients) for clients in CLIENTS}
    with servers(report):
        await report.start()
        client = LoadClient(report.address)
        try:
            pg_url = url if schema is not None else None
            await _rounds_of(run, label, pg_url, report, client, points)
        finally:
            client.close()
    for clients, point in points.items():
        at = median_round(point.ratios)
        load = point.loads[at]
        accepted = run.add(
            Result(
                SUITE,
                f"SubmitReport durable reports accepted ({label}, {clients} in flight)",
                load["per_second"],
                "reports/s",
                point.plain[at],
                "plain SQLAlchemy inserts of the same rows",
                ">= 0.5x",
                notes=point.notes(count),
                curve=f"SubmitReport reports/s ({label})",
                x=clients,
                x_label="concurrent clients",
            )
        )
        if accepted.met is False:
            seconds = float(load["seconds"])
            why = limit(point.cpu[at], count, clients, seconds, point.plain[at], label)
            print(f"  {'':<8} {'':<52} limit: {why}", flush=True)


#: A batch of one (every report at 1 in flight), by database: its statements one after
#: another (``services/report/service_layer/intake.py``).
BATCH_OF_ONE = {
    "PostgreSQL": (
        "5 statements (reporter with claim, indicators, checks with tallies, report with "
        "link, standing with answer: CTEs) and BEGIN/COMMIT, 7 round trips"
    ),
    "SQLite": (
        "8 statements (reporter, claim, indicators, checks with tallies, report, link, "
        "standing, answer; SQLite has no CTE that writes) and BEGIN/COMMIT, each statement 3-4 "
        "hand-offs to aiosqlite's thread and back (cursor, execute, rows, close), about 34"
    ),
}


def limit(
    use: CpuUse, count: int, clients: int, seconds: float, plain: float, label: str = ""
) -> str:
    """What held the reports back at ``clients`` in flight (``seconds`` of load, the load
    client's start apart; ``plain`` the baseline's reports/s; ``label`` the database): the
    CPU each process took per report and the machine's busy share; the report process's one
    core when it was busy; else the wait of each client for its own report (round trip,
    checks, commit) one at a time, which at 1 in flight is the construction's own limit."""
    per = {name: seconds / count * 1000 for name, seconds in use.by_process.items()}
    split = ", ".join(f"{name} {ms:.1f} ms CPU/report" for name, ms in per.items())
    others = max(0.0, use.machine_busy - sum(use.by_process.values())) / use.wall
    head = (
        f"{split}; machine {use.busy_share:.0%} busy of {use.cores} cores "
        f"(others, the database among them: {others:.2f} core)"
    )
    if use.busy_share >= 0.9:
        ceiling = use.cores * 1000 / max(sum(per.values()), 1e-9)
        return f"{head}: CPU; our processes alone would hold at most {ceiling:,.0f} reports/s"
    report_cores = use.by_process.get("report", 0.0) / seconds
    if report_cores >= 0.85:  # one process, one event loop: one core is all it can use
        ceiling = 1000 / max(per.get("report", 0.0), 1e-9)
        return (
            f"{head}: the report process's one core ({report_cores:.2f} core busy); at "
            f"{per.get('report', 0.0):.1f} ms CPU per report it holds at most {ceiling:,.0f} "
            "reports/s (its profile, ANTIFRAUD_BENCH_PROFILE=report: SQLAlchemy "
            "running the batch's statements, then the token check)"
        )
    wall = seconds / count * clients * 1000
    if clients == 1:
        return (
            f"{head}: one report at a time, each a transaction of its own: {wall:.1f} ms per "
            f"report against the baseline's {1000 / max(plain, 1e-9):.1f} ms, "
            f"{per.get('report', 0.0):.1f} ms of it the report process's CPU; "
            f"{BATCH_OF_ONE.get(label, 'its statements')} one after another, after a gRPC "
            "call and a token check, where the baseline sends 4 inserts and BEGIN/COMMIT "
            "(6 round trips; on SQLite about 14 hand-offs) from its own process"
        )
    return (
        f"{head}: not the cores; each client waits {wall:.1f} ms per report, "
        f"{per.get('report', 0.0):.1f} ms of it the report process's CPU (its profile, "
        "ANTIFRAUD_BENCH_PROFILE=report: SQLAlchemy running the batch's "
        "statements, then the token check), where the baseline only inserts"
    )


def _failures(load: dict[str, Any]) -> str:
    codes = load.get("codes") or {}
    if not codes:
        return "none failed"
    return (
        f"{int(load['failed'])} failed ("
        + ", ".join(f"{n} {code}" for code, n in sorted(codes.items()))
        + ")"
    )


async def _plain_fresh(
    run: Run, label: str, pg_url: str | None, count: int, clients: int, round_: int
) -> float:
    """Plain inserts into a fresh database of the same kind (a new SQLite file, or a new
    PostgreSQL schema when ``pg_url`` is given); reports per second."""
    schema = None if pg_url is None else harness.new_schema("bench_plain")
    name = f"report-plain-{label}-{clients}-{round_}.db"
    url = pg_url or f"sqlite+aiosqlite:///{run.workdir / name}"
    # The bare inserts wait for SQLite's write lock, or a pooled PostgreSQL connection, as
    # long as it takes (64 writers queue past the request path's 4 s busy timeout and 2 s
    # pool wait on a loaded machine): a baseline that fails some of its rows is none.
    unbounded = {
        "ANTIFRAUD_DB_STATEMENT_TIMEOUT_SECONDS": "120",
        "ANTIFRAUD_DB_CONNECT_TIMEOUT_SECONDS": "120",
    }
    with mock.patch.dict(os.environ, unbounded):
        db = Database("report", url=url, schema=schema)
    try:
        await db.migrate(VERSIONS)
        return await plain_inserts(db, count, clients)
    finally:
        await db.dispose()
        if schema is not None:
            await harness.drop_schema(schema)


class StatementCounter:
    """Statements (by verb and table), transactions and driver time of a database engine,
    counted by SQLAlchemy's events."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.statements = 0
        self.transactions = 0
        self.by_kind: Counter[str] = Counter()
        self.seconds = 0.0
        sync = engine.sync_engine
        event.listen(sync, "before_cursor_execute", self._before)
        event.listen(sync, "after_cursor_execute", self._after)
        event.listen(sync, "begin", self._begin)

    def _before(self, conn: Any, *_: object) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def _after(self, conn: Any, _cursor: Any, statement: str, *_: object) -> None:
        started = conn.info.pop("bench_started", None)
        if started is not None:
            self.seconds += time.perf_counter() - started
        kind = statement_kind(statement)
        if kind == "begin":  # SQLite's BEGIN IMMEDIATE, sent as a statement: a transaction
            return
        self.statements += 1
        self.by_kind[kind] += 1

    def _begin(self, *_: object) -> None:
        self.transactions += 1


#: How the profile accepts reports: each in its own transaction (as before the group
#: commit, ``ANTIFRAUD_REPORT_GROUP_COMMIT=0``), and grouped (the default).
PROFILES = (
    ("one transaction each", BatchSettings(enabled=False)),
    ("group commit", None),
)


async def _profile(run: Run, label: str, url: str, schema: str | None, count: int) -> None:
    """Where a report's time goes in the database: statements (by kind), transactions, round
    trips and the driver's time per accepted report, counted in a report service run in this
    process with 8 in flight, accepted alone and grouped (outbox relay idle: its peers are
    unreachable on purpose, as in the throughput figure)."""
    for seed, (how, intake) in enumerate(PROFILES, start=99):
        component = build(url=url, schema=schema, risk_target="127.0.0.1:1",
                          warning_target="127.0.0.1:1", intake=intake)  # fmt: skip
        async with harness.serving(component) as running:
            counter = StatementCounter(component.db.engine)
            component.relay.poll_seconds = 3600.0  # only the calls' own work is counted
            load = await _load(running.address, count, 8, seed=seed)
        per_report = counter.statements / count
        waits = ", with the waits for the write lock in BEGIN" if url.startswith("sqlite") else ""
        # On PostgreSQL every statement is a round trip, and so are BEGIN and COMMIT.
        trips = (counter.statements + 2 * counter.transactions) / count
        kinds = ", ".join(
            f"{kind} {n / count:.2f}"
            for kind, n in counter.by_kind.most_common()
            if n >= count / 20
        )
        run.add(
            Result(
                SUITE,
                f"SubmitReport statements per report ({label}, {how})",
                per_report,
                "statements",
                notes=(
                    f"{counter.transactions / count:.2f} transactions and about {trips:.1f} "
                    f"round trips per report (statements + BEGIN/COMMIT); in the driver "
                    f"{1000 * counter.seconds / count:.1f} ms per report (summed over the "
                    f"connections{waits}) of "
                    f"{1000 * load['seconds'] / count:.1f} ms wall per report at 8 in flight; "
                    f"per report: {kinds}"
                ),
            )
        )


async def run(run: Run) -> None:
    sqlite_url = f"sqlite+aiosqlite:///{run.workdir / 'report-bench.db'}"
    await _backend(run, "SQLite", sqlite_url, None)
    profiled = 60 if run.quick else 400
    await _profile(
        run, "SQLite", f"sqlite+aiosqlite:///{run.workdir / 'report-prof.db'}", None, profiled
    )
    await hot_number(run, "SQLite", f"sqlite+aiosqlite:///{run.workdir / 'report-hot.db'}", None)
    if not harness.postgres_reachable():
        print("  report: PostgreSQL not reachable; its figure is skipped")
        return
    schema = harness.new_schema("bench_report")
    try:
        await _backend(run, "PostgreSQL", harness.PG_URL, schema)
    finally:
        await harness.drop_schema(schema)
    schema = harness.new_schema("bench_report_prof")
    try:
        await _profile(run, "PostgreSQL", harness.PG_URL, schema, profiled)
    finally:
        await harness.drop_schema(schema)
    schema = harness.new_schema("bench_report_hot")
    try:
        await hot_number(run, "PostgreSQL", harness.PG_URL, schema)
    finally:
        await harness.drop_schema(schema)


if __name__ == "__main__" and sys.argv[1:2] == ["load"]:
    asyncio.run(_serve_loads(sys.argv[2]))
