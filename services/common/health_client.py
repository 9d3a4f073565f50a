"""Asking a server whether it is SERVING: for `antifraud up`, container health checks, tests."""

from __future__ import annotations

import asyncio
import time
import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.clients import open_channel


async def is_serving(target: str, *, service: str = "", timeout: float = 1.0) -> bool:
    # The same credentials as every other client: TLS when ANTIFRAUD_TLS_CA is set.
    async with open_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.aio.AioRpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def http_ok(address: str, *, timeout: float = 1.0) -> bool:
    """Whether the web process at ``address`` (the console) answers ``/healthz`` with 200."""
    try:
        with urllib.request.urlopen(f"http://{address}/healthz", timeout=timeout) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


async def wait_serving(target: str, *, timeout: float = 30.0, service: str = "") -> None:
    """Wait until ``target`` says SERVING; TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await is_serving(target, service=service, timeout=0.5):
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{target} not SERVING after {timeout:.0f}s")
