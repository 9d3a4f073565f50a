"""Settings checked once at start, as real processes: a bad value, an address in use or a
database that cannot be reached stops `antifraud serve` with one log line (JSON in JSON
mode) and a non-zero status, never a traceback; gRPC core's own lines stay JSON."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from services.common.lifecycle import EXIT_BAD_SETTING, EXIT_CANNOT_START
from tests.harness import PG_URL, ROOT, free_port, postgres_reachable


def serve(name: str, tmp: Path, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "serve", name],
        env={
            **os.environ,
            "ANTIFRAUD_DATA_DIR": str(tmp),
            "ANTIFRAUD_LOG_FORMAT": "json",
            f"ANTIFRAUD_{name.upper()}_ADDR": f"127.0.0.1:{free_port()}",
            **env,
        },
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def fails(name: str, tmp: Path, **env: str) -> tuple[int, list[str]]:
    """Exit status and standard error lines of a `serve` that must stop by itself."""
    proc = serve(name, tmp, **env)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err.decode().splitlines()


def one_record(lines: list[str]) -> dict[str, Any]:
    assert len(lines) == 1, "\n".join(lines)
    record: dict[str, Any] = json.loads(lines[0])
    return record


@pytest.mark.parametrize(
    ("name", "variable", "value", "expected"),
    [
        ("echo", "ANTIFRAUD_GRACE_SECONDS", "abc", "a number of seconds, 0 to 3600"),
        ("echo", "ANTIFRAUD_GRACE_SECONDS", "-1", "a number of seconds, 0 to 3600"),
        ("echo", "ANTIFRAUD_LOG_LEVEL", "verbose", "one of debug, info, warning, error"),
        ("echo", "ANTIFRAUD_LOG_FORMAT", "xml", "one of auto, json, console"),
        ("echo", "ANTIFRAUD_DATABASE_URL", "postgresql://u@db/x", "postgresql+asyncpg://"),
        ("echo", "ANTIFRAUD_ECHO_ADDR", "127.0.0.1:70000", "HOST:PORT with PORT 0-65535"),
        ("echo", "ANTIFRAUD_RISK_DB_SCHEMA", "a-b;drop", "a schema name"),
        ("echo", "ANTIFRAUD_TLS_CERT", "/nonexistent.pem", "a readable PEM certificate file"),
        ("risk", "ANTIFRAUD_RISK_POLL_SECONDS", "soon", "a number >= 0"),
        ("warning", "ANTIFRAUD_WARNING_MAX_ATTEMPTS", "2.5", "a whole number >= 0"),
        ("partners", "ANTIFRAUD_PARTNERS_FAILURE_RATE", "often", "a number"),
        ("partners", "ANTIFRAUD_PARTNERS_FAILURE_RATE", "2", "a number from 0 to 1"),
    ],
)
def test_a_bad_setting_is_one_line_naming_variable_value_and_form(
    tmp_path: Path, name: str, variable: str, value: str, expected: str
) -> None:
    status, lines = fails(name, tmp_path, **{variable: value})
    assert status == EXIT_BAD_SETTING
    record = one_record(lines)
    assert record["event"] == "bad setting"
    assert record["level"] == "error"
    assert record["variable"] == variable
    assert record["value"] == value
    assert expected in record["expected"]
    assert "could not convert" not in record["expected"]


def test_a_service_s_own_parser_refusing_its_setting_is_one_line(tmp_path: Path) -> None:
    status, lines = fails("identity", tmp_path, ANTIFRAUD_IDENTITY_DATA_KEYS="no-colon-here")
    assert status == EXIT_BAD_SETTING
    record = one_record(lines)
    assert record["event"] == "bad setting"
    assert "ANTIFRAUD_IDENTITY_DATA_KEYS" in record["error"]


def test_a_database_password_is_never_echoed(tmp_path: Path) -> None:
    status, lines = fails(
        "echo", tmp_path, ANTIFRAUD_DATABASE_URL="postgres://app:s3cret@db:5432/x"
    )
    assert status == EXIT_BAD_SETTING
    record = one_record(lines)
    assert record["value"] == "postgres://app:***@db:5432/x"
    assert "s3cret" not in lines[0]


def test_console_mode_is_one_line_too(tmp_path: Path) -> None:
    status, lines = fails(
        "echo", tmp_path, ANTIFRAUD_LOG_FORMAT="console", ANTIFRAUD_GRACE_SECONDS="abc"
    )
    assert status == EXIT_BAD_SETTING
    assert len(lines) == 1, lines
    assert "ANTIFRAUD_GRACE_SECONDS" in lines[0]
    assert "abc" in lines[0]


def test_an_address_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        addr = f"127.0.0.1:{holder.getsockname()[1]}"
        status, lines = fails("risk", tmp_path, ANTIFRAUD_RISK_ADDR=addr)
    assert status == EXIT_CANNOT_START
    record = one_record(lines)
    assert record["event"] == "cannot start"
    assert record["error"] == f"cannot listen on {addr}: Address already in use"


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/db"
    status, lines = fails("risk", tmp_path, ANTIFRAUD_RISK_DATABASE_URL=url)
    assert status == EXIT_CANNOT_START
    record = one_record(lines)
    assert record["event"] == "cannot start"
    assert record["service"] == "risk"
    assert record["error"].startswith("database: ConnectionRefusedError")


@pytest.mark.postgres
@pytest.mark.skipif(not postgres_reachable(), reason="PostgreSQL not reachable")
def test_an_unknown_database_is_one_line(tmp_path: Path) -> None:
    url = PG_URL.rsplit("/", 1)[0] + "/no_such_database_here"
    status, lines = fails("risk", tmp_path, ANTIFRAUD_RISK_DATABASE_URL=url)
    assert status == EXIT_CANNOT_START
    record = one_record(lines)
    assert record["event"] == "cannot start"
    assert "no_such_database_here" in record["error"]
    assert record["error"].startswith("database: ")


def test_grpc_core_lines_are_json_records(tmp_path: Path) -> None:
    # At debug verbosity gRPC's C core writes (through absl, to descriptor 2) a warning
    # at start: in JSON mode it must arrive as a JSON record like every other line.
    proc = serve("echo", tmp_path, GRPC_VERBOSITY="debug")
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline().decode()
        if not line:
            break
        lines.append(line)
        if json.loads(line).get("event") == "serving":
            break
    proc.send_signal(signal.SIGTERM)
    _, rest = proc.communicate(timeout=60)
    lines += rest.decode().splitlines()
    records = [json.loads(line) for line in lines if line.strip()]  # every line is JSON
    core = [r for r in records if r["event"] == "grpc core"]
    assert core, lines
    assert {"source", "message", "level", "timestamp"} <= set(core[0])
    assert proc.returncode == 0
