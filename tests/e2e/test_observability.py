"""Operators' view of a running suite: a real Prometheus scraping every process, and every
process exporting its spans to an OTLP collector run here (spans kept in memory).

One suite per database backend, one scenario: three citizens report a number (MEDIUM), a
carrier's screening records a call from it, an analyst's confirmation tips it to HIGH (its
contact is warned by SMS through a carrier simulator), and a victim files a case (a
stop-payment at the payee's bank). Then: PromQL shows the series moved; one trace covers
gateway -> report -> outbox -> risk -> warning -> carrier simulator; no label of any
series holds a personal value.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import shutil
import subprocess
import urllib.parse
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from services.api.antifraud.common.v1 import common_pb2 as c
from services.api.antifraud.gateway.v1 import gateway_pb2 as gw
from services.api.antifraud.report.v1 import report_pb2 as rp
from services.api.antifraud.warning.v1 import warning_pb2 as wn
from tests import harness
from tests.conftest import BACKENDS
from tests.e2e.deployment import REMOTE, Citizen, Deployment, deployment, eventually, new_phone
from tests.e2e.test_system_gateway import (
    _minutes_ago,
    phone_indicator,
    report_number,
    verdict_level,
)
from tests.factories import card

pytestmark = pytest.mark.slow

# ---- an OTLP collector, in memory ------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    kind: int


@dataclass
class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """What the processes export over OTLP/gRPC, kept as a list."""

    spans: list[Span] = field(default_factory=list)

    async def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            service = attributes.get("service.name", "")
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    self.spans.append(
                        Span(
                            service,
                            span.name,
                            span.trace_id.hex(),
                            span.span_id.hex(),
                            span.parent_span_id.hex(),
                            span.kind,
                        )
                    )
        return trace_service_pb2.ExportTraceServiceResponse()


# ---- a Prometheus server -----------------------------------------------------------------------


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        setup = subprocess.run(
            ["bash", str(harness.ROOT / "scripts" / "prometheus_setup.sh")],
            capture_output=True,
            text=True,
            check=False,
        )
        found = shutil.which("prometheus")
        if found is None:
            pytest.skip(f"Prometheus unavailable: {setup.stderr.strip() or 'not installed'}")
    return found


class Prometheus:
    """A real Prometheus scraping the given /metrics addresses every second."""

    def __init__(self, binary: str, folder: Path, targets: dict[str, str]) -> None:
        self.address = f"127.0.0.1:{harness.free_port()}"
        config = folder / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
                    "scrape_configs": [
                        {
                            "job_name": name,
                            "static_configs": [{"targets": [addr], "labels": {"process": name}}],
                        }
                        for name, addr in targets.items()
                    ],
                }
            )
        )
        self.log = (folder / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={folder / 'tsdb'}",
                f"--web.listen-address={self.address}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def api(self, path: str, **params: str) -> Any:
        url = f"http://{self.address}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=5) as reply:
            body = json.load(reply)
        assert body["status"] == "success", body
        return body["data"]

    async def value(self, query: str) -> float:
        """A PromQL query's scalar value now: the sum of its vector, 0 when empty."""
        try:
            data = await asyncio.to_thread(self.api, "query", query=query)
        except OSError:
            return 0.0  # not up yet
        return sum(float(sample["value"][1]) for sample in data["result"])

    async def label_sets(self) -> list[dict[str, str]]:
        data = await asyncio.to_thread(self.api, "series", **{"match[]": '{__name__=~".+"}'})
        return list(data)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# ---- the suite ----------------------------------------------------------------------------------


@dataclass
class Observed:
    suite: Deployment
    prometheus: Prometheus
    collector: Collector


