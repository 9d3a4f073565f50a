"""Hostile input to every RPC of every server: a deliberate status code, never
UNKNOWN or INTERNAL, and the server goes on serving.

Messages are generated from the request descriptors, so a new RPC is covered
the day it is added:

- hostile messages: empty messages, huge strings, NUL bytes and control
  characters, unknown enum numbers, extreme numbers, long repeated fields, and
  bytes that are not a message at all;
- boundary values: every numeric, Timestamp and Duration field reachable in a
  request set in turn to the minimum and maximum of its type (and the values
  storage cannot hold: a time past 32 bits, year 2200, nanos out of range), and
  every indicator to a URL whose canonical form is longer than any column. Each
  goes into a valid request of its method where one is known (``BASES``), so the
  value reaches storage and arithmetic rather than stopping at another field.
  Afterwards the server is restarted on the same database: what it accepted must
  load (on SQLite and PostgreSQL).

Partner simulators are servers too: each one is swept as well.
"""

from __future__ import annotations

import copy
import math
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from gateway.bootstrap import GatewayComponent
from services import registry
from services.api.antifraud.common.v1 import common_pb2 as c
from services.api.antifraud.identity.v1 import identity_pb2 as idp
from services.api.antifraud.partner.v1 import bank_pb2, carrier_pb2, simulator_pb2
from services.api.antifraud.report.v1 import knowledge_pb2 as kp
from services.api.antifraud.report.v1 import report_pb2 as rp
from services.api.antifraud.risk.v1 import risk_pb2 as risk
from services.api.antifraud.warning.v1 import warning_pb2 as wp
from services.common.config import env_key
from services.common.health_client import is_serving
from services.common.principals import Role
from services.common.server import Component, RunningServer
from services.partners.directory import SIMULATORS
from services.partners.domain.cards import luhn_check_digit
from services.partners.fleet import PartnersComponent
from tests import harness
from tests.conftest import BACKENDS
from tests.harness import serving

SERVERS = [n for n, entry in registry.REGISTRY.items() if entry.role != "tool" and entry.grpc]
FORBIDDEN = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
HUGE = "A" * 200_000
#: 240 Chinese characters in a path: 253 typed, about 2,170 once percent-escaped, longer
#: than every column an indicator goes to.
LONG_URL = "evil.example/" + "中" * 240
SERVICES_WITH_DATABASES = ("risk", "report", "warning", "identity", "gateway")


def _fill(msg: Any, desc: Descriptor, mode: str, depth: int = 0) -> None:
    for field in desc.fields:
        if field.containing_oneof is not None and field.containing_oneof.fields[0] is not field:
            continue  # one member per oneof
        repeated = field.is_repeated
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            assert field.message_type is not None
            if field.message_type.GetOptions().map_entry or depth > 2:
                continue
            if field.message_type.full_name.startswith("google.protobuf."):
                if field.message_type.name == "Timestamp" and not repeated:
                    getattr(msg, field.name).seconds = -(2**62) if mode == "extreme" else 2**40
                continue
            count = 2 if repeated else 1
            for _ in range(count):
                child = getattr(msg, field.name).add() if repeated else getattr(msg, field.name)
                _fill(child, field.message_type, mode, depth + 1)
            continue
        value = _value(field, mode)
        if value is None:
            continue
        if repeated:
            getattr(msg, field.name).extend([value] * (1500 if mode == "long" else 2))
        else:
            setattr(msg, field.name, value)


def _value(field: FieldDescriptor, mode: str) -> Any:
    t = field.type
    if t == FieldDescriptor.TYPE_STRING:
        return {
            "huge": HUGE,
            "nul": "a\x00b\x01\u202e",
            "long": "x" * 300,
            "extreme": "\ud7ff" * 50,
        }.get(mode, "x")
    if t == FieldDescriptor.TYPE_BYTES:
        return b"\x00\xff" * (100_000 if mode == "huge" else 4)
    if t == FieldDescriptor.TYPE_ENUM:
        return 9999 if mode in ("extreme", "nul") else 1
    if t == FieldDescriptor.TYPE_BOOL:
        return True
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return float("nan") if mode == "extreme" else -1.0
    if t in (
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_SFIXED64,
    ):
        return -(2**63) if mode == "extreme" else -1
    if t in (
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SFIXED32,
    ):
        return -(2**31) if mode == "extreme" else -1
    if t in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return 2**64 - 1
    if t in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return 2**32 - 1
    return None


