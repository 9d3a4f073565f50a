"""Server-side cross-cutting behaviour, registered once for every server.

For each RPC: take or make a request id and return it in trailing metadata;
remember the caller's deadline and principal for downstream calls; turn domain
errors into statuses with details, malformed messages into INVALID_ARGUMENT and
anything unexpected into INTERNAL with the request id; write one log line.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from grpc_status import rpc_status

from services.common import context as ctx
from services.common import metrics
from services.common.errors import DomainError, InvalidArgument, internal_status, to_status
from services.common.logs import get_logger

log = get_logger("rpc")

#: Standard services (health probes, reflection) pass through untouched and unlogged,
#: and answer without a token: probes and grpcurl need none.
PASS_THROUGH_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


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


async def _abort(context: grpc.aio.ServicerContext[Any, Any], error: BaseException) -> None:
    if isinstance(error, DomainError):
        status = to_status(error)
    else:
        status = internal_status(ctx.current_request_id())
    rich = rpc_status.to_status(status)
    await context.abort(rich.code, rich.details, rich.trailing_metadata)


class _Call:
    """The bookkeeping of one RPC: context variables, timing, the log line."""

    def __init__(
        self,
        method: str,
        context: grpc.aio.ServicerContext[Any, Any],
        service: str,
        stream: bool = False,
    ) -> None:
        self.method = method
        self.context = context
        self.service = service
        self.stream = stream
        self.started = time.perf_counter()
        if stream:
            metrics.STREAMS_OPEN.labels(service, method).inc()
        metadata = dict(context.invocation_metadata() or ())
        request_id = str(metadata.get(ctx.REQUEST_ID_KEY) or "")[:64] or ctx.new_request_id()
        remaining = context.time_remaining()
        self.tokens: tuple[Any, Any, Any] = (
            ctx.request_id_var.set(request_id),
            # Set only from a verified token (services.common.auth, the gateway's keys).
            ctx.principal_var.set(""),
            ctx.deadline_var.set(time.monotonic() + remaining if remaining is not None else None),
        )
        context.set_trailing_metadata(((ctx.REQUEST_ID_KEY, request_id),))
        self.request_id = request_id

    def finish(self, code: grpc.StatusCode, error: BaseException | None) -> None:
        seconds = time.perf_counter() - self.started
        service = self.service
        metrics.RPCS.labels(service, self.method, code.name).inc()
        metrics.RPC_SECONDS.labels(service, self.method).observe(seconds)
        if self.stream:
            metrics.STREAMS_OPEN.labels(service, self.method).dec()
        fields: dict[str, Any] = {
            "method": self.method,
            "code": code.name,
            "duration_ms": round(seconds * 1000, 3),
            "request_id": self.request_id,
            "peer": self.context.peer(),
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
        ctx.request_id_var.reset(self.tokens[0])
        ctx.principal_var.reset(self.tokens[1])
        ctx.deadline_var.reset(self.tokens[2])


def _status_of(
    error: BaseException | None, context: grpc.aio.ServicerContext[Any, Any]
) -> grpc.StatusCode:
    if error is None:
        code = context.code()
        return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.OK
    if isinstance(error, DomainError):
        return error.code
    return grpc.StatusCode.INTERNAL


async def _checked_requests(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        if request is MALFORMED:
            raise _malformed_error()
        yield request


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

            async def unary_unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                call = _Call(method, context, service)
                error: BaseException | None = None
                try:
                    if request is MALFORMED:
                        raise _malformed_error()
                    return await inner_uu(request, context)
                except BaseException as exc:
                    error = _unless_aborted(exc)
                    if error is None:
                        raise
                    await _abort(context, error)
                finally:
                    call.finish(_status_of(error, context), error)

            return grpc.unary_unary_rpc_method_handler(unary_unary, deserializer, serializer)

        if handler.unary_stream:
            inner_us: Any = handler.unary_stream

            async def unary_stream(
                request: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                call = _Call(method, context, service, stream=True)
                error: BaseException | None = None
                try:
                    if request is MALFORMED:
                        raise _malformed_error()
                    async for response in inner_us(request, context):
                        yield response
                except BaseException as exc:
                    error = _unless_aborted(exc)
                    if error is None:
                        raise
                    await _abort(context, error)
                finally:
                    call.finish(_status_of(error, context), error)

            return grpc.unary_stream_rpc_method_handler(unary_stream, deserializer, serializer)

        if handler.stream_unary:
            inner_su: Any = handler.stream_unary

            async def stream_unary(
                requests: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]
            ) -> Any:
                call = _Call(method, context, service, stream=True)
                error: BaseException | None = None
                try:
                    return await inner_su(_checked_requests(requests), context)
                except BaseException as exc:
                    error = _unless_aborted(exc)
                    if error is None:
                        raise
                    await _abort(context, error)
                finally:
                    call.finish(_status_of(error, context), error)

            return grpc.stream_unary_rpc_method_handler(stream_unary, deserializer, serializer)

        inner_ss: Any = handler.stream_stream

        async def stream_stream(
            requests: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            call = _Call(method, context, service, stream=True)
            error: BaseException | None = None
            try:
                async for response in inner_ss(_checked_requests(requests), context):
                    yield response
            except BaseException as exc:
                error = _unless_aborted(exc)
                if error is None:
                    raise
                await _abort(context, error)
            finally:
                call.finish(_status_of(error, context), error)

        return grpc.stream_stream_rpc_method_handler(stream_stream, deserializer, serializer)


def _unless_aborted(exc: BaseException) -> BaseException | None:
    """The error to report, or None when it must propagate untouched.

    ``context.abort`` raises AbortError; cancellation and interpreter exits
    must not be swallowed.
    """
    if isinstance(exc, grpc.aio.AbortError | GeneratorExit | KeyboardInterrupt | SystemExit):
        return None
    if isinstance(exc, BaseException) and not isinstance(exc, Exception):
        return None  # CancelledError and friends
    return exc
