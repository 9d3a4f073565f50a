"""Hostile input to every RPC of every server: a deliberate status code, never
UNKNOWN or INTERNAL, and the server goes on serving.

Messages are generated from the request descriptors, so a new RPC is covered
the day it is added: empty messages, huge strings, NUL bytes and control
characters, unknown enum numbers, extreme numbers, long repeated fields, and
bytes that are not a message at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor

from services import registry
from services.common.health_client import is_serving
from services.common.server import RunningServer
from tests import harness
from tests.harness import serving

SERVERS = [name for name, entry in registry.REGISTRY.items() if entry.role != "tool"]
FORBIDDEN = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
HUGE = "A" * 200_000


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


async def _call(
    channel: grpc.aio.Channel, method: MethodDescriptor, body: bytes
) -> grpc.StatusCode:
    path = f"/{method.containing_service.full_name}/{method.name}"
    kwargs: dict[str, Any] = {"request_serializer": None, "response_deserializer": None}
    try:
        if method.client_streaming:

            async def one() -> AsyncIterator[bytes]:
                yield body

            if method.server_streaming:
                call = channel.stream_stream(path, **kwargs)(one(), timeout=2)
                async for _ in call:
                    pass
            else:
                await channel.stream_unary(path, **kwargs)(one(), timeout=5)
        elif method.server_streaming:
            async for _ in channel.unary_stream(path, **kwargs)(body, timeout=1):
                pass
        else:
            await channel.unary_unary(path, **kwargs)(body, timeout=5)
    except grpc.aio.AioRpcError as err:
        return err.code()
    return grpc.StatusCode.OK


def _methods(running: RunningServer) -> list[MethodDescriptor]:
    pool = descriptor_pool.Default()
    found: list[MethodDescriptor] = []
    for name in running.names:
        found.extend(pool.FindServiceByName(name).methods)
    return found


@pytest.mark.parametrize("name", SERVERS)
async def test_hostile_input_gets_deliberate_codes(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTIFRAUD_DATA_DIR", str(tmp_path))
    # Peers point at a closed port: calls that get past validation meet UNAVAILABLE, deliberately.
    for peer in ("RISK", "REPORT", "WARNING", "IDENTITY", "PARTNERS"):
        monkeypatch.setenv(f"ANTIFRAUD_{peer}_TARGET", "127.0.0.1:1")
    component = registry.build(name)
    async with serving(component) as running, harness.channel(running.address) as channel:
        methods = _methods(running)
        assert methods, f"{name} serves no methods"
        bad: list[str] = []
        for method in methods:
            for mode, body in hostile_payloads(method.input_type):
                code = await _call(channel, method, body)
                if code in FORBIDDEN:
                    bad.append(f"{method.full_name} [{mode}] -> {code.name}")
        assert not bad, "\n".join(bad)
        await asyncio.sleep(0)
        assert await is_serving(running.address)
