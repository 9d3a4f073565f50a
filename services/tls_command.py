"""`antifraud tls-certs`: a certificate authority and one certificate per process, for
mutual TLS between the processes of a deployment (compose, Kubernetes).

antifraud tls-certs --dir /certs                      the CA and every process's pair
antifraud tls-certs --dir /certs risk risk-2          only these (the CA is reused)
antifraud tls-certs --dir /ca --per-process /tls      also /tls/<name>/{tls.crt,tls.key,ca.crt}

Each process gets its own key and a certificate naming it in the subject alternative
names (``DNS:risk``, and ``DNS:risk.<namespace>.svc`` style names with ``--domain``),
usable as server and as client: a peer checks the name it dialled against it, and a
certificate of one process cannot pass for another's name. Existing files are kept,
so the command is safe to run at every start (an init container, a compose one-shot);
``--renew`` replaces the processes' certificates (never the CA). Keys are 0600.

``--per-process`` lays each process's pair and the CA certificate (never the CA's key) out
in a folder of its own, under the names cert-manager and ``kubectl create secret tls`` use
(``tls.crt``, ``tls.key``, ``ca.crt``): a compose volume or a Secret per process, so each
process can read its own key and no other's.
"""

from __future__ import annotations

import argparse
import ipaddress
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from services.common.files import private_file

#: The processes of a deployment; replicas share their service's certificate.
PROCESSES = ["gateway", "identity", "risk", "report", "warning", "partners", "console"]
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
    certs.add_argument(
        "--per-process",
        metavar="DIR",
        default="",
        help="also copy each process's pair and ca.crt to DIR/<name>/ (tls.crt, tls.key, ca.crt)",
    )


def run(args: argparse.Namespace) -> int:
    names = args.names or PROCESSES
    made = issue(Path(args.dir), names, args.domain, renew=args.renew)
    print(f"certificates in {args.dir}: {' '.join(made) or 'all present'}")
    if args.per_process:
        lay_out(Path(args.dir), Path(args.per_process), names)
        print(f"per process in {args.per_process}: {' '.join(names)}")
    return 0


def lay_out(folder: Path, into: Path, names: list[str]) -> None:
    """Copy each process's pair and the CA certificate to ``into/<name>/`` as ``tls.crt``,
    ``tls.key`` and ``ca.crt``; what is there is replaced (a renewal reaches it)."""
    for name in names:
        target = into / name
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / "ca.crt", target / "ca.crt")
        shutil.copyfile(folder / f"{name}.crt", target / "tls.crt")
        private_file(target / "tls.key").write_bytes((folder / f"{name}.key").read_bytes())


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
