"""Server-side cross-cutting behaviour, registered once for every server.

For each RPC: take or make a request id and return it in trailing metadata;
remember the caller's deadline and principal for downstream calls; turn domain
errors into statuses with details, unreachable infrastructure into UNAVAILABLE,
malformed messages into INVALID_ARGUMENT and anything unexpected into INTERNAL
with the request id; continue the caller's trace (services.common.tracing); write
one log line with the call's real outcome.

Rules that keep a server alive whatever its clients do (cancel, disconnect, let
the deadline pass at any point):

- Everything read from the call (metadata, peer, deadline) is read when it
  starts. grpc.aio releases the core call when the RPC task ends; touching the
  context after that (``peer()`` on a released call) crashes the process.
- Streaming responses are written by a coroutine with ``context.write`` and the
  handler's generator is closed by us, in the RPC's own task. A generator handed
  to grpc is abandoned when the call is cancelled and finalised later by the
  event loop, in another task and another context: its ``finally`` then runs
  after the call is gone.
- Context variables are set, never reset: grpc.aio runs each RPC in a task of
  its own, so the values end with the task.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from grpc_status import rpc_status

from services.common import context as ctx
from services.common import metrics, tracing
from services.common.errors import (
    DomainError,
    InvalidArgument,
    infrastructure_error,
    internal_status,
    to_status,
)
from services.common.logs import get_logger

log = get_logger("rpc")

#: Standard services (health probes, reflection) pass through untouched and unlogged,
#: and answer without a token: probes and grpcurl need none.
PASS_THROUGH_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

Context = grpc.aio.ServicerContext[Any, Any]
#: How long a handler that returned at the end of its request stream waits for the
#: cancellation that may have ended that stream (see ``_guarded``).
CANCEL_SETTLE_SECONDS = 0.05


class _Malformed:
    """Stands for a request message that could not be parsed."""


MALFORMED = _Malformed()


def _safe_deserializer(
    deserializer: Callable[[bytes], Any] | None,
) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except (DecodeError, ValueError, UnicodeDecodeError):
            return MALFORMED

    return parse


def _malformed_error() -> InvalidArgument:
    return InvalidArgument.field("request", "the message could not be parsed")


class _CheckedRequests:
    """The request stream, with a malformed message raised as INVALID_ARGUMENT.

    A plain iterator, not an async generator: nothing of ours is left for the
    event loop to finalise when a handler stops reading.
    """

    def __init__(self, requests: AsyncIterator[Any]) -> None:
        self._requests = requests

    def __aiter__(self) -> _CheckedRequests:
        return self

    async def __anext__(self) -> Any:
        request = await self._requests.__anext__()
        if request is MALFORMED:
            raise _malformed_error()
        return request


class _Call:
    """The bookkeeping of one RPC: context variables, timing, outcome, metrics, the log line."""

    def __init__(self, method: str, context: Context, service: str, stream: bool = False) -> None:
        self.method = method
        self.service = service
        self.stream = stream
        self.started = time.perf_counter()
        if stream:
            metrics.STREAMS_OPEN.labels(service, method).inc()
        metadata = dict(context.invocation_metadata() or ())
        request_id = str(metadata.get(ctx.REQUEST_ID_KEY) or "")[:64] or ctx.new_request_id()
        remaining = context.time_remaining()
        self.deadline = time.monotonic() + remaining if remaining is not None else None
        self.peer = context.peer()
        self.request_id = request_id
        # The caller's trace continues here (W3C trace context in the metadata).
        self.span = tracing.start_server_span(method, metadata, service)
        ctx.request_id_var.set(request_id)
        # Set only from a verified token (services.common.auth, the gateway's keys).
        ctx.principal_var.set("")
        ctx.region_var.set("")
        ctx.deadline_var.set(self.deadline)
        context.set_trailing_metadata(((ctx.REQUEST_ID_KEY, request_id),))

    def deadline_passed(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def ended_code(self) -> grpc.StatusCode:
        """Why a call ended underneath its handler: its deadline passed, or the client left."""
        if self.deadline_passed():
            return grpc.StatusCode.DEADLINE_EXCEEDED
        return grpc.StatusCode.CANCELLED

    def finished_code(self, context: Context) -> grpc.StatusCode:
        """The outcome of a handler that returned: what it set, unless time ran out first
        (a request stream cut by the deadline ends like one the client closed)."""
        code = _set_code(context)
        if code is grpc.StatusCode.OK and self.deadline_passed():
            return grpc.StatusCode.DEADLINE_EXCEEDED
        return code

    def log(self, code: grpc.StatusCode, error: BaseException | None = None) -> None:
        seconds = time.perf_counter() - self.started
        service = self.service
        metrics.RPCS.labels(service, self.method, code.name).inc()
        metrics.RPC_SECONDS.labels(service, self.method).observe(seconds)
        if self.stream:
            metrics.STREAMS_OPEN.labels(service, self.method).dec()
        if self.span is not None:
            tracing.end_span(self.span, code)
        fields: dict[str, Any] = {
            "method": self.method,
            "code": code.name,
            "duration_ms": round(seconds * 1000, 3),
            "request_id": self.request_id,
            "peer": self.peer,
            "service": service,
            "caller": ctx.principal_var.get() or "unauthenticated",
        }
        key_id = ctx.key_id_var.get()
        if key_id:
            fields["key_id"] = key_id
        if isinstance(error, DomainError):
            # Domain messages name fields and reasons, never personal values.
            if error.log_detail:
                fields["upstream"] = error.log_detail
            log.info("rpc", **fields, error=error.message)
        elif error is not None:
            log.error("rpc", **fields, exc_info=error)
        elif code is grpc.StatusCode.OK:
            log.info("rpc", **fields)
        else:
            log.warning("rpc", **fields)


def _set_code(context: Context) -> grpc.StatusCode:
    """The code a handler set itself (``set_code`` or ``abort``); a plain attribute read."""
    code = context.code()
    return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.OK


async def _guarded(
    call: _Call, context: Context, work: Awaitable[Any], *, reads: bool = False
) -> Any:
    """Run a handler's work; map what it raises to a status and log the outcome once.

    ``reads``: the handler reads a request stream. grpc.aio ends that stream the same
    way whether the client closed it or cancelled the call; a cancellation reaches the
    call's task a moment later, from gRPC core's "call closed" event, which often but not
    always comes in the same batch of completions (one turn of the event loop caught 931
    of 1,000 cancelled streams, 142 without it). So a handler that returned on a request
    stream's end waits up to ``CANCEL_SETTLE_SECONDS`` for that cancellation: a cancelled
    call is interrupted at once and logged CANCELLED; a stream the client closed normally
    gets its status that much later, once per stream.
    """
    try:
        result = await work
        if reads and _set_code(context) is grpc.StatusCode.OK:
            await asyncio.sleep(CANCEL_SETTLE_SECONDS)
    except grpc.aio.AbortError:
        # The handler called context.abort itself: the status is already on its way.
        call.log(_set_code(context))
        raise
    except (asyncio.CancelledError, grpc.aio.BaseError):
        # Cancelled, deadline passed, client gone or server stopping: the call is over,
        # nothing can be sent; grpc expects these to propagate.
        call.log(call.ended_code())
        raise
    except Exception as exc:
        error = exc if isinstance(exc, DomainError) else infrastructure_error(exc)
        call.log(error.code if error is not None else grpc.StatusCode.INTERNAL, error or exc)
        status = to_status(error) if error is not None else internal_status(call.request_id)
        rich = rpc_status.to_status(status)
        await context.abort(rich.code, rich.details, rich.trailing_metadata)
        raise  # not reached: abort raises
    except BaseException:
        call.log(call.ended_code())
        raise
    call.log(call.finished_code(context))
    return result


async def _write_all(responses: Any, context: Context) -> None:
    """Write a handler's responses, closing its generator here whatever happens."""
    if inspect.isawaitable(responses):  # a handler that writes with context.write itself
        await responses
        return
    async with aclosing(responses) as stream:
        async for response in stream:
            await context.write(response)