def hostile_payloads(desc: Descriptor) -> Iterator[tuple[str, bytes]]:
    cls = message_factory.GetMessageClass(desc)
    yield "empty", b""
    yield "garbage", b"\xff\xff\xff\xff\x0f\x00"
    yield "wrong-wire-type", b"\x0d\x01\x02\x03\x04" * 3
    for mode in ("plain", "huge", "nul", "long", "extreme"):
        msg = cls()
        _fill(msg, desc, mode)
        yield mode, msg.SerializeToString()


# -------------------------------------------------------------------------- boundary values

_INT64 = (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64)
_INT32 = (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32)
_UINT64 = (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64)
_UINT32 = (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32)
_FLOATS = (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)


def _scalar_bounds(field: FieldDescriptor) -> list[Any]:
    t = field.type
    if t in _INT64:
        return [-(2**63), -1, 0, 1, 2**31, 2**53 + 1, 2**63 - 1]
    if t in _INT32:
        return [-(2**31), -1, 0, 1, 2**31 - 1]
    if t in _UINT64:
        return [0, 2**63, 2**64 - 1]
    if t in _UINT32:
        return [0, 2**31, 2**32 - 1]
    if t in _FLOATS:
        big = 1e308 if t == FieldDescriptor.TYPE_DOUBLE else 3.4e38
        return [math.nan, math.inf, -math.inf, -big, big, -0.0, 5e-324, 1.0]
    return []


def _timestamp_bounds() -> list[tuple[int, int]]:
    soon = int((datetime.now(UTC) + timedelta(days=1)).timestamp())
    return [
        (-62_135_596_800, 0),  # 0001-01-01, Timestamp's minimum
        (253_402_300_799, 999_999_999),  # 9999-12-31, its maximum
        (-(2**63), 0),
        (2**63 - 1, 999_999_999),
        (-1, 0),
        (0, 0),
        (2**31 - 1, 0),
        (2**32, 0),  # past what the risk index packs
        (7_258_118_400, 0),  # 2200-01-01
        (soon, -1),
        (soon, 10**9),
        (soon, 999_999_999),
    ]


_DURATION_BOUNDS = [
    (315_576_000_000, 999_999_999),  # Duration's maximum (10,000 years)
    (-315_576_000_000, -999_999_999),
    (2**62, 0),
    (-(2**62), 0),
    (2**63 - 1, 999_999_999),
    (-(2**63), -999_999_999),
    (0, 0),
    (600, -1),
    (600, 10**9),
]

Path_ = tuple[FieldDescriptor, ...]


def _paths(desc: Descriptor, depth: int = 0) -> Iterator[Path_]:
    """Every numeric, Timestamp, Duration and Indicator field reachable from ``desc``."""
    for field in desc.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            sub = field.message_type
            assert sub is not None
            if sub.GetOptions().map_entry:
                continue
            if sub.full_name in (
                "google.protobuf.Timestamp",
                "google.protobuf.Duration",
                "antifraud.common.v1.Indicator",
            ):
                yield (field,)
            elif depth < 4 and not sub.full_name.startswith("google."):
                for rest in _paths(sub, depth + 1):
                    yield (field, *rest)
        elif _scalar_bounds(field):
            yield (field,)


def _at(msg: Any, path: Path_) -> Any:
    """The message holding the last field of ``path``, made present (first repeated element)."""
    for field in path[:-1]:
        holder = getattr(msg, field.name)
        if not field.is_repeated:
            msg = holder
        elif len(holder):
            msg = holder[0]
        else:
            msg = holder.add()
    return msg


def _set(msg: Any, field: FieldDescriptor, value: Any) -> None:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        name = field.message_type.full_name  # type: ignore[union-attr]
        target = getattr(msg, field.name)
        if field.is_repeated:
            del target[:]
            target = target.add()
        if name == "antifraud.common.v1.Indicator":
            target.kind, target.value = value
        else:
            target.seconds, target.nanos = value
        return
    if field.is_repeated:
        holder = getattr(msg, field.name)
        del holder[:]
        holder.append(value)
    else:
        setattr(msg, field.name, value)


