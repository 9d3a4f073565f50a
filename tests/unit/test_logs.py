"""Log lines in production: JSON, and no personal value even in a traceback."""

from __future__ import annotations

import json
import sys
from io import BytesIO, TextIOWrapper

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
