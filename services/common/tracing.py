"""OpenTelemetry traces: one trace per request across every process, the outbox and the feed.

Off by default. ``ANTIFRAUD_TRACE_EXPORTER`` turns it on: ``otlp`` (spans to an OTLP/gRPC
collector at ``ANTIFRAUD_TRACE_OTLP_ENDPOINT``, else the SDK's own ``OTEL_EXPORTER_OTLP_*``
settings) or ``console`` (spans as JSON on standard output, for debugging).
``ANTIFRAUD_TRACE_SAMPLE_RATIO`` (0 to 1, default 1) samples new traces, which begin where
an RPC arrives without a trace context (the gateway, a partner's call). A call that comes
with one follows its caller's decision, so a trace is whole or absent; a trace not sampled
costs no span anywhere (calls made outside a recorded trace say "not sampled").

The context travels as W3C trace context (``traceparent``, ``tracestate``) in gRPC
metadata (the shared interceptors: services.common.interceptors and clients), and as a
stored ``traceparent`` where work waits in a table: outbox events, risk changes, fan-outs.
:func:`current_traceparent` gives what to store; :func:`restored` continues the trace
when the row is worked on. Every log line carries ``trace_id`` and ``span_id``
(services.common.logs). Span names and attributes are method names, topics and ids,
never personal values.

When tracing is off every function here returns at once without touching OpenTelemetry.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from services.common import config
from services.common.logs import get_logger

log = get_logger("tracing")

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
EXPORTERS = ("off", "console", "otlp")
#: Longest stored trace context: a traceparent is 55 characters.
MAX_STORED = 64

_propagator = TraceContextTextMapPropagator()
_provider: TracerProvider | None = None
_tracer: trace.Tracer | None = None
#: The share of new traces recorded (ANTIFRAUD_TRACE_SAMPLE_RATIO).
_ratio = 1.0
#: Sent with calls made outside any recorded trace: "not sampled" (flags 00). A trace that
#: is not recorded costs no span at all, here or in the callee: only a random number.
_UNSAMPLED_FLAGS = "-00"
_UNSAMPLED_HEADER = f"00-{'0' * 31}1-{'0' * 15}1{_UNSAMPLED_FLAGS}"


def enabled() -> bool:
    return _tracer is not None


def configure(service: str, processor: SpanProcessor | None = None) -> bool:
    """Set tracing up for this process from the environment; True when it is on.

    ``processor`` replaces the configured exporter (tests: an in-memory one).
    """
    global _provider, _tracer, _ratio
    exporter = config.env("TRACE_EXPORTER", "off").strip().lower() or "off"
    if exporter not in EXPORTERS:
        raise config.SettingError(
            f"{config.PREFIX}TRACE_EXPORTER", exporter, "one of " + ", ".join(EXPORTERS)
        )
    if processor is None and exporter == "off":
        return False
    ratio = config.env_float("TRACE_SAMPLE_RATIO", 1.0)
    if ratio > 1.0:
        raise config.SettingError(
            f"{config.PREFIX}TRACE_SAMPLE_RATIO", str(ratio), "a number from 0 to 1"
        )
    # A span with a parent follows the parent's decision (a trace is whole or absent); a new
    # trace is sampled by _new_trace_sampled (start_server_span), and one not sampled is not
    # made at all: the SDK's path for a span it drops costs more than the RPC's metrics.
    provider = TracerProvider(
        resource=Resource.create({"service.name": f"antifraud-{service}"}),
        sampler=ParentBased(ALWAYS_ON),
    )
    provider.add_span_processor(processor or BatchSpanProcessor(_exporter(exporter)))
    _provider, _tracer, _ratio = provider, provider.get_tracer("antifraud"), ratio
    log.info("tracing", exporter=exporter if processor is None else "custom", sample_ratio=ratio)
    return True


def _exporter(kind: str) -> Any:
    if kind == "console":
        return ConsoleSpanExporter()
    # Imported only when used: the OTLP exporter pulls in its generated protobuf code.
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    endpoint = config.env("TRACE_OTLP_ENDPOINT") or None
    return OTLPSpanExporter(endpoint=endpoint, insecure=True if endpoint else None)


def shutdown() -> None:
    """Export what is buffered and stop (at the end of a process)."""
    global _provider, _tracer
    if _provider is not None:
        _provider.shutdown()
    _provider = _tracer = None


def start_server_span(method: str, metadata: Mapping[str, Any], service: str) -> Span | None:
    """A span for an RPC being served, child of the caller's context when it sent one, and
    current for the rest of the call's task (grpc.aio runs each RPC in a task of its own)."""
    if _tracer is None:
        return None
    incoming = metadata.get(TRACEPARENT)
    if incoming is not None:
        if str(incoming).endswith(_UNSAMPLED_FLAGS):
            return None  # the caller's trace is not recorded: neither is this part of it
        parent = _propagator.extract(metadata)
    elif _new_trace_sampled():
        parent = None
    else:
        return None
    span = _tracer.start_span(
        method.lstrip("/"),
        context=parent,
        kind=SpanKind.SERVER,
        attributes={"rpc.system": "grpc", "rpc.method": method, "antifraud.service": service},
    )
    otel_context.attach(trace.set_span_in_context(span))
    return span


