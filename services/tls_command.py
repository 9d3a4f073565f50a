"""`antifraud tls-certs`: a certificate authority and one certificate per process, for
mutual TLS between the processes of a deployment (compose, Kubernetes).

antifraud tls-certs --dir /certs                      the CA and every process's pair
antifraud tls-certs --dir /certs risk risk-2          only these (the CA is reused)

Each process gets its own key and a certificate naming it in the subject alternative
names (``DNS:risk``, and ``DNS:risk.<namespace>.svc`` style names with ``--domain``),
usable as server and as client: a peer checks the name it dialled against it, and a
certificate of one process cannot pass for another's name. Existing files are kept,
so the command is safe to run at every start (an init container, a compose one-shot);
``--renew`` replaces the processes' certificates (never the CA). Keys are 0600.
"""

from __future__ import annotations

import argparse
import ipaddress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from services.common.files import private_file

#: The processes of a deployment; replicas share their service's certificate.
PROCESSES = ["gateway", "identity", "risk", "report", "warning", "partners"]
CA_NAME = "antifraud internal CA"
CA_DAYS = 3650
CERT_DAYS = 365


def add_parsers(sub: Any) -> None:
    certs = sub.add_parser("tls-certs", help="a CA and a certificate per process for mutual TLS")
    certs.add_argument("names", nargs="*", help=f"processes (default: {' '.join(PROCESSES)})")
    certs.add_argument("--dir", required=True, help="where ca.crt and <name>.crt/.key go")
    certs.add_argument(
        "--domain", action="append", default=[], help="also <name>.<domain> in the names"
    )
    certs.add_argument("--renew", action="store_true", help="replace existing process certs")


def run(args: argparse.Namespace) -> int:
    made = issue(Path(args.dir), args.names or PROCESSES, args.domain, renew=args.renew)
    print(f"certificates in {args.dir}: {' '.join(made) or 'all present'}")
    return 0


def issue(
    folder: Path, names: list[str], domains: list[str] | None = None, *, renew: bool = False
) -> list[str]:
    """Make what is missing (or, with ``renew``, every process pair); returns what was made."""
    folder.mkdir(parents=True, exist_ok=True)
    made: list[str] = []
    ca_key_path, ca_path = folder / "ca.key", folder / "ca.crt"
    if ca_key_path.exists() and ca_path.exists():
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        _write(folder / "ca", ca_key, _ca(ca_key))
        made.append("ca")
    for name in names:
        if not renew and (folder / f"{name}.crt").exists() and (folder / f"{name}.key").exists():
            continue
        key = ec.generate_private_key(ec.SECP256R1())
        _write(folder / name, key, _leaf(name, key, ca_key, domains or []))
        made.append(name)
    return made


def _builder(subject: str, key: ec.EllipticCurvePrivateKey, days: int) -> x509.CertificateBuilder:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
    )


def _ca(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    return (
        _builder(CA_NAME, key, CA_DAYS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )


def _leaf(
    name: str,
    key: ec.EllipticCurvePrivateKey,
    ca_key: ec.EllipticCurvePrivateKey,
    domains: list[str],
) -> x509.Certificate:
    alt: list[x509.GeneralName] = [x509.DNSName(name)]
    alt += [x509.DNSName(f"{name}.{domain}") for domain in domains]
    # `make run`-style loopback use of the same files.
    alt += [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    return (
        _builder(name, key, CERT_DAYS)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _write(stem: Path, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
    key_path = private_file(stem.with_suffix(".key"))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    stem.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
