"""TLS and mutual TLS between clients and servers, switched on by certificate paths.

Certificates are made here with ``cryptography``: a CA, a server certificate for
127.0.0.1, and a client certificate for mutual TLS.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from services.api.antifraud.common.v1 import common_pb2 as c
from services.api.antifraud.echo.v1 import echo_pb2, echo_pb2_grpc
from services.common.clients import open_channel
from services.common.config import ServerSettings, TlsSettings
from services.common.health_client import is_serving
from services.common.server import start_server
from services.echo.component import EchoComponent


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write(path: Path, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> tuple[str, str]:
    key_path, cert_path = path.with_suffix(".key"), path.with_suffix(".crt")
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(key_path), str(cert_path)


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    now = datetime.now(UTC)
    issuer_name, issuer_key = issuer or (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("pki")
    ca_key = _key()
    ca = _cert("antifraud test CA", ca_key, None, ca=True)
    server_key, client_key = _key(), _key()
    paths = {}
    _, paths["ca"] = _write(folder / "ca", ca_key, ca)
    paths["server_key"], paths["server_cert"] = _write(
        folder / "server",
        server_key,
        _cert("risk", server_key, ("antifraud test CA", ca_key), server=True),
    )
    paths["client_key"], paths["client_cert"] = _write(
        folder / "client", client_key, _cert("gateway", client_key, ("antifraud test CA", ca_key))
    )
    return paths


async def _echo(channel: grpc.aio.Channel) -> str:
    reply = await echo_pb2_grpc.EchoServiceStub(channel).Echo(
        echo_pb2.EchoRequest(indicator=c.Indicator(kind=c.INDICATOR_KIND_QQ_NUMBER, value="12345")),
        timeout=5,
    )
    return reply.indicator.value


@pytest.mark.parametrize("mutual", [False, True], ids=["tls", "mutual-tls"])
async def test_servers_speak_tls_and_clients_follow_configuration(
    pki: dict[str, str], mutual: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    tls = TlsSettings(pki["server_cert"], pki["server_key"], pki["ca"] if mutual else "")
    running = await start_server(EchoComponent(), ServerSettings("echo", "127.0.0.1:0", tls=tls))
    try:
        monkeypatch.setenv("ANTIFRAUD_TLS_CA", pki["ca"])
        if mutual:
            monkeypatch.setenv("ANTIFRAUD_TLS_CLIENT_CERT", pki["client_cert"])
            monkeypatch.setenv("ANTIFRAUD_TLS_CLIENT_KEY", pki["client_key"])
        async with open_channel(running.address) as channel:
            assert await _echo(channel) == "12345"
        assert await is_serving(running.address)  # container health checks speak TLS too
        # A plaintext client gets nowhere.
        async with grpc.aio.insecure_channel(running.address) as plain:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await _echo(plain)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        if mutual:
            # TLS without a client certificate is refused when the server asks for one.
            monkeypatch.delenv("ANTIFRAUD_TLS_CLIENT_CERT")
            monkeypatch.delenv("ANTIFRAUD_TLS_CLIENT_KEY")
            async with open_channel(running.address) as anonymous:
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await _echo(anonymous)
                assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await running.stop(0.5)


async def test_issued_certificates_name_each_process_and_probes_get_plaintext_health(
    tmp_path: Path,
) -> None:
    """`antifraud tls-certs`: one certificate per process, its name in the SAN, usable for
    mutual TLS; a server with a health address serves plaintext health there and nothing
    else, for probes that cannot present a certificate."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from services import tls_command

    folder = tmp_path / "certs"
    assert set(tls_command.issue(folder, ["risk", "gateway"])) == {"ca", "risk", "gateway"}
    assert tls_command.issue(folder, ["risk", "gateway"]) == []  # kept: safe at every start
    assert oct((folder / "risk.key").stat().st_mode & 0o777) == "0o600"
    cert = x509.load_pem_x509_certificate((folder / "risk.crt").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "risk" in names.get_values_for_type(x509.DNSName)

    def pem(name: str) -> bytes:
        return (folder / name).read_bytes()

    tls = TlsSettings(str(folder / "risk.crt"), str(folder / "risk.key"), str(folder / "ca.crt"))
    settings = ServerSettings("echo", "127.0.0.1:0", tls=tls, health_addr="127.0.0.1:0")
    running = await start_server(EchoComponent(), settings)
    try:
        as_gateway = grpc.ssl_channel_credentials(
            pem("ca.crt"), pem("gateway.key"), pem("gateway.crt")
        )
        for expected, works in (("risk", True), ("report", False)):
            # The name dialled must be in the server's certificate: risk's cannot pass for
            # report's.
            options = [("grpc.ssl_target_name_override", expected)]
            async with grpc.aio.secure_channel(running.address, as_gateway, options) as channel:
                if works:
                    assert await _echo(channel) == "12345"
                else:
                    with pytest.raises(grpc.aio.AioRpcError) as err:
                        await _echo(channel)
                    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        health = f"127.0.0.1:{running.health_port}"
        async with grpc.aio.insecure_channel(health) as plain:
            reply = await health_pb2_grpc.HealthStub(plain).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await _echo(plain)
            assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        await running.stop(0.5)


async def test_clients_check_the_service_name_whatever_address_they_dial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every certificate `antifraud tls-certs` makes also names 127.0.0.1 (for tools on one
    machine), so the address alone proves nothing: our clients name the service they call
    (``server_name``), and a process's certificate passes for its own name only. The
    per-process layout (``--per-process``) is what compose's volumes and the Secrets hold."""
    from services import tls_command

    folder, laid_out = tmp_path / "ca", tmp_path / "each"
    tls_command.issue(folder, ["risk", "gateway"])
    tls_command.lay_out(folder, laid_out, ["risk", "gateway"])
    assert sorted(p.name for p in (laid_out / "risk").iterdir()) == ["ca.crt", "tls.crt", "tls.key"]
    assert oct((laid_out / "risk" / "tls.key").stat().st_mode & 0o777) == "0o600"
    assert not (laid_out / "risk" / "ca.key").exists()  # the CA's key stays where it was made

    risk = laid_out / "risk"
    tls = TlsSettings(str(risk / "tls.crt"), str(risk / "tls.key"), str(risk / "ca.crt"))
    running = await start_server(EchoComponent(), ServerSettings("echo", "127.0.0.1:0", tls=tls))
    try:
        monkeypatch.setenv("ANTIFRAUD_TLS_CA", str(laid_out / "gateway" / "ca.crt"))
        monkeypatch.setenv("ANTIFRAUD_TLS_CLIENT_CERT", str(laid_out / "gateway" / "tls.crt"))
        monkeypatch.setenv("ANTIFRAUD_TLS_CLIENT_KEY", str(laid_out / "gateway" / "tls.key"))
        async with open_channel(running.address, server_name="risk") as channel:
            assert await _echo(channel) == "12345"
        async with open_channel(running.address, server_name="report") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await _echo(channel)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "hostname verification" in (err.value.details() or "").lower()
    finally:
        await running.stop(0.5)