def _new_trace_sampled() -> bool:
    return _ratio >= 1.0 or random.random() < _ratio


def end_status(span: Span, code: grpc.StatusCode) -> None:
    """Record a call's status code on its span."""
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code is not grpc.StatusCode.OK:
        span.set_status(Status(StatusCode.ERROR, code.name))


def end_span(span: Span, code: grpc.StatusCode) -> None:
    end_status(span, code)
    span.end()


def inject(metadata: Any) -> None:
    """Put the current trace context into outgoing metadata (a grpc.aio.Metadata)."""
    if _tracer is None or TRACEPARENT in metadata:
        return
    if not trace.get_current_span().get_span_context().is_valid:
        # Nothing recorded here: the callee records nothing either, rather than start a
        # trace of its own that would lack its beginning.
        metadata[TRACEPARENT] = _UNSAMPLED_HEADER
        return
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    for key, value in carrier.items():
        if key not in metadata:
            metadata[key] = value


def current_traceparent() -> str | None:
    """The current trace context as a ``traceparent`` to store with work that waits in a
    table; None when tracing is off or nothing is being traced."""
    if _tracer is None:
        return None
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get(TRACEPARENT)


@contextlib.contextmanager
def restored(traceparent: str | None, name: str, **attributes: str | int) -> Iterator[Span | None]:
    """Continue a stored trace: a span named ``name``, child of ``traceparent``, current
    inside the block. Without a stored context (or with tracing off) nothing is traced."""
    if _tracer is None or not traceparent:
        yield None
        return
    parent = _propagator.extract({TRACEPARENT: traceparent})
    with _traced(
        _tracer.start_as_current_span(
            name,
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        )
    ) as span:
        yield span


@contextlib.contextmanager
def client_span(name: str, **attributes: str | int) -> Iterator[Span | None]:
    """A span around an outgoing call (partner calls), current inside the block, so the
    context sent with the call names it as the callee's parent. Outside any recorded
    trace (background work, an unsampled request) nothing is recorded."""
    if _tracer is None or not trace.get_current_span().get_span_context().is_valid:
        yield None
        return
    with _traced(
        _tracer.start_as_current_span(
            name,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        )
    ) as span:
        yield span


@contextlib.contextmanager
def continued(traceparent: str | None) -> Iterator[None]:
    """Work done here for a caller whose trace context was kept (a write in a group
    commit): what it stores (:func:`current_traceparent`) and the calls it makes carry that
    caller's trace. No span of its own; nothing changes when tracing is off or there is
    no context."""
    if _tracer is None or not traceparent:
        yield
        return
    token = otel_context.attach(_propagator.extract({TRACEPARENT: traceparent}))
    try:
        yield
    finally:
        otel_context.detach(token)


def current_span_context() -> SpanContext | None:
    """The recorded span the caller works in, to link work done for several callers at once
    (:func:`linked`); None when tracing is off or nothing here is recorded."""
    if _tracer is None:
        return None
    found = trace.get_current_span().get_span_context()
    return found if found.is_valid and found.trace_flags.sampled else None


@contextlib.contextmanager
def linked(
    name: str, callers: Sequence[SpanContext | None], **attributes: str | int
) -> Iterator[Span | None]:
    """Work done once for several callers (a shared look-up): a span of a trace of its own,
    current inside the block and linked to each caller's span, so that no caller's trace
    claims the others' work. Nothing is traced when no caller's trace is recorded."""
    links = [Link(found) for found in callers if found is not None]
    if _tracer is None or not links:
        yield None
        return
    with _traced(
        _tracer.start_as_current_span(
            name,
            context=otel_context.Context(),  # a root: none of the callers is its parent
            kind=SpanKind.INTERNAL,
            links=links,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        )
    ) as span:
        yield span


@contextlib.contextmanager
def _traced(current: contextlib.AbstractContextManager[Span]) -> Iterator[Span]:
    """A span that records a failure by its exception's type only: messages may hold
    personal values (an SDK default would copy them into the span)."""
    with current as span:
        try:
            yield span
        except Exception as exc:
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
