"""The shared runtime on real sockets: infrastructure faults, readiness, big errors,
reflection v1, shutdown drain, idempotent twins.

A small component of the test's own runs on the runtime (the echo service, its
handler backed by a real database), so each behaviour is seen without a whole
service around it. The database faults use a TCP proxy in front of PostgreSQL
that can forward, refuse or black-hole connections.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2
from grpc_status import rpc_status

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.echo.v1 import echo_pb2, echo_pb2_grpc
from services.common import idempotency, metrics
from services.common.auth import CallerPolicy
from services.common.config import ServerSettings
from services.common.db import Database, UnitOfWork
from services.common.errors import FieldViolation, InvalidArgument, field_violations
from services.common.health_client import is_serving
from services.common.server import Binding, start_server
from services.echo.component import EchoComponent
from tests import harness
from tests.conftest import BACKENDS
from tests.tcp_proxy import Proxy

Context = grpc.aio.ServicerContext[Any, Any]


class DatabaseEcho(echo_pb2_grpc.EchoServiceServicer):
    """Echo, after asking the database; a value of "invalid" fails on 500 fields at once,
    "slow" takes a while, "peer" answers with the caller's address."""

    def __init__(self, db: Database | None) -> None:
        self.db = db

    async def Echo(self, request: echo_pb2.EchoRequest, context: Context) -> echo_pb2.EchoResponse:
        if request.indicator.value == "invalid":
            raise InvalidArgument(
                [FieldViolation(f"indicators[{i}].kind", "unknown enum value") for i in range(500)]
            )
        if request.indicator.value == "slow":
            await asyncio.sleep(0.3)
        if request.indicator.value == "peer":
            return echo_pb2.EchoResponse(indicator=common_pb2.Indicator(value=context.peer()))
        if self.db is not None:
            async with self.db.read() as conn:
                await conn.execute(sa.text("SELECT 1"))
        return echo_pb2.EchoResponse(indicator=request.indicator)


class EchoOnDatabase:
    name = "echo"

    def __init__(self, db: Database | None = None) -> None:
        self.db = db

    def caller_policy(self) -> CallerPolicy:
        return CallerPolicy.open(self.name)

    def bindings(self) -> Sequence[Binding]:
        return [
            Binding(
                echo_pb2.DESCRIPTOR.services_by_name["EchoService"].full_name,
                echo_pb2_grpc.add_EchoServiceServicer_to_server,
                DatabaseEcho(self.db),
            )
        ]

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        if self.db is not None:
            await self.db.dispose()


def echo(value: str = "96110") -> echo_pb2.EchoRequest:
    return echo_pb2.EchoRequest(
        indicator=common_pb2.Indicator(kind=common_pb2.INDICATOR_KIND_PHONE_NUMBER, value=value)
    )


def retry_info(error: grpc.aio.AioRpcError) -> error_details_pb2.RetryInfo | None:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    for detail in status.details if status is not None else []:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return info
    return None


