"""The suite with mutual TLS on, as compose and Kubernetes run it: every process with its own
certificate from `antifraud tls-certs`, two replicas each of risk and warning.

One case filed through the gateway crosses every process (gateway, report, risk, warning,
identity, the partner simulators) over mutual TLS; at a service's port, a plaintext client,
a client whose certificate comes from another CA, and a client that checks for another
service's name are refused before any call, and a client with a good certificate but no
token is UNAUTHENTICATED: a certificate says which process is at the other end, never what
it may do. Readiness is read on each process's plaintext health-only port.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services import tls_command
from services.api.antifraud.common.v1 import common_pb2 as c
from services.api.antifraud.partner.v1 import simulator_pb2
from services.api.antifraud.report.v1 import report_pb2 as rp
from services.api.antifraud.risk.v1 import risk_pb2 as rk
from services.api.antifraud.risk.v1 import risk_pb2_grpc
from tests.e2e.deployment import Deployment, deployment, eventually
from tests.factories import card
from tests.harness import tls_credentials

pytestmark = pytest.mark.slow

CHECK = rk.CheckIndicatorRequest(
    indicator=c.Indicator(kind=c.INDICATOR_KIND_PHONE_NUMBER, value="+8613900000000")
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ours: every process's pair and an operator's client pair; then a stranger's CA."""
    folder = tmp_path_factory.mktemp("tls")
    tls_command.issue(folder / "ours", [*tls_command.PROCESSES, "operator"])
    tls_command.issue(folder / "stranger", ["operator"])
    return folder


@pytest.fixture(scope="module")
async def suite(pki: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deployment]:
    data_dir = tmp_path_factory.mktemp("system-mtls")
    async with deployment("sqlite", data_dir, tls_dir=pki / "ours") as found:
        yield found


def _an_hour_ago() -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(datetime.now(UTC) - timedelta(hours=1))
    return stamp


async def _check(channel: grpc.aio.Channel) -> grpc.StatusCode:
    return (await _answer(channel))[0]


async def _answer(channel: grpc.aio.Channel) -> tuple[grpc.StatusCode, str]:
    try:
        await risk_pb2_grpc.RiskServiceStub(channel).CheckIndicator(CHECK, timeout=5)
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


async def test_a_case_crosses_every_process_over_mutual_tls(suite: Deployment) -> None:
    victim = await suite.register()  # gateway → identity → warning → a carrier's SMS
    payee = card(random.Random())
    filed = await suite.report.FileCase(
        rp.FileCaseRequest(
            request_id=str(uuid.uuid4()),
            case=rp.Case(
                description="对方冒充客服说要退款，让我转账验证",
                category=c.FRAUD_CATEGORY_FAKE_CUSTOMER_SERVICE,
                amount_lost=c.Money(currency_code="CNY", units=8_000),
                incident_time=_an_hour_ago(),
                payees=[
                    rp.Payee(account=c.Indicator(kind=c.INDICATOR_KIND_BANK_ACCOUNT, value=payee))
                ],
            ),
        ),
        metadata=victim.metadata,
    )

    async def at_the_bank() -> bool:  # report → warning → the payee's bank
        got = await suite.control.ListReceived(
            simulator_pb2.ListReceivedRequest(method="StopPayment", page_size=500)
        )
        return any(
            filed.case.name.endswith(r.summary.get("case_reference", "-"))
            for r in got.received_calls
        )

    async def listed() -> bool:  # report → risk, read back through the gateway
        got = await suite.risk.CheckIndicator(
            rk.CheckIndicatorRequest(
                indicator=c.Indicator(kind=c.INDICATOR_KIND_BANK_ACCOUNT, value=payee)
            ),
            metadata=victim.metadata,
        )
        return got.verdict.level == c.RISK_LEVEL_HIGH

    assert await eventually(at_the_bank, timeout=30)
    assert await eventually(listed, timeout=30)


async def test_a_service_port_refuses_whoever_cannot_prove_its_place(
    suite: Deployment, pki: Path
) -> None:
    assert suite.suite is not None
    risk = suite.suite.addrs["risk"]
    ours = tls_credentials(pki / "ours")
    as_risk = [("grpc.ssl_target_name_override", "risk")]

    # No TLS at all: no call reaches the server.
    async with grpc.aio.insecure_channel(risk) as plain:
        assert await _check(plain) == grpc.StatusCode.UNAVAILABLE
    # A client that trusts our CA but holds a certificate of another CA: the server
    # refuses it in the handshake.
    stranger = grpc.ssl_channel_credentials(
        (pki / "ours" / "ca.crt").read_bytes(),
        (pki / "stranger" / "operator.key").read_bytes(),
        (pki / "stranger" / "operator.crt").read_bytes(),
    )
    async with grpc.aio.secure_channel(risk, stranger, as_risk) as channel:
        assert await _check(channel) == grpc.StatusCode.UNAVAILABLE
    # And a server whose certificate is not of the CA the client trusts is refused by it.
    async with grpc.aio.secure_channel(risk, tls_credentials(pki / "stranger"), as_risk) as channel:
        code, details = await _answer(channel)
        assert code == grpc.StatusCode.UNAVAILABLE
        assert "handshake failed" in details.lower()
    # The client checks the name it called: risk's certificate does not pass for report's.
    as_report = [("grpc.ssl_target_name_override", "report")]
    async with grpc.aio.secure_channel(risk, ours, as_report) as channel:
        code, details = await _answer(channel)
        assert code == grpc.StatusCode.UNAVAILABLE
        assert "hostname verification" in details.lower()
    # A good certificate and no token: through TLS, and still nobody.
    async with grpc.aio.secure_channel(risk, ours, as_risk) as channel:
        assert await _check(channel) == grpc.StatusCode.UNAUTHENTICATED
    # The gateway asks for no certificate (apps and partners hold API keys) but speaks TLS.
    async with grpc.aio.insecure_channel(suite.gateway) as plain:
        assert await _check(plain) == grpc.StatusCode.UNAVAILABLE


async def test_probes_get_plaintext_health_and_nothing_else(suite: Deployment) -> None:
    assert suite.suite is not None
    for name, address in suite.suite.health_addrs.items():
        async with grpc.aio.insecure_channel(address) as plain:
            reply = await health_pb2_grpc.HealthStub(plain).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, name
            if name == "risk":
                assert await _check(plain) == grpc.StatusCode.UNIMPLEMENTED