def boundary_messages(base: Message) -> Iterator[tuple[str, bytes]]:
    """The base with one field at a time set to each of its boundary values."""
    for path in _paths(base.DESCRIPTOR):  # type: ignore[arg-type]
        last = path[-1]
        if last.type == FieldDescriptor.TYPE_MESSAGE:
            kind = last.message_type.full_name  # type: ignore[union-attr]
            values: list[Any] = (
                _timestamp_bounds()
                if kind == "google.protobuf.Timestamp"
                else _DURATION_BOUNDS
                if kind == "google.protobuf.Duration"
                else [(c.INDICATOR_KIND_URL, LONG_URL)]
            )
        else:
            values = _scalar_bounds(last)
        for value in values:
            msg = copy.deepcopy(base)
            _set(_at(msg, path), last, value)
            label = ".".join(f.name for f in path)
            yield f"{label}={value!r}"[:120], msg.SerializeToString()


# -------------------------------------------------------------------------- valid requests


def _rid() -> str:
    return str(uuid.uuid4())


def _ts(delta: timedelta) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(datetime.now(UTC) + delta)
    return stamp


def _card() -> str:
    body = "622202020011223344"
    return body + str(luhn_check_digit(body))


def _money(units: int) -> c.Money:
    return c.Money(currency_code="CNY", units=units)


def _assertion() -> risk.Assertion:
    return risk.Assertion(
        source_type=risk.SOURCE_TYPE_ANALYST,
        source_id="analyst-1",
        level=c.RISK_LEVEL_HIGH,
        reason="confirmed on review",
        expire_time=_ts(timedelta(days=30)),
        reporter_count=1,
    )


def _indicator(value: str = "evil.example/pay") -> c.Indicator:
    return c.Indicator(kind=c.INDICATOR_KIND_URL, value=value)


