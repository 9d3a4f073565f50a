"""What observability costs: CheckIndicator throughput with the metrics endpoint scraped and
tracing on (OTLP, 1 % of traces sampled) as a ratio to both off, on the same data.

Both risk servers run at once; their runs alternate (off, on, off, on, ...) and each
side's median counts, so a neighbour's load on the machine falls on both alike. The
spans go to an OTLP collector in this process (a threaded gRPC server that counts them),
and /metrics is read every second while the load runs, as Prometheus would.
"""

from __future__ import annotations

import statistics
import threading
import urllib.request
from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from bench.bench_risk import CHECK, _pb, _prepare
from bench.harness import Result, Run, Server, bearer, grpc_frame, h2load, servers
from services.api.antifraud.risk.v1 import risk_pb2
from tests.factories import dataset
from tests.harness import free_port

SUITE = "observability"
ROUNDS = 3


class _Collector(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.spans = 0
        self._lock = threading.Lock()

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        count = sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
        with self._lock:
            self.spans += count
        return trace_service_pb2.ExportTraceServiceResponse()


class _Scraper:
    """Reads /metrics every second on a thread, as a Prometheus server would."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.scrapes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                with urllib.request.urlopen(f"http://{self.address}/metrics", timeout=2) as r:
                    r.read()
                self.scrapes += 1
            except OSError:
                pass

    def __enter__(self) -> _Scraper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def run(run: Run) -> None:
    listed = list(dataset(5_000 if run.quick else 100_000))
    url = f"sqlite+aiosqlite:///{run.workdir / 'observability-bench.db'}"
    await _prepare(url, listed)
    collector = _Collector()
    otlp = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, otlp)  # type: ignore[no-untyped-call]
    otlp_port = otlp.add_insecure_port("127.0.0.1:0")
    otlp.start()
    metrics_addr = f"127.0.0.1:{free_port()}"
    plain = Server("risk", {"ANTIFRAUD_RISK_DATABASE_URL": url}, run.workdir)
    observed = Server("risk", {"ANTIFRAUD_RISK_DATABASE_URL": url}, run.workdir)
    observed.env |= {
        "ANTIFRAUD_RISK_METRICS_ADDR": metrics_addr,
        "ANTIFRAUD_TRACE_EXPORTER": "otlp",
        "ANTIFRAUD_TRACE_OTLP_ENDPOINT": f"127.0.0.1:{otlp_port}",
        "ANTIFRAUD_TRACE_SAMPLE_RATIO": "0.01",
    }
    try:
        with servers(plain, observed):
            await plain.start()
            await observed.start()
            phone = next(i for i in listed if i.kind == 1)
            body = grpc_frame(risk_pb2.CheckIndicatorRequest(indicator=_pb(phone)))
            auth = (bearer("carrier:bench", "risk"),)
            n = 4_000 if run.quick else 20_000
            for server in (plain, observed):  # warm up
                h2load(
                    server.address, CHECK, body, requests=n // 4, workdir=run.workdir, headers=auth
                )
            off: list[float] = []
            on: list[float] = []
            with _Scraper(metrics_addr) as scraper:
                for _ in range(ROUNDS):
                    for server, rates in ((plain, off), (observed, on)):
                        result = h2load(
                            server.address,
                            CHECK,
                            body,
                            requests=n,
                            workdir=run.workdir,
                            headers=auth,
                        )
                        rates.append(result.requests_per_second)
    finally:
        otlp.stop(None)
    with_both, without = statistics.median(on), statistics.median(off)
    run.add(
        Result(
            SUITE,
            "CheckIndicator throughput, metrics scraped + tracing on (1 % sampled)",
            with_both,
            "req/s",
            without,
            "both off",
            ">= 0.95x both off",
            notes=f"{collector.spans} spans exported, {scraper.scrapes} scrapes, "
            f"medians of {ROUNDS} alternating runs",
        )
    )