@pytest.fixture
async def proxy() -> AsyncIterator[Proxy]:
    if not harness.postgres_reachable():
        pytest.skip("PostgreSQL not reachable at 127.0.0.1:5432")
    host_port = harness.PG_URL.split("@", 1)[1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    found = Proxy((host, int(port or 5432)))
    await found.start()
    yield found
    await found.close()


@pytest.mark.postgres
async def test_an_unreachable_database_is_unavailable_and_not_ready_then_recovers(
    proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTIFRAUD_DB_CONNECT_TIMEOUT_SECONDS", "0.5")
    monkeypatch.setenv("ANTIFRAUD_DB_STATEMENT_TIMEOUT_SECONDS", "1")
    monkeypatch.setattr("services.common.server.PROBE_SECONDS", 0.2)
    url = harness.PG_URL.replace(
        harness.PG_URL.split("@", 1)[1].split("/", 1)[0], f"127.0.0.1:{proxy.port}"
    )
    db = Database("echo", url=url, schema="public")
    async with harness.serving(EchoOnDatabase(db)) as running:
        stub = echo_pb2_grpc.EchoServiceStub(channel := grpc.aio.insecure_channel(running.address))
        try:
            assert (await stub.Echo(echo(), timeout=5)).indicator.value == "96110"
            for fault in (proxy.refuse, proxy.blackhole):
                await fault()
                await db.engine.dispose()  # no pooled connection survives the fault
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await stub.Echo(echo(), timeout=10)
                # Refused or black-holed, the answer is retryable and comes before the deadline.
                assert caught.value.code() is grpc.StatusCode.UNAVAILABLE, caught.value
                assert retry_info(caught.value) is not None
                await _until(
                    lambda: _status(running.address), health_pb2.HealthCheckResponse.NOT_SERVING
                )
                await proxy.forward()
                await _until(
                    lambda: _status(running.address), health_pb2.HealthCheckResponse.SERVING
                )
                assert (await stub.Echo(echo(), timeout=5)).indicator.value == "96110"
        finally:
            await channel.close(None)


HEALTHCHECK = harness.ROOT / "deploy" / "healthcheck.sh"


def _probe(port: int | str) -> int:
    """The container health check (deploy/healthcheck.sh): its exit code."""
    return subprocess.run(["bash", str(HEALTHCHECK), str(port)], timeout=30, check=False).returncode


def _get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
        return str(reply.read().decode())


def _healthz(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def test_the_plaintext_health_port_says_what_grpc_health_says() -> None:
    async with harness.serving(EchoOnDatabase()) as running:
        port = metrics.serve_metrics("127.0.0.1:0", lambda: running.serving)
        assert await asyncio.to_thread(_healthz, port) == (200, "SERVING\n")
        assert await asyncio.to_thread(_probe, port) == 0
        # /metrics is still there beside it.
        assert "antifraud_rpcs_handled_total" in await asyncio.to_thread(_get, port, "/metrics")
        await running.set_serving(False)
        assert await asyncio.to_thread(_healthz, port) == (503, "NOT_SERVING\n")
        assert await asyncio.to_thread(_probe, port) == 1
        await running.set_serving(True)
        assert await asyncio.to_thread(_probe, port) == 0
    # Stopping: not serving from the first moment of shutdown.
    assert await asyncio.to_thread(_healthz, port) == (503, "NOT_SERVING\n")
    assert await asyncio.to_thread(_probe, port) == 1
    assert await asyncio.to_thread(_probe, harness.free_port()) == 1  # nothing listening
    assert await asyncio.to_thread(_probe, "x") == 2  # refused before any connection


async def _status(address: str) -> int:
    from grpc_health.v1 import health_pb2_grpc

    async with grpc.aio.insecure_channel(address) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=2
        )
        return int(reply.status)


async def _until(read: Any, wanted: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while (found := await read()) != wanted:
        assert time.monotonic() < deadline, f"health stayed {found}, wanted {wanted}"
        await asyncio.sleep(0.1)


async def test_hundreds_of_violations_arrive_summarised() -> None:
    async with (
        harness.serving(EchoOnDatabase()) as running,
        grpc.aio.insecure_channel(running.address) as channel,
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await echo_pb2_grpc.EchoServiceStub(channel).Echo(echo("invalid"), timeout=5)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations(caught.value)
    assert violations[0] == ("indicators[0].kind", "unknown enum value")
    assert violations[-1][0] == "request"
    assert "more invalid fields" in violations[-1][1]


async def test_cancelled_request_streams_are_logged_cancelled_and_closed_ones_ok() -> None:
    """A bidirectional stream cancelled after one exchange ends its request stream just as
    one the client closed; each is counted (and logged) with what really happened to it."""
    count = 200
    method = "/antifraud.echo.v1.EchoService/EchoStream"

    def outcomes() -> dict[str, float]:
        return {
            code: metrics.RPCS.labels("echo", method, code)._value.get()
            for code in ("OK", "CANCELLED", "UNKNOWN", "INTERNAL")
        }

    before = outcomes()
    async with (
        harness.serving(EchoComponent()) as running,
        grpc.aio.insecure_channel(running.address) as channel,
    ):
        stub = echo_pb2_grpc.EchoServiceStub(channel)
        one = echo_pb2.EchoStreamRequest(indicators=[echo().indicator])

        async def cancelled() -> None:
            call = stub.EchoStream()
            await call.write(one)
            await call.read()
            call.cancel()

        async def closed() -> None:
            call = stub.EchoStream()
            await call.write(one)
            await call.read()
            await call.done_writing()
            assert await call.code() is grpc.StatusCode.OK

        await asyncio.gather(*(cancelled() for _ in range(count)), closed(), closed())

        def seen() -> dict[str, float]:
            return {code: n - before[code] for code, n in outcomes().items()}

        await _until_true(lambda: sum(seen().values()) >= count + 2)
    assert seen() == {"OK": 2, "CANCELLED": count, "UNKNOWN": 0, "INTERNAL": 0}


async def _until_true(check: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.05)


async def test_reflection_answers_on_v1_and_v1alpha() -> None:
    async with (
        harness.serving(EchoOnDatabase()) as running,
        grpc.aio.insecure_channel(running.address) as channel,
    ):
        for service in (
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ):
            # v1 has the same messages as v1alpha, field for field.
            info = channel.stream_stream(
                f"/{service}/ServerReflectionInfo",
                request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
            )
            call = info(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
            names = [s.name async for r in call for s in r.list_services_response.service]
            assert "antifraud.echo.v1.EchoService" in names, service
            assert "grpc.reflection.v1.ServerReflection" in names


async def test_shutdown_drains_a_burst_without_cancelling_it() -> None:
    running = await start_server(EchoOnDatabase(), ServerSettings("echo", "127.0.0.1:0"))
    async with grpc.aio.insecure_channel(running.address) as channel:
        stub = echo_pb2_grpc.EchoServiceStub(channel)
        assert (await stub.Echo(echo(), timeout=5)).indicator.value == "96110"
        codes: Counter[grpc.StatusCode] = Counter()

        async def one() -> None:
            try:
                await stub.Echo(echo("slow"), timeout=10)
                codes[grpc.StatusCode.OK] += 1
            except grpc.aio.AioRpcError as err:
                codes[err.code()] += 1

        burst = [asyncio.create_task(one()) for _ in range(60)]
        await asyncio.sleep(0.05)  # the burst is on the wire
        stopping = asyncio.create_task(running.stop(grace=5, drain=0.5))
        await asyncio.sleep(0.1)
        assert not await is_serving(running.address), "NOT_SERVING as soon as the drain begins"
        await asyncio.gather(*burst)
        await stopping
    assert codes[grpc.StatusCode.CANCELLED] == 0, codes
    assert codes[grpc.StatusCode.OK] == 60, codes


# Idempotency: twins with one request id, on a real database.

_metadata = sa.MetaData()
_keys = idempotency.idempotency_table(_metadata)
_effects = sa.Table("effects", _metadata, sa.Column("id", sa.String(36), primary_key=True))


@pytest.fixture(params=BACKENDS)
async def twin_db(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Database]:
    schema = "" if request.param == "sqlite" else harness.new_schema("twins")
    if schema:
        db = Database("twins", url=harness.PG_URL, schema=schema)
        async with db.engine.begin() as conn:
            await conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    else:
        db = Database("twins", url=harness.sqlite_url(tmp_path, "twins"), schema="")
    async with db.engine.begin() as conn:
        await conn.run_sync(_metadata.create_all)
    yield db
    await db.dispose()
    if schema:
        await harness.drop_schema(schema)


async def test_twin_requests_run_the_work_once_and_get_the_same_answer(twin_db: Database) -> None:
    request_id = str(uuid.uuid4())
    request = echo("twin")

    async def work(uow: UnitOfWork) -> echo_pb2.EchoResponse:
        # The effect is unique to the request, as a user for an ID number is: a twin that
        # did the work again would fail on it instead of returning the first response.
        effect = request_id
        await uow.conn.execute(sa.insert(_effects).values(id=effect))
        await asyncio.sleep(0.2)  # the twin arrives meanwhile
        return echo_pb2.EchoResponse(
            indicator=common_pb2.Indicator(kind=request.indicator.kind, value=effect)
        )

    answers = await asyncio.gather(
        *(
            idempotency.run_once(
                lambda: UnitOfWork(twin_db), _keys, "Echo", request_id, request,
                echo_pb2.EchoResponse, work,
            )
            for _ in range(4)
        )
    )  # fmt: skip
    assert len({a.SerializeToString() for a in answers}) == 1
    async with twin_db.read() as conn:
        effects = (await conn.execute(sa.select(sa.func.count()).select_from(_effects))).scalar()
    assert effects == 1


async def test_a_claim_in_progress_is_answered_in_progress_then_the_response(
    twin_db: Database,
) -> None:
    request_id, print_ = str(uuid.uuid4()), idempotency.fingerprint(echo("long"))
    async with UnitOfWork(twin_db) as uow:
        assert await idempotency.claim(uow.conn, _keys, "Long", request_id, print_) is None
        await uow.commit()
    async with UnitOfWork(twin_db) as uow:
        with pytest.raises(idempotency.InProgress) as caught:
            await idempotency.recall(uow.conn, _keys, "Long", request_id, print_)
    assert caught.value.code is grpc.StatusCode.ABORTED
    done = echo_pb2.EchoResponse(indicator=echo("long").indicator)
    async with UnitOfWork(twin_db) as uow:
        await idempotency.remember(uow.conn, _keys, "Long", request_id, print_, done)
        await uow.commit()
    async with UnitOfWork(twin_db) as uow:
        assert await idempotency.recall(uow.conn, _keys, "Long", request_id, print_) == (
            done.SerializeToString(deterministic=True)
        )
    # A failed attempt releases its claim: a retry may do the work.
    other = str(uuid.uuid4())
    async with UnitOfWork(twin_db) as uow:
        await idempotency.claim(uow.conn, _keys, "Long", other, print_)
        await uow.commit()
    async with UnitOfWork(twin_db) as uow:
        await idempotency.release(uow.conn, _keys, "Long", other)
        await uow.commit()
    async with UnitOfWork(twin_db) as uow:
        assert await idempotency.claim(uow.conn, _keys, "Long", other, print_) is None


async def test_connections_are_aged_out_so_clients_reconnect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After its maximum age a connection is closed (GOAWAY, calls finish in the grace) and
    the client opens another: behind a Service, that is how new replicas get traffic."""
    monkeypatch.setenv("ANTIFRAUD_MAX_CONNECTION_AGE_SECONDS", "0.5")
    monkeypatch.setenv("ANTIFRAUD_MAX_CONNECTION_AGE_GRACE_SECONDS", "1")
    async with (
        harness.serving(EchoOnDatabase()) as running,
        grpc.aio.insecure_channel(running.address) as channel,
    ):
        stub = echo_pb2_grpc.EchoServiceStub(channel)
        peers: set[str] = set()
        until = time.monotonic() + 3
        while time.monotonic() < until:
            answer = await stub.Echo(echo("peer"), timeout=5, wait_for_ready=True)
            peers.add(answer.indicator.value)
            await asyncio.sleep(0.05)
    assert len(peers) >= 2, peers
