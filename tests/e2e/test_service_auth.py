"""Every method of every service, called directly, proves who calls it: no token, a token
signed by a key we do not know, an expired one, one for another service, one whose
issuer may not speak for its principal, and a valid one of a caller the service's table
does not allow are each refused with the right code, before any work is done."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import MethodDescriptor
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from services import registry
from services.api.antifraud.common.v1 import common_pb2 as c
from services.api.antifraud.risk.v1 import risk_pb2 as rk
from services.api.antifraud.risk.v1 import risk_pb2_grpc
from services.common import metrics, tokens
from services.common.auth import CallerPolicy, Callers
from services.common.principals import Principal, Role
from services.common.server import RunningServer
from tests.harness import serving

SERVICES = ["risk", "report", "warning", "identity"]
_RAW: dict[str, Any] = {"request_serializer": None, "response_deserializer": None}


@pytest.fixture(scope="module", params=SERVICES)
async def running(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[RunningServer, CallerPolicy]]:
    data_dir: Path = tmp_path_factory.mktemp(f"auth-{request.param}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ANTIFRAUD_DATA_DIR", str(data_dir))
        for peer in ("RISK", "REPORT", "WARNING", "IDENTITY", "PARTNERS"):
            patch.setenv(f"ANTIFRAUD_{peer}_TARGET", "127.0.0.1:1")
        # Every refusal here comes from one address on purpose: not throttled for it (the
        # throttle has its own test below).
        patch.setenv("ANTIFRAUD_AUTH_FAILURES_PER_SECOND", "1000000")
        patch.setenv("ANTIFRAUD_AUTH_FAILURE_BURST", "1000000")
        component = registry.build(request.param)
        async with serving(component) as found:
            yield found, component.caller_policy()


def _methods(server: RunningServer) -> list[MethodDescriptor]:
    pool = descriptor_pool.Default()
    return [m for name in server.names for m in pool.FindServiceByName(name).methods]


async def _call(
    channel: grpc.aio.Channel, method: MethodDescriptor, token: str | None
) -> grpc.StatusCode:
    path = f"/{method.containing_service.full_name}/{method.name}"
    metadata = (("authorization", f"Bearer {token}"),) if token is not None else ()
    try:
        if method.client_streaming:

            async def none() -> AsyncIterator[bytes]:
                return
                yield b""

            if method.server_streaming:
                call = channel.stream_stream(path, **_RAW)(none(), metadata=metadata, timeout=5)
                async for _ in call:
                    pass
            else:
                await channel.stream_unary(path, **_RAW)(none(), metadata=metadata, timeout=5)
        elif method.server_streaming:
            streamed = channel.unary_stream(path, **_RAW)(b"", metadata=metadata, timeout=5)
            async for _ in streamed:
                pass
        else:
            await channel.unary_unary(path, **_RAW)(b"", metadata=metadata, timeout=5)
    except grpc.aio.AioRpcError as err:
        return err.code()
    return grpc.StatusCode.OK


def _not_allowed(callers: Callers) -> Principal:
    """A well-formed caller the table refuses for this method."""
    for role in (Role.CITIZEN, Role.CARRIER, Role.BANK, Role.ANALYST):
        if role not in callers.roles:
            return Principal(role, "someone") if role is not Role.CITIZEN else Principal(role, "u1")
    return Principal.service("gateway")  # no service table names the gateway itself


def _expired(audience: str) -> str:
    signing = tokens.keyring().signing_key(tokens.GATEWAY)
    assert signing is not None
    kid, key = signing
    now = int(time.time())
    claims = {
        "iss": tokens.GATEWAY,
        "sub": "analyst:a1",
        "aud": audience,
        "iat": now - 3600,
        "exp": now - 600,
    }
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid})


async def test_every_method_refuses_callers_that_prove_nothing_or_are_not_allowed(
    running: tuple[RunningServer, CallerPolicy], tmp_path: Path
) -> None:
    server, policy = running
    audience = policy.audience
    minter = tokens.Minter(tokens.keyring())
    # The same key ids, other keys: what an attacker who guesses our naming would sign with.
    strangers = tmp_path / "strangers"
    for issuer in sorted(tokens.ISSUERS):
        tokens.ensure_key(issuer, strangers)
    forger = tokens.Minter(tokens.Keyring(strangers))
    analyst = Principal(Role.ANALYST, "a1")
    # A service's key may speak only for that service: the risk key cannot name a citizen.
    overreach = jwt.encode(
        {
            "iss": "risk",
            "sub": "citizen:u1",
            "aud": audience,
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
        },
        tokens.keyring().signing_key("risk")[1],  # type: ignore[index]
        algorithm="EdDSA",
        headers={"kid": tokens.keyring().signing_key("risk")[0]},  # type: ignore[index]
    )
    methods = _methods(server)
    assert methods
    wrong: list[str] = []
    channel = grpc.aio.insecure_channel(server.address)
    for method in methods:
        path = f"/{method.containing_service.full_name}/{method.name}"
        callers = (policy.rules or {}).get(path)
        assert callers is not None, f"{path} is missing from the {audience} table"
        cases: list[tuple[str, str | None, grpc.StatusCode]] = [
            ("no token", None, grpc.StatusCode.UNAUTHENTICATED),
            ("garbage", "not-a-token", grpc.StatusCode.UNAUTHENTICATED),
            ("forged", forger.token(analyst, audience), grpc.StatusCode.UNAUTHENTICATED),
            ("expired", _expired(audience), grpc.StatusCode.UNAUTHENTICATED),
            ("other audience", minter.token(analyst, "elsewhere"), grpc.StatusCode.UNAUTHENTICATED),
            ("issuer overreach", overreach, grpc.StatusCode.UNAUTHENTICATED),
            (
                "not in the table",
                minter.token(_not_allowed(callers), audience),
                grpc.StatusCode.PERMISSION_DENIED,
            ),
        ]
        # The cases of a method at once, on one connection: each call stands alone.
        codes = await asyncio.gather(*(_call(channel, method, token) for _, token, _ in cases))
        for (label, _, expected), code in zip(cases, codes, strict=True):
            if code is not expected:
                wrong.append(f"{path} [{label}]: {code.name}, expected {expected.name}")
    await channel.close(None)
    assert not wrong, "\n".join(wrong)


async def test_health_and_reflection_answer_without_a_token(
    running: tuple[RunningServer, CallerPolicy],
) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    server, _ = running
    async with grpc.aio.insecure_channel(server.address) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_a_flood_of_forged_tokens_is_throttled_before_the_signature_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forged tokens from one address spend its budget of failures; then they are refused
    RESOURCE_EXHAUSTED with RetryInfo before any signature is checked, while a caller whose
    token was verified lately keeps being served from the same address."""
    monkeypatch.setenv("ANTIFRAUD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ANTIFRAUD_AUTH_FAILURES_PER_SECOND", "1")
    monkeypatch.setenv("ANTIFRAUD_AUTH_FAILURE_BURST", "20")
    strangers = tmp_path / "strangers"
    tokens.ensure_key("gateway", strangers)
    forger = tokens.Minter(tokens.Keyring(strangers))
    valid = tokens.Minter(tokens.keyring()).token(Principal(Role.ANALYST, "a1"), "risk")
    check = rk.CheckIndicatorRequest(
        indicator=c.Indicator(kind=c.INDICATOR_KIND_PHONE_NUMBER, value="96110")
    )
    component = registry.build("risk")
    async with (
        serving(component) as running,
        grpc.aio.insecure_channel(running.address) as channel,
    ):
        risk = risk_pb2_grpc.RiskServiceStub(channel)
        await risk.CheckIndicator(check, metadata=(("authorization", f"Bearer {valid}"),))
        verified = metrics.REFUSALS.labels("risk", "unauthenticated")._value.get()
        codes: list[grpc.StatusCode] = []
        for i in range(60):
            forged = forger.token(Principal(Role.ANALYST, f"f{i}"), "risk")
            try:
                await risk.CheckIndicator(check, metadata=(("authorization", f"Bearer {forged}"),))
            except grpc.aio.AioRpcError as err:
                codes.append(err.code())
                if err.code() is grpc.StatusCode.RESOURCE_EXHAUSTED:
                    status = rpc_status.from_call(err)  # type: ignore[arg-type]
                    assert status is not None
                    assert any(d.Is(error_details_pb2.RetryInfo.DESCRIPTOR) for d in status.details)
        answer = await risk.CheckIndicator(check, metadata=(("authorization", f"Bearer {valid}"),))
    assert codes[:20] == [grpc.StatusCode.UNAUTHENTICATED] * 20
    assert codes[-1] is grpc.StatusCode.RESOURCE_EXHAUSTED
    # Only the budget's worth of signatures were checked and failed (a second or two of
    # refill at most), not the sixty.
    failed = metrics.REFUSALS.labels("risk", "unauthenticated")._value.get() - verified
    assert failed < 30
    assert answer.verdict is not None