async def _unary(request: Any, inner: Callable[..., Awaitable[Any]], context: Context) -> Any:
    if request is MALFORMED:
        raise _malformed_error()
    return await inner(request, context)


async def _streamed(request: Any, inner: Callable[..., Any], context: Context) -> None:
    if request is MALFORMED:
        raise _malformed_error()
    await _write_all(inner(request, context), context)


class ServerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Wraps every handler with request context, error mapping, metrics and the log line."""

    def __init__(self, service: str = "") -> None:
        self.service = service

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(PASS_THROUGH_PREFIXES):
            return handler
        service = self.service
        deserializer = _safe_deserializer(handler.request_deserializer)
        serializer = handler.response_serializer

        if handler.unary_unary:
            inner_uu: Any = handler.unary_unary

            async def unary_unary(request: Any, context: Context) -> Any:
                call = _Call(method, context, service)
                return await _guarded(call, context, _unary(request, inner_uu, context))

            return grpc.unary_unary_rpc_method_handler(unary_unary, deserializer, serializer)

        if handler.unary_stream:
            inner_us: Any = handler.unary_stream

            async def unary_stream(request: Any, context: Context) -> None:
                call = _Call(method, context, service, stream=True)
                await _guarded(call, context, _streamed(request, inner_us, context))

            return grpc.unary_stream_rpc_method_handler(unary_stream, deserializer, serializer)

        if handler.stream_unary:
            inner_su: Any = handler.stream_unary

            async def stream_unary(requests: AsyncIterator[Any], context: Context) -> Any:
                call = _Call(method, context, service, stream=True)
                work = inner_su(_CheckedRequests(requests), context)
                return await _guarded(call, context, work, reads=True)

            return grpc.stream_unary_rpc_method_handler(stream_unary, deserializer, serializer)

        inner_ss: Any = handler.stream_stream

        async def stream_stream(requests: AsyncIterator[Any], context: Context) -> None:
            call = _Call(method, context, service, stream=True)
            work = _write_all(inner_ss(_CheckedRequests(requests), context), context)
            await _guarded(call, context, work, reads=True)

        return grpc.stream_stream_rpc_method_handler(stream_stream, deserializer, serializer)