@pytest.fixture(scope="module", params=BACKENDS)
async def observed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Observed]:
    if REMOTE:
        pytest.skip("a remote deployment's metrics ports and trace exporter are not set here")
    binary = prometheus_binary()
    folder: Path = tmp_path_factory.mktemp(f"observability-{request.param}")
    collector = Collector()
    otlp = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, otlp)  # type: ignore[no-untyped-call]
    otlp_port = otlp.add_insecure_port("127.0.0.1:0")
    await otlp.start()
    tracing = {
        "ANTIFRAUD_TRACE_EXPORTER": "otlp",
        "ANTIFRAUD_TRACE_OTLP_ENDPOINT": f"127.0.0.1:{otlp_port}",
        "ANTIFRAUD_TRACE_SAMPLE_RATIO": "1",
        "OTEL_BSP_SCHEDULE_DELAY": "200",  # spans leave each process within 0.2 s
    }
    try:
        async with deployment(request.param, folder, extra_env=tracing, replicas={}) as suite:
            assert suite.suite is not None
            prometheus = Prometheus(binary, folder, suite.suite.metrics_addrs)
            try:
                yield Observed(suite, prometheus, collector)
            finally:
                prometheus.stop()
    finally:
        await otlp.stop(None)


# ---- the scenario -------------------------------------------------------------------------------


@dataclass
class Scenario:
    reporters: list[Citizen]
    callee: str
    fraudster: str
    payee: str
    review_request_id: str
    before: dict[str, float]

    def personal_values(self) -> Iterator[str]:
        yield self.callee
        yield self.callee.removeprefix("+86")
        for citizen in self.reporters:
            yield citizen.phone
            yield citizen.phone.removeprefix("+86")
            yield citizen.id_number
            yield citizen.name
        yield self.fraudster
        yield self.fraudster.removeprefix("+86")
        yield self.payee


#: What the scenario must move, as PromQL.
MOVED = {
    "reports through the gateway": 'sum(antifraud_rpcs_handled_total{service="gateway",'
    'method="/antifraud.report.v1.ReportService/SubmitReport",code="OK"})',
    "reports accepted": 'sum(antifraud_rpcs_handled_total{service="report",'
    'method="/antifraud.report.v1.ReportService/SubmitReport",code="OK"})',
    "cases filed": 'sum(antifraud_rpcs_handled_total{service="report",'
    'method="/antifraud.report.v1.ReportService/FileCase",code="OK"})',
    "report latency observed": 'sum(antifraud_rpc_duration_seconds_count{service="report",'
    'method="/antifraud.report.v1.ReportService/SubmitReport"})',
    "promotions relayed": 'sum(antifraud_outbox_delivered_total{service="report"})',
    "stop-payment orders at a bank": 'sum(antifraud_partner_calls_total{partner=~"bank-.+",'
    'method="BankService/StopPayment",code="OK"})',
    "case filed -> bank acknowledged": "sum(antifraud_sli_case_to_stop_payment_ack_seconds_count)",
    "fan-outs started": "sum(antifraud_fanouts_started_total)",
    "contacts warned": 'sum(antifraud_fanout_targets_processed_total{outcome="warned"})',
    "SMS sent to a carrier": 'sum(antifraud_deliveries_total{channel=~"sms|flash_sms",'
    'outcome="sent"})',
    "SMS calls to carriers": 'sum(antifraud_partner_calls_total{partner=~"carrier-.+",'
    'method="CarrierService/SendSms",code="OK"})',
    "high risk -> first warning delivered": (
        "sum(antifraud_sli_high_to_first_warning_delivered_seconds_count)"
    ),
}


async def _review(
    suite: Deployment, analyst: tuple[tuple[str, str], ...], report: str, request_id: str
) -> None:
    await suite.report.ReviewReport(
        rp.ReviewReportRequest(
            request_id=request_id,
            name=report,
            decision=rp.REVIEW_DECISION_CONFIRM,
            reason="confirmed by the 96110 call-back",
        ),
        metadata=analyst,
    )


