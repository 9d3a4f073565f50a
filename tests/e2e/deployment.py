"""The whole suite as it is deployed, for the system tests.

With ``ANTIFRAUD_E2E_GATEWAY`` (and ``ANTIFRAUD_E2E_PARTNERS``, ``ANTIFRAUD_E2E_ADMIN_KEY``)
set, the tests run against that deployment (``docker compose up``, a cluster), once: its
database is whatever it runs on. ``ANTIFRAUD_E2E_PODMAN_PROJECT`` names the compose project
when ``make test-containers`` runs it on podman; the tests can then kill and restart its
containers as they do processes here.
Otherwise they start the deployment topology here as separate processes: the
partner simulators, two replicas each of the risk and warning services, report,
identity and the gateway, on PostgreSQL (each service its own schema) or SQLite.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

import grpc
import pytest

from services.api.antifraud.gateway.v1 import gateway_pb2 as gw
from services.api.antifraud.gateway.v1 import gateway_pb2_grpc as gw_grpc
from services.api.antifraud.identity.v1 import identity_pb2 as idn
from services.api.antifraud.identity.v1 import identity_pb2_grpc
from services.api.antifraud.partner.v1 import simulator_pb2, simulator_pb2_grpc
from services.api.antifraud.report.v1 import report_pb2_grpc
from services.api.antifraud.risk.v1 import risk_pb2_grpc
from services.api.antifraud.warning.v1 import warning_pb2_grpc
from services.common.config import env_key
from services.common.resident_id import with_check_character
from services.partners.domain.routing import SIMULATORS
from tests import harness
from tests.conftest import BACKENDS

T = TypeVar("T")
SERVICES = ["partners", "risk", "report", "warning", "identity", "gateway"]
REPLICAS = {"risk": 2, "warning": 2}
WITH_DATABASE = ["risk", "report", "warning", "identity", "gateway"]
#: A one-time code in an SMS (验证码123456).
CODE = re.compile(r"验证码(\d{4,8})")

REMOTE = os.environ.get("ANTIFRAUD_E2E_GATEWAY", "")
#: The deployment's CA and a client certificate (ca.crt, tls.crt, tls.key), when its ports
#: speak TLS (compose's do).
TLS_DIR = os.environ.get("ANTIFRAUD_E2E_TLS_DIR", "")
#: What the system tests' suite fixture is parametrised by: each database backend here,
#: or the one deployment they are pointed at.
SUITE_PARAMS = [pytest.param("deployment", id="deployment")] if REMOTE else BACKENDS


class Processes(Protocol):
    """The deployment's processes by name (``report``, ``risk-2``), for fault tests:
    ``harness.ProcessSuite`` here, ``tests.containers.podman.Containers`` on podman."""

    def kill(self, name: str) -> None: ...

    def terminate(self, name: str, timeout: float = 10) -> int: ...

    def start(self, name: str) -> None: ...

    async def wait(self, name: str, timeout: float = 60) -> None: ...


@dataclass
class Citizen:
    user_id: str
    phone: str
    id_number: str
    name: str
    key: str

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.key}"),)


@dataclass
class Deployment:
    gateway: str
    partners: str
    admin_key: str
    processes: Processes | None = None
    #: What it runs on: ``sqlite``, ``postgresql``, or ``deployment`` (pointed at one).
    backend: str = "deployment"
    #: Its data directory, when its processes run here.
    data_dir: Path | None = None
    #: With mutual TLS: the CA and a client certificate (harness.tls_credentials).
    tls: grpc.ChannelCredentials | None = None
    channel: grpc.aio.Channel = field(init=False)
    partners_channel: grpc.aio.Channel = field(init=False)

    def __post_init__(self) -> None:
        self.channel = self._channel(self.gateway, "gateway")
        self.partners_channel = self._channel(self.partners, "partners")
        self.risk = risk_pb2_grpc.RiskServiceStub(self.channel)
        self.report = report_pb2_grpc.ReportServiceStub(self.channel)
        self.warning = warning_pb2_grpc.WarningServiceStub(self.channel)
        self.identity = identity_pb2_grpc.IdentityServiceStub(self.channel)
        self.citizen = gw_grpc.CitizenServiceStub(self.channel)
        self.screening = gw_grpc.CallScreeningServiceStub(self.channel)
        self.payee = gw_grpc.PayeeServiceStub(self.channel)
        self.analyst = gw_grpc.AnalystServiceStub(self.channel)
        self.admin = gw_grpc.AdminServiceStub(self.channel)
        self.control = simulator_pb2_grpc.SimulatorControlServiceStub(self.partners_channel)

    def _channel(self, target: str, server_name: str) -> grpc.aio.Channel:
        """Plaintext, or TLS checking that the server's certificate names ``server_name``
        (the published ports are reached at 127.0.0.1, not by the service's name)."""
        if self.tls is None:
            return grpc.aio.insecure_channel(target)
        options = [("grpc.ssl_target_name_override", server_name)]
        return grpc.aio.secure_channel(target, self.tls, options=options)

    @property
    def local(self) -> bool:
        """Started here as processes (not pointed at a deployment)."""
        return isinstance(self.processes, harness.ProcessSuite)

    @property
    def suite(self) -> harness.ProcessSuite | None:
        """The processes started here, when they were (their logs, ports, metrics ports)."""
        return self.processes if isinstance(self.processes, harness.ProcessSuite) else None

    async def key(self, role: int, subject: str = "") -> tuple[tuple[str, str], ...]:
        created = await self.admin.CreateApiKey(
            gw.CreateApiKeyRequest(role=role, subject=subject, description="system test"),  # type: ignore[arg-type]
            metadata=(("authorization", f"Bearer {self.admin_key}"),),
        )
        return (("authorization", f"Bearer {created.api_key}"),)

    async def handset(self, phone: str) -> list[str]:
        """The texts delivered to a phone so far, newest first: what its holder reads."""
        found = await self.control.ListHandsetMessages(
            simulator_pb2.ListHandsetMessagesRequest(phone_number=phone, page_size=500)
        )
        return [m.text for m in found.messages]

    async def send_code(
        self,
        phone: str,
        metadata: tuple[tuple[str, str], ...],
        purpose: int = idn.PHONE_CHALLENGE_PURPOSE_REGISTRATION,
    ) -> tuple[str, str]:
        """Step 1 through the gateway, then the code as the phone's holder reads it:
        (phone challenge, code)."""
        before = len(await self.handset(phone))
        sent = await self.citizen.SendPhoneCode(
            gw.SendPhoneCodeRequest(phone_number=phone, purpose=purpose),  # type: ignore[arg-type]
            metadata=metadata,
        )

        async def arrived() -> list[str] | None:
            texts = await self.handset(phone)
            return texts if len(texts) > before else None

        texts = await eventually(arrived)
        found = CODE.search(texts[0])
        assert found is not None, "the SMS carries no code"
        return sent.phone_challenge, found.group(1)

    async def guardian_consent(
        self, guardian: str, metadata: tuple[tuple[str, str], ...]
    ) -> gw.GuardianConfirmation:
        """A code sent to the guardian's phone, which the guardian passes on: their consent."""
        challenge, code = await self.send_code(
            guardian, metadata, idn.PHONE_CHALLENGE_PURPOSE_GUARDIAN
        )
        return gw.GuardianConfirmation(phone_number=guardian, phone_challenge=challenge, code=code)

    async def register(
        self,
        *,
        protected: bool = False,
        guardians: list[str] | None = None,
        phone: str = "",
        id_number: str = "",
        name: str = "",
    ) -> Citizen:
        """A new citizen, registered through the app's front door, with a key of their own."""
        anonymous = await self.key(gw.ROLE_CITIZEN)
        phone = phone or new_phone()
        id_number = id_number or new_id_number()
        name = name or random.choice("王李张刘陈杨黄赵") + random.choice("伟芳娜敏静丽强磊军洋")
        confirmations = [
            await self.guardian_consent(guardian, anonymous) for guardian in guardians or []
        ]
        challenge, code = await self.send_code(phone, anonymous)
        registered = await self.citizen.RegisterCitizen(
            gw.RegisterCitizenRequest(
                request_id=str(uuid.uuid4()),
                full_name=name,
                id_number=id_number,
                phone_number=phone,
                protected=protected,
                guardian_phone_numbers=guardians or [],
                guardian_confirmations=confirmations,
                phone_challenge=challenge,
                code=code,
            ),
            metadata=anonymous,
        )
        return Citizen(registered.user.user_id, phone, id_number, name, registered.api_key)

    async def close(self) -> None:
        await self.channel.close(None)
        await self.partners_channel.close(None)


_used_phones: set[str] = set()


def new_phone() -> str:
    while True:
        phone = (
            "+86" + random.choice(["139", "186", "189", "150"]) + f"{random.randrange(10**8):08d}"
        )
        if phone not in _used_phones:
            _used_phones.add(phone)
            return phone


def new_id_number() -> str:
    birth = (
        f"{random.randrange(1950, 2000)}{random.randrange(1, 13):02d}{random.randrange(1, 28):02d}"
    )
    return with_check_character(f"110105{birth}{random.randrange(1000):03d}")


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 20.0) -> T:
    """Poll until ``check`` returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.1)


def _pg_env(schemas: dict[str, str]) -> dict[str, str]:
    env = {"ANTIFRAUD_DATABASE_URL": harness.PG_URL}
    for name, schema in schemas.items():
        env[f"ANTIFRAUD_{env_key(name)}_DB_SCHEMA"] = schema
    return env


@asynccontextmanager
async def deployment(
    backend: str,
    data_dir: Path,
    *,
    extra_env: dict[str, str] | None = None,
    replicas: dict[str, int] | None = None,
    start_timeout: float = 90,
    tls_dir: Path | None = None,
) -> AsyncIterator[Deployment]:
    if REMOTE:
        processes: Processes | None = None
        project = os.environ.get("ANTIFRAUD_E2E_PODMAN_PROJECT")
        if project:
            from tests.containers.podman import Containers

            processes = Containers(project)
        found = Deployment(
            REMOTE,
            os.environ.get("ANTIFRAUD_E2E_PARTNERS", ""),
            os.environ.get("ANTIFRAUD_E2E_ADMIN_KEY", ""),
            processes,
            tls=harness.tls_credentials(Path(TLS_DIR)) if TLS_DIR else None,
        )
        try:
            yield found
        finally:
            await found.close()
        return
    schemas = {name: harness.new_schema(name) for name in WITH_DATABASE}
    env = _pg_env(schemas) if backend == "postgresql" else {}
    env |= {
        "ANTIFRAUD_PARTNERS_LATENCY_MS": "5",
        "ANTIFRAUD_PARTNERS_JITTER_MS": "5",
        "ANTIFRAUD_LOG_LEVEL": "info",
        # No load balancer to wait for here: a stopped process refuses new calls at once
        # (the drain itself is tested in test_runtime_chaos and tests/integration).
        "ANTIFRAUD_DRAIN_SECONDS": "0",
        **(extra_env or {}),
    }
    suite = harness.ProcessSuite(
        SERVICES,
        data_dir=data_dir,
        extra_env=env,
        replicas=REPLICAS if replicas is None else replicas,
        also_ports=list(SIMULATORS),
        tls_dir=tls_dir,
    )

    async def admin_key() -> str:
        created = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.cli", "keys", "create", "--role", "admin",
            "--subject", "system-tests", env=suite.env, cwd=harness.ROOT,
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await created.communicate()
        assert created.returncode == 0, "could not create the admin key"
        return out.decode().strip()

    try:
        # A loaded machine (CI, shared runners) may need longer: ANTIFRAUD_E2E_START_SECONDS.
        wait = float(os.environ.get("ANTIFRAUD_E2E_START_SECONDS", "90"))
        # The key is made while the processes start (the gateway's migrations and the
        # command's take turns on the migration lock): one start-up's time instead of two.
        async with asyncio.TaskGroup() as group:
            admin = group.create_task(admin_key())
            group.create_task(suite.start_all(timeout=max(start_timeout, wait)))
        found = Deployment(
            suite.addrs["gateway"],
            suite.addrs["partners"],
            admin.result(),
            suite,
            backend,
            data_dir,
            tls=harness.tls_credentials(tls_dir) if tls_dir else None,
        )
        try:
            yield found
        finally:
            await found.close()
    finally:
        await suite.stop_all_async()
        if backend == "postgresql":
            for schema in schemas.values():
                await harness.drop_schema(schema)