#: A valid request per method whose fields reach storage or arithmetic; the others are swept
#: from an empty request. Made afresh for each use (request ids, times relative to now).
BASES: dict[str, Callable[[], Message]] = {
    "antifraud.risk.v1.RiskService.UpsertIndicator": lambda: risk.UpsertIndicatorRequest(
        request_id=_rid(), indicator=_indicator(), assertion=_assertion()
    ),
    "antifraud.risk.v1.RiskService.ImportIndicators": lambda: risk.ImportIndicatorsRequest(
        indicator=_indicator("import.example/x"), assertion=_assertion()
    ),
    "antifraud.risk.v1.RiskService.AddIndicatorSighting": lambda: risk.AddIndicatorSightingRequest(
        request_id=_rid(),
        indicator=_indicator(),
        source_type=risk.SOURCE_TYPE_BANK,
        reporter_ref="bank-1",
    ),
    "antifraud.report.v1.ReportService.SubmitReport": lambda: rp.SubmitReportRequest(
        request_id=_rid(),
        report=rp.Report(
            kind=rp.REPORT_KIND_FRAUD_CALL,
            indicators=[c.Indicator(kind=c.INDICATOR_KIND_PHONE_NUMBER, value="13800138000")],
            description="called as police",
            category=c.FRAUD_CATEGORY_IMPERSONATING_OFFICIALS,
            incident_time=_ts(-timedelta(hours=1)),
            evidence=rp.Evidence(call_time=_ts(-timedelta(hours=1)), amount_requested=_money(5)),
        ),
    ),
    "antifraud.report.v1.ReportService.FileCase": lambda: rp.FileCaseRequest(
        request_id=_rid(),
        case=rp.Case(
            description="moved savings to a safe account",
            category=c.FRAUD_CATEGORY_IMPERSONATING_OFFICIALS,
            amount_lost=_money(52_000),
            incident_time=_ts(-timedelta(hours=2)),
            payees=[
                rp.Payee(
                    account=c.Indicator(kind=c.INDICATOR_KIND_BANK_ACCOUNT, value=_card()),
                    amount=_money(1000),
                )
            ],
        ),
    ),
    "antifraud.report.v1.ReportService.ListReports": lambda: rp.ListReportsRequest(
        start_time=_ts(-timedelta(days=1)), end_time=_ts(timedelta(days=1))
    ),
    "antifraud.report.v1.ReportService.ListCases": lambda: rp.ListCasesRequest(
        start_time=_ts(-timedelta(days=1)), end_time=_ts(timedelta(days=1))
    ),
    "antifraud.report.v1.ReportService.GetReportStats": lambda: rp.GetReportStatsRequest(
        start_time=_ts(-timedelta(days=1)), end_time=_ts(timedelta(days=1))
    ),
    "antifraud.report.v1.KnowledgeService.CreateNotice": lambda: kp.CreateNoticeRequest(
        request_id=_rid(),
        notice=kp.Notice(
            title="劝返通告",
            body="限期回国投案自首。",
            issuer="某市公安局",
            region="440300",
            start_time=_ts(timedelta(0)),
            end_time=_ts(timedelta(days=30)),
        ),
    ),
    "antifraud.report.v1.KnowledgeService.AnnounceCall": lambda: kp.AnnounceCallRequest(
        request_id=_rid(),
        call=kp.AnnouncedCall(caller_number="96110", reason="劝阻", station_name="反诈中心"),
        callee_phone_number="13912345678",
        ttl=Duration(seconds=600),
    ),
    "antifraud.report.v1.KnowledgeService.GetFraudTrends": lambda: kp.GetFraudTrendsRequest(
        max_categories=3
    ),
    "antifraud.warning.v1.WarningService.DispatchWarning": lambda: wp.DispatchWarningRequest(
        request_id=_rid(),
        recipient=wp.RecipientRef(phone_number="13800138000"),
        level=c.RISK_LEVEL_LOW,
        reason=wp.WarningReason(indicator=_indicator()),
    ),
    "antifraud.warning.v1.WarningService.RecordContactEvents": lambda: (
        wp.RecordContactEventsRequest(
            events=[
                wp.ContactEvent(
                    caller="13800138000",
                    callee="13900139000",
                    kind=wp.CONTACT_KIND_CALL,
                    time=_ts(-timedelta(minutes=5)),
                )
            ]
        )
    ),
    "antifraud.warning.v1.WarningService.StreamContactEvents": lambda: (
        wp.StreamContactEventsRequest(
            events=[
                wp.ContactEvent(
                    caller="13800138000",
                    callee="13900139000",
                    kind=wp.CONTACT_KIND_SMS,
                    time=_ts(-timedelta(minutes=5)),
                )
            ]
        )
    ),
    "antifraud.warning.v1.WarningService.CreateBankOrder": lambda: wp.CreateBankOrderRequest(
        request_id=_rid(),
        order_type=wp.BANK_ORDER_TYPE_STOP_PAYMENT,
        account=c.Indicator(kind=c.INDICATOR_KIND_BANK_ACCOUNT, value=_card()),
        case_id="case-1",
        amount=_money(1000),
        reason="filed case",
    ),
    "antifraud.warning.v1.WarningService.GetWarningStats": lambda: wp.GetWarningStatsRequest(
        start_time=_ts(-timedelta(days=1))
    ),
    "antifraud.warning.v1.WarningService.UpsertRecipient": lambda: wp.UpsertRecipientRequest(
        recipient=wp.Recipient(user_id="u-hostile", phone_number="13800138000")
    ),
    "antifraud.identity.v1.IdentityService.ListAuditEvents": lambda: idp.ListAuditEventsRequest(
        page_size=10
    ),
    "antifraud.partner.v1.SimulatorControlService.SeedSubscribers": lambda: (
        simulator_pb2.SeedSubscribersRequest(
            subscribers=[
                carrier_pb2.Subscriber(
                    resident_id_number="11010519491231002X",
                    lines=[
                        carrier_pb2.SubscriberLine(
                            phone_number="13800138000",
                            activate_time=_ts(-timedelta(days=400)),
                            linked_accounts=[
                                carrier_pb2.SeededLinkedAccount(
                                    platform=1,  # type: ignore[arg-type]
                                    account_name="wx-1",
                                    register_time=_ts(-timedelta(days=300)),
                                )
                            ],
                        )
                    ],
                )
            ]
        )
    ),
    "antifraud.partner.v1.SimulatorControlService.SetBehavior": lambda: (
        simulator_pb2.SetBehaviorRequest(behavior=simulator_pb2.Behavior(latency_ms=0))
    ),
    "antifraud.partner.v1.BankService.StopPayment": lambda: bank_pb2.StopPaymentRequest(
        idempotency_key=_rid(),
        account=c.Indicator(kind=c.INDICATOR_KIND_BANK_ACCOUNT, value=_card()),
        case_reference="case-1",
        amount=_money(1000),
        reason="filed case",
        requesting_authority="国家反诈中心",
    ),
    "antifraud.partner.v1.BankService.FreezeAccount": lambda: bank_pb2.FreezeAccountRequest(
        idempotency_key=_rid(),
        account=c.Indicator(kind=c.INDICATOR_KIND_BANK_ACCOUNT, value=_card()),
        case_reference="case-1",
        amount=_money(1000),
        reason="filed case",
        requesting_authority="国家反诈中心",
    ),
}
#: What a valid base may get besides OK: peers are at a closed port, some rules need state.
BASE_CODES = {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}