@pytest.fixture(scope="module")
async def scenario(observed: Observed) -> Scenario:
    suite, prometheus = observed.suite, observed.prometheus

    # Every process is scraped before anything happens: "before" is a real reading.
    async def all_up() -> bool:
        return await prometheus.value("count(up == 1)") == len(observed.suite.suite.metrics_addrs)  # type: ignore[union-attr]

    await eventually(all_up, timeout=30)
    before = {what: await prometheus.value(query) for what, query in MOVED.items()}

    reporters = [await suite.register() for _ in range(3)]
    # The callee needs no account: a contact is warned by SMS to the number the call reached.
    callee, victim, fraudster = new_phone(), reporters[0], new_phone()
    who = reporters[1]
    carrier = await suite.key(gw.ROLE_CARRIER, "carrier-cmcc")

    # A call from the number, reported by the carrier in bulk before the number is listed
    # (not screened live, and not after it is listed: either would warn the callee at once,
    # as a late contact, and leave the fan-out nobody new to warn).
    recorded = await suite.warning.RecordContactEvents(
        wn.RecordContactEventsRequest(
            events=[
                wn.ContactEvent(
                    caller=fraudster,
                    callee=callee,
                    time=_minutes_ago(5),
                    kind=wn.CONTACT_KIND_CALL,
                    caller_level=c.RISK_LEVEL_MEDIUM,
                )
            ]
        ),
        metadata=carrier,
    )
    assert recorded.accepted_count == 1
    reports = [await report_number(suite, reporter, fraudster) for reporter in reporters]

    async def corroborated() -> bool:
        return await verdict_level(suite, who, fraudster) == c.RISK_LEVEL_MEDIUM

    await eventually(corroborated)
    # The analyst's confirmation tips the number to HIGH: its contacts are warned.
    analyst = await suite.key(gw.ROLE_ANALYST, "analyst-obs")
    review_request_id = str(uuid.uuid4())
    await _review(suite, analyst, reports[0].name, review_request_id)

    async def high() -> bool:
        return await verdict_level(suite, who, fraudster) == c.RISK_LEVEL_HIGH

    await eventually(high)
    payee = card(random.Random())
    await suite.report.FileCase(
        rp.FileCaseRequest(
            request_id=str(uuid.uuid4()),
            case=rp.Case(
                description="对方冒充公安说我涉嫌洗钱，让我把钱转到安全账户",
                category=c.FRAUD_CATEGORY_IMPERSONATING_OFFICIALS,
                amount_lost=c.Money(currency_code="CNY", units=20_000),
                incident_time=_minutes_ago(30),
                payees=[
                    rp.Payee(account=c.Indicator(kind=c.INDICATOR_KIND_BANK_ACCOUNT, value=payee))
                ],
            ),
        ),
        metadata=victim.metadata,
    )
    assert phone_indicator(fraudster).value == fraudster
    return Scenario(reporters, callee, fraudster, payee, review_request_id, before)


# ---- the tests ----------------------------------------------------------------------------------


async def test_prometheus_shows_the_report_and_the_case_move_their_series(
    observed: Observed, scenario: Scenario
) -> None:
    prometheus = observed.prometheus
    for what, query in MOVED.items():

        async def moved(q: str = query, w: str = what) -> bool:
            return await prometheus.value(q) > scenario.before[w]

        try:
            await eventually(moved, timeout=30)
        except AssertionError:
            raise AssertionError(f"{what}: {query} did not move") from None
    # Reports wait in no outbox for long, and the risk index follows its feed.
    assert await prometheus.value("max(antifraud_outbox_oldest_event_age_seconds)") < 60
    assert await prometheus.value("max(antifraud_risk_feed_lag_seconds)") < 5
    assert await prometheus.value("sum(antifraud_risk_index_indicators)") > 0


def _trace_of(spans: list[Span], trace_id: str) -> list[Span]:
    return [s for s in spans if s.trace_id == trace_id]


