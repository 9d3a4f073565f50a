"""services.common.tracing without I/O: spans kept by the SDK's in-memory exporter."""

from __future__ import annotations

import contextvars

import grpc
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext

from services.common import logs, tracing

METHOD = "/antifraud.risk.v1.RiskService/CheckIndicator"


def in_task(work: object) -> object:
    """Run ``work`` in a context of its own, as grpc.aio runs each RPC in a task."""
    return contextvars.copy_context().run(work)  # type: ignore[arg-type]


def test_off_by_default_touches_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTIFRAUD_TRACE_EXPORTER", raising=False)
    assert not tracing.configure("risk")
    assert tracing.start_server_span(METHOD, {}, "risk") is None
    metadata = grpc.aio.Metadata()
    tracing.inject(metadata)
    assert "traceparent" not in metadata
    assert tracing.current_traceparent() is None


def test_a_stored_context_continues_the_trace_it_was_written_in(
    spans: InMemorySpanExporter,
) -> None:
    def serve() -> str | None:
        span = tracing.start_server_span(METHOD, {}, "risk")
        assert span is not None
        stored = tracing.current_traceparent()
        tracing.end_span(span, grpc.StatusCode.OK)
        return stored

    stored = in_task(serve)
    assert isinstance(stored, str)

    def relay() -> None:
        with tracing.restored(stored, "outbox sms"):
            metadata = grpc.aio.Metadata()
            tracing.inject(metadata)
            assert str(metadata["traceparent"]).split("-")[1] == stored.split("-")[1]

    in_task(relay)
    server, consumer = spans.get_finished_spans()
    assert consumer.name == "outbox sms"
    assert consumer.context.trace_id == server.context.trace_id
    assert consumer.parent is not None
    assert consumer.parent.span_id == server.context.span_id


def test_a_call_that_comes_traced_is_a_child_and_a_failure_keeps_no_message(
    spans: InMemorySpanExporter,
) -> None:
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    def serve() -> None:
        span = tracing.start_server_span(METHOD, {"traceparent": parent}, "risk")
        assert span is not None
        with pytest.raises(ValueError), tracing.restored(parent, "outbox risk.sync"):
            raise ValueError("+8613800138000 is not reachable")
        tracing.end_span(span, grpc.StatusCode.NOT_FOUND)

    in_task(serve)
    failed, server = spans.get_finished_spans()
    assert format(server.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert server.status.description == "NOT_FOUND"
    assert failed.status.description == "ValueError"
    assert not failed.events  # no exception event: its message could hold a phone number


def test_an_unsampled_trace_costs_no_span_and_says_so_downstream(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracing.shutdown()
    monkeypatch.setenv("ANTIFRAUD_TRACE_SAMPLE_RATIO", "0")
    assert tracing.configure("risk", SimpleSpanProcessor(spans))

    def serve() -> None:
        assert tracing.start_server_span(METHOD, {}, "risk") is None
        metadata = grpc.aio.Metadata()
        tracing.inject(metadata)
        sent = str(metadata["traceparent"])
        assert sent.endswith("-00")
        # The callee follows: nothing recorded there either.
        assert tracing.start_server_span(METHOD, {"traceparent": sent}, "x") is None
        assert tracing.current_traceparent() is None

    in_task(serve)
    assert not spans.get_finished_spans()


def test_log_lines_of_a_trace_carry_its_ids(spans: InMemorySpanExporter) -> None:
    def serve() -> dict[str, object]:
        span = tracing.start_server_span(METHOD, {}, "risk")
        assert span is not None
        line = logs.add_trace_ids(None, "info", {"event": "rpc"})
        tracing.end_span(span, grpc.StatusCode.OK)
        return dict(line)

    line = in_task(serve)
    assert isinstance(line, dict)
    (span,) = spans.get_finished_spans()
    assert line["trace_id"] == format(span.context.trace_id, "032x")
    assert line["span_id"] == format(span.context.span_id, "016x")
    assert "trace_id" not in logs.add_trace_ids(None, "info", {"event": "outside"})


def test_work_for_several_callers_is_a_trace_of_its_own_linked_to_each(
    spans: InMemorySpanExporter,
) -> None:
    def caller(traceparent: str) -> object:
        span = tracing.start_server_span(METHOD, {"traceparent": traceparent}, "warning")
        assert span is not None
        found = tracing.current_span_context()
        tracing.end_span(span, grpc.StatusCode.OK)
        return found

    first = in_task(lambda: caller("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"))
    second = in_task(lambda: caller("00-11111111111111111111111111111111-2222222222222222-01"))
    assert isinstance(first, SpanContext)
    assert isinstance(second, SpanContext)

    def shared() -> None:
        callers = [first, None, second]
        with tracing.linked("screening risk look-ups", callers, requests=3):
            metadata = grpc.aio.Metadata()
            tracing.inject(metadata)
            sent = str(metadata["traceparent"]).split("-")[1]
            assert sent not in ("0af7651916cd43dd8448eb211c80319c", "1" * 32)

    in_task(shared)
    *_, batch = spans.get_finished_spans()
    assert batch.name == "screening risk look-ups"
    assert batch.parent is None  # no caller's trace claims the others' work
    assert [link.context for link in batch.links] == [first, second]
    assert batch.attributes is not None
    assert batch.attributes["requests"] == 3


def test_work_for_callers_none_of_whom_is_traced_is_not_traced(
    spans: InMemorySpanExporter,
) -> None:
    assert tracing.current_span_context() is None

    def shared() -> None:
        with tracing.linked("screening risk look-ups", [None, None]) as span:
            assert span is None

    in_task(shared)
    assert not spans.get_finished_spans()