def _base(method: MethodDescriptor) -> Message:
    make = BASES.get(method.full_name)
    if make is not None:
        return make()
    return message_factory.GetMessageClass(method.input_type)()


# -------------------------------------------------------------------------- calling


async def _call(
    channel: grpc.aio.Channel,
    method: MethodDescriptor,
    body: bytes,
    metadata: tuple[tuple[str, str], ...] = (),
) -> grpc.StatusCode:
    path = f"/{method.containing_service.full_name}/{method.name}"
    kwargs: dict[str, Any] = {"request_serializer": None, "response_deserializer": None}
    try:
        if method.client_streaming:

            async def one() -> AsyncIterator[bytes]:
                yield body

            if method.server_streaming:
                call = channel.stream_stream(path, **kwargs)(one(), timeout=2, metadata=metadata)
                async for _ in call:
                    pass
            else:
                await channel.stream_unary(path, **kwargs)(one(), timeout=5, metadata=metadata)
        elif method.server_streaming:
            call_us = channel.unary_stream(path, **kwargs)(body, timeout=1, metadata=metadata)
            async for _ in call_us:
                pass
        else:
            await channel.unary_unary(path, **kwargs)(body, timeout=5, metadata=metadata)
    except grpc.aio.AioRpcError as err:
        return err.code()
    return grpc.StatusCode.OK


def _methods(names: list[str]) -> list[MethodDescriptor]:
    pool = descriptor_pool.Default()
    found: list[MethodDescriptor] = []
    for name in names:
        found.extend(pool.FindServiceByName(name).methods)
    return found


@dataclass(frozen=True)
class Target:
    """One server to sweep, and how to call it."""

    address: str
    names: list[str]
    metadata: tuple[tuple[str, str], ...] = ()
    #: Codes a valid base may get here besides BASE_CODES.
    also: frozenset[grpc.StatusCode] = frozenset()


#: A simulator's own control service serves only its kind: seeding a bank with subscribers
#: is refused as a precondition.
_SIMULATOR_CODES = frozenset({grpc.StatusCode.FAILED_PRECONDITION})
#: The gateway's own services: what needs a citizen or a peer is refused for an admin.
_GATEWAY_CODES = frozenset({grpc.StatusCode.PERMISSION_DENIED})
#: What the gateway passes through needs a key; what its policy does not list is not there.
_PASSED_CODES = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNIMPLEMENTED})


async def _targets(component: Component, running: RunningServer) -> list[Target]:
    """Every server the component runs (itself and its simulators), each with what it needs:
    the gateway's own services are called with an admin key, the services it passes through
    without one (with a key they would only meet the closed peers)."""
    if isinstance(component, GatewayComponent):
        issued = await component.keys.create(Role.ADMIN, "hostile-input")
        auth = (("authorization", f"Bearer {issued.token}"),)
        own = [n for n in running.names if n.startswith("antifraud.gateway.")]
        passed = [n for n in running.names if n not in own]
        return [
            Target(running.address, own, auth, _GATEWAY_CODES),
            Target(running.address, passed, (), _PASSED_CODES),
        ]
    found = [Target(running.address, running.names)]
    if isinstance(component, PartnersComponent):
        for sim in component.simulators.values():
            names = [b.name for b in sim.bindings()]
            found.append(Target(sim.address, names, also=_SIMULATOR_CODES))
    return found


def _isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ANTIFRAUD_DATA_DIR", str(tmp_path))
    # Peers point at a closed port: calls that get past validation meet UNAVAILABLE, deliberately.
    for peer in ("RISK", "REPORT", "WARNING", "IDENTITY", "PARTNERS"):
        monkeypatch.setenv(f"ANTIFRAUD_{peer}_TARGET", "127.0.0.1:1")
    for sim in SIMULATORS:  # simulators on free ports, answering at once
        monkeypatch.setenv(f"ANTIFRAUD_{env_key(sim)}_ADDR", "127.0.0.1:0")
    monkeypatch.setenv("ANTIFRAUD_PARTNERS_LATENCY_MS", "0")
    monkeypatch.setenv("ANTIFRAUD_PARTNERS_JITTER_MS", "0")
    monkeypatch.setenv("ANTIFRAUD_GATEWAY_RATE_PER_SECOND", "1000000")
    monkeypatch.setenv("ANTIFRAUD_GATEWAY_RATE_BURST", "1000000")
    # Pass-through methods are called without a key on purpose: not throttled for it here.
    monkeypatch.setenv("ANTIFRAUD_GATEWAY_AUTH_FAILURES_PER_SECOND", "1000000")
    monkeypatch.setenv("ANTIFRAUD_GATEWAY_AUTH_FAILURE_BURST", "1000000")