async def test_one_trace_covers_the_report_its_promotion_the_fanout_and_the_sms(
    observed: Observed, scenario: Scenario
) -> None:
    collector = observed.collector
    review = "antifraud.report.v1.ReportService/ReviewReport"

    def root() -> Span | None:
        return next(
            (s for s in collector.spans if s.service == "antifraud-gateway" and s.name == review),
            None,
        )

    # The hops the trace must show, by process and span name.
    hops = [
        ("antifraud-gateway", review),
        ("antifraud-report", review),
        ("antifraud-report", "outbox risk.sync_indicator"),
        ("antifraud-risk", "antifraud.risk.v1.RiskService/UpsertIndicator"),
        ("antifraud-warning", "fanout chunk"),
        ("antifraud-warning", "outbox sms_bulk"),  # a fan-out's SMS
        ("antifraud-warning", "CarrierService/SendSms"),
        ("antifraud-partners", "antifraud.partner.v1.CarrierService/SendSms"),
    ]

    async def whole() -> list[Span] | None:
        found = root()
        if found is None:
            return None
        trace = _trace_of(collector.spans, found.trace_id)
        shown = {(s.service, s.name) for s in trace}
        return trace if all(hop in shown for hop in hops) else None

    try:
        trace = await eventually(whole, timeout=30)
    except AssertionError:
        found = root()
        shown = (
            sorted({(s.service, s.name) for s in _trace_of(collector.spans, found.trace_id)})
            if found
            else []
        )
        raise AssertionError(f"the trace shows only {shown}") from None
    # One tree: every span but the gateway's hangs from another span of the same trace.
    ids = {s.span_id for s in trace}
    roots = [s for s in trace if s.parent_id not in ids]
    assert [(r.service, r.name) for r in roots] == [("antifraud-gateway", review)]
    # The carrier's span descends from the fan-out, which descends from the report.
    by_id = {s.span_id: s for s in trace}

    def ancestry(span: Span) -> list[str]:
        names = []
        while span.parent_id in by_id:
            span = by_id[span.parent_id]
            names.append(f"{span.service}:{span.name}")
        return names

    carrier = next(s for s in trace if s.service == "antifraud-partners")
    chain = ancestry(carrier)
    ancestors = [f"{service}:{name}" for service, name in hops[:-1]]
    for hop in ancestors:
        assert hop in chain, f"{hop} is not an ancestor of the carrier's span: {chain}"


async def test_log_lines_carry_the_trace_and_span_ids(
    observed: Observed, scenario: Scenario
) -> None:
    suite = observed.suite.suite
    assert suite is not None
    traced = 0
    for name in ("gateway", "report", "risk", "warning"):
        for line in suite.log_text(name).splitlines():
            record = json.loads(line) if line.startswith("{") else {}
            if record.get("event") == "rpc" and "trace_id" in record:
                assert re.fullmatch(r"[0-9a-f]{32}", record["trace_id"])
                assert re.fullmatch(r"[0-9a-f]{16}", record["span_id"])
                traced += 1
        assert traced, f"no rpc log line of {name} carries a trace id"


#: Phone numbers (E.164 or national), resident ID numbers, card numbers, Chinese names.
PERSONAL = re.compile(r"\+?86\d{11}|\b1[3-9]\d{9}\b|\b\d{17}[\dXx]\b|\b\d{16,19}\b|[\u4e00-\u9fff]")


async def test_no_label_of_any_series_holds_a_personal_value(
    observed: Observed, scenario: Scenario
) -> None:
    # After the scenario has moved everything (the first test waits for that).
    await test_prometheus_shows_the_report_and_the_case_move_their_series(observed, scenario)
    label_sets = await observed.prometheus.label_sets()
    assert len(label_sets) > 100
    values = [v for v in scenario.personal_values() if v]
    for labels in label_sets:
        for key, value in labels.items():
            assert not PERSONAL.search(value), f"{labels['__name__']} {key}={value!r}"
            for personal in values:
                assert personal not in value, f"{labels['__name__']} {key} holds a personal value"
