"""Log lines in production: JSON, and no personal value even in a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from io import BytesIO, TextIOWrapper
from pathlib import Path

import pytest
import structlog

from services.common import logs


def test_a_traceback_carries_no_local_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = BytesIO()
    monkeypatch.setattr(sys, "stderr", TextIOWrapper(buffer))
    logs.configure(fmt="json", level="info", cache=False)
    try:
        id_number = "11010519491231002X"
        raise ValueError(f"bad record {len(id_number)}")
    except ValueError:
        logs.get_logger("test").exception("failed", request_id="r1")
    sys.stderr.flush()
    line = json.loads(buffer.getvalue().decode().strip().splitlines()[-1])
    assert line["event"] == "failed"
    assert line["request_id"] == "r1"
    assert line["exception"][0]["exc_type"] == "ValueError"
    assert "11010519491231002X" not in buffer.getvalue().decode()
    # Back to the real stderr before configuring again: a logger left writing into this
    # test's buffer fails every later test whose background task logs a warning.
    monkeypatch.undo()
    structlog.reset_defaults()
    logs.configure(fmt="json", level="warning", cache=False)


_NATIVE_WRITERS = """
import logging, os, sys
from services.common import logs
logs.configure(fmt="json", level="info", route_native=True)
logging.getLogger("grpc._cython.cygrpc").error("from %s", "cython")
os.write(2, b"E1130 16:48:13.628845   25085 chttp2_transport.cc:1234] GOAWAY too_many_pings\\n")
print("stray", file=sys.stderr)
"""


def test_native_stderr_and_stdlib_logging_become_json_records() -> None:
    # What gRPC's C core (absl, straight to descriptor 2), its Cython layer (stdlib
    # logging) and a stray print write must reach the stream as JSON records.
    done = subprocess.run(
        [sys.executable, "-c", _NATIVE_WRITERS],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        timeout=60,
        check=True,
    )
    records = [json.loads(line) for line in done.stderr.decode().splitlines()]
    assert [(r["event"], r["level"]) for r in records] == [
        ("from cython", "error"),
        ("grpc core", "error"),
        ("stderr", "warning"),
    ]
    assert records[0]["logger"] == "grpc._cython.cygrpc"
    assert records[1]["source"] == "chttp2_transport.cc:1234"
    assert records[1]["message"] == "GOAWAY too_many_pings"
    assert records[2]["line"] == "stray"