@pytest.mark.parametrize("name", SERVERS)
async def test_hostile_input_gets_deliberate_codes(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On one database (SQLite): what this sweep exercises is the edge and the runtime
    (parsing, sizes, unknown enum numbers, control characters), which are the same code
    whatever the database; nearly every message here is refused before a transaction
    opens. What reaches storage is swept on both databases by the boundary test below,
    whose values go into valid requests precisely so that they do."""
    _isolate(monkeypatch, tmp_path)
    component = registry.build(name)
    async with serving(component) as running:
        bad: list[str] = []
        for target in await _targets(component, running):
            methods = _methods(target.names)
            assert methods, f"{name} serves no methods at {target.address}"
            async with harness.channel(target.address) as channel:
                for method in methods:
                    for mode, body in hostile_payloads(method.input_type):
                        code = await _call(channel, method, body, target.metadata)
                        if code in FORBIDDEN:
                            bad.append(f"{method.full_name} [{mode}] -> {code.name}")
            assert await is_serving(target.address)
        assert not bad, "\n".join(bad)


#: Each server on each backend, except a server without a database on PostgreSQL (the
#: partner simulators keep their state in memory: that run would repeat the SQLite one).
BOUNDARY_CASES = [
    pytest.param(backend.values[0], name, marks=backend.marks, id=f"{backend.id}-{name}")
    for backend in BACKENDS
    for name in SERVERS
    if backend.id == "sqlite" or name in SERVICES_WITH_DATABASES
]


@pytest.fixture
async def backend(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[str]:
    """Every service's database on SQLite (in the data dir) or in fresh PostgreSQL schemas."""
    if request.param == "sqlite":
        yield "sqlite"
        return
    schemas = [harness.new_schema(service) for service in SERVICES_WITH_DATABASES]
    monkeypatch.setenv("ANTIFRAUD_DATABASE_URL", harness.PG_URL)
    for service, schema in zip(SERVICES_WITH_DATABASES, schemas, strict=True):
        monkeypatch.setenv(f"ANTIFRAUD_{env_key(service)}_DB_SCHEMA", schema)
    yield "postgresql"
    for schema in schemas:
        await harness.drop_schema(schema)


async def _sweep_bases(target: Target) -> list[str]:
    """Each method's valid base, once; what did not get a code a valid request gets."""
    wrong: list[str] = []
    allowed = BASE_CODES | target.also
    async with harness.channel(target.address) as channel:
        for method in _methods(target.names):
            body = _base(method).SerializeToString()
            code = await _call(channel, method, body, target.metadata)
            if code in FORBIDDEN or (method.full_name in BASES and code not in allowed):
                wrong.append(f"{method.full_name} [valid base] -> {code.name}")
    return wrong


@pytest.mark.parametrize(("backend", "name"), BOUNDARY_CASES, indirect=["backend"])
async def test_boundary_values_get_deliberate_codes_and_what_is_kept_loads_again(
    name: str, backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _isolate(monkeypatch, tmp_path)
    component = registry.build(name)
    bad: list[str] = []
    async with serving(component) as running:
        for target in await _targets(component, running):
            bad += await _sweep_bases(target)
            async with harness.channel(target.address) as channel:
                for method in _methods(target.names):
                    for label, body in boundary_messages(_base(method)):
                        code = await _call(channel, method, body, target.metadata)
                        if code in FORBIDDEN:
                            bad.append(f"{method.full_name} [{label}] -> {code.name}")
            assert await is_serving(target.address), f"{target.address} stopped serving"
    assert not bad, "\n".join(bad)

    # Whatever was accepted is loaded again by a new process on the same database, and
    # valid requests still get valid answers there.
    again = registry.build(name)
    async with serving(again) as running:
        for target in await _targets(again, running):
            assert await is_serving(target.address)
            bad += await _sweep_bases(target)
    assert not bad, "\n".join(bad)
