"""``antifraud keys``: the operator's command for gateway API keys. The key goes to stdout
alone; a database it cannot reach is one log line on stderr and the start-failure exit
status, as a server says it, never a traceback (an orchestrator or a script retries it)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from services.common import lifecycle
from tests.harness import antifraud


def base_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTIFRAUD_")}
    return env | {
        "ANTIFRAUD_DATA_DIR": str(tmp_path / "data"),
        "ANTIFRAUD_KEYS_DIR": str(tmp_path / "keys"),
        "ANTIFRAUD_LOG_FORMAT": "json",
    }


def test_create_list_revoke(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    created = antifraud("keys", "create", "--role", "analyst", "--subject", "a-1", env=env)
    assert created.returncode == 0, created.stderr[-2000:]
    token = created.stdout.strip()
    assert token
    assert "\n" not in token
    listed = antifraud("keys", "list", env=env)
    assert listed.returncode == 0, listed.stderr[-2000:]
    [line] = listed.stdout.splitlines()
    key_id = line.split()[0]
    assert "analyst" in line
    assert "a-1" in line
    assert "active" in line
    assert token not in listed.stdout  # never the secret again
    revoked = antifraud("keys", "revoke", key_id, env=env)
    assert revoked.returncode == 0
    assert revoked.stdout.strip() == f"revoked {key_id}"
    assert "revoked" in antifraud("keys", "list", env=env).stdout
    again = antifraud("keys", "revoke", key_id, env=env)
    assert again.returncode == 1
    assert f"no active key {key_id}" in again.stderr


def test_an_unreachable_database_is_one_line_and_the_start_failure_status(
    tmp_path: Path,
) -> None:
    env = base_env(tmp_path) | {
        "ANTIFRAUD_DATABASE_URL": "postgresql+asyncpg://antifraud@db.invalid:5432/antifraud",
    }
    done = antifraud("keys", "create", "--role", "admin", "--subject", "ops", env=env)
    assert done.returncode == lifecycle.EXIT_CANNOT_START
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    records = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    [failure] = [r for r in records if r.get("level") == "error"]
    assert failure["event"] == "cannot start"
    assert failure["error"].startswith("database: ")
