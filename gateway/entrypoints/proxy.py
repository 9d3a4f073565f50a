"""The gateway's pass-through of service methods: authenticated and authorised by
the interceptor, checked for ownership here, forwarded as bytes, answered as the
service answered. No business rule lives here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import DecodeError

from gateway.domain.policy import Rule
from services.common import principals
from services.common.errors import InvalidArgument, PermissionDenied, Upstream
from services.common.principals import Role

Context = grpc.aio.ServicerContext[Any, Any]
_RAW: dict[str, Any] = {"request_serializer": None, "response_deserializer": None}


@dataclass(frozen=True)
class Route:
    method: MethodDescriptor
    channel: grpc.aio.Channel
    rule: Rule

    @property
    def path(self) -> str:
        return f"/{self.method.containing_service.full_name}/{self.method.name}"


def citizen_user_id() -> str | None:
    """The caller's user id when the caller is a citizen (empty before registering), else None."""
    caller = principals.current()
    return caller.subject if caller.role is Role.CITIZEN else None


def _owned(route: Route, body: bytes) -> bytes:
    """Citizens only touch their own data: fill in or check the owner field."""
    field = route.rule.owner_field
    user_id = citizen_user_id()
    if not field or user_id is None:
        return body
    if not user_id:
        raise PermissionDenied("register with your real name first")
    cls = message_factory.GetMessageClass(route.method.input_type)
    try:
        message = cls.FromString(body)
    except DecodeError:
        raise InvalidArgument.field("request", "the message could not be parsed") from None
    *parents, leaf = field.split(".")
    target = message
    for name in parents:
        target = getattr(target, name)
    current = getattr(target, leaf)
    if current and current != user_id:
        raise PermissionDenied("citizens may only act on their own data")
    setattr(target, leaf, user_id)
    return bytes(message.SerializeToString())


class Proxy(grpc.GenericRpcHandler):  # type: ignore[type-arg]
    def __init__(self, routes: Mapping[str, Route]) -> None:
        self.routes = dict(routes)

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Any:
        route = self.routes.get(handler_call_details.method)
        if route is None:
            return None
        m = route.method
        if not m.client_streaming and not m.server_streaming:
            return grpc.unary_unary_rpc_method_handler(_unary_unary(route))
        if not m.client_streaming:
            return grpc.unary_stream_rpc_method_handler(_unary_stream(route))
        if not m.server_streaming:
            return grpc.stream_unary_rpc_method_handler(_stream_unary(route))
        return grpc.stream_stream_rpc_method_handler(_stream_stream(route))


def _unary_unary(route: Route) -> Any:
    call = route.channel.unary_unary(route.path, **_RAW)

    async def handle(body: bytes, context: Context) -> bytes:
        try:
            return bytes(await call(_owned(route, body), timeout=route.rule.budget))
        except grpc.aio.AioRpcError as err:
            raise Upstream.of(err) from None

    return handle


def _unary_stream(route: Route) -> Any:
    call = route.channel.unary_stream(route.path, **_RAW)

    async def handle(body: bytes, context: Context) -> AsyncIterator[bytes]:
        try:
            async for response in call(_owned(route, body)):
                yield response
        except grpc.aio.AioRpcError as err:
            raise Upstream.of(err) from None

    return handle


def _stream_unary(route: Route) -> Any:
    call = route.channel.stream_unary(route.path, **_RAW)

    async def handle(requests: AsyncIterator[bytes], context: Context) -> bytes:
        try:
            return bytes(await call(requests, timeout=route.rule.budget * 12))
        except grpc.aio.AioRpcError as err:
            raise Upstream.of(err) from None

    return handle


def _stream_stream(route: Route) -> Any:
    call = route.channel.stream_stream(route.path, **_RAW)

    async def handle(requests: AsyncIterator[bytes], context: Context) -> AsyncIterator[bytes]:
        try:
            async for response in call(requests):
                yield response
        except grpc.aio.AioRpcError as err:
            raise Upstream.of(err) from None

    return handle
