"""``antifraud migrate`` changes schemas only: it builds no service, so it reads no
service's keys and generates none (the migration Job and compose's ``migrate`` get none),
on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests import harness
from tests.conftest import BACKENDS

SEALING = ["identity", "report", "warning"]


@pytest.fixture(params=BACKENDS)
async def database_env(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[dict[str, str]]:
    """Settings for a fresh database of each sealing service: SQLite files in a fresh data
    dir, or fresh PostgreSQL schemas."""
    if request.param == "sqlite":
        yield {}
        return
    schemas = {name: harness.new_schema(name) for name in SEALING}
    yield {
        "ANTIFRAUD_DATABASE_URL": harness.PG_URL,
        **{f"ANTIFRAUD_{n.upper()}_DB_SCHEMA": s for n, s in schemas.items()},
    }
    for schema in schemas.values():
        await harness.drop_schema(schema)


def test_migrate_needs_and_makes_no_keys(database_env: dict[str, str], tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"  # would be made, with a key file per service, if read
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTIFRAUD_")}
    env |= {
        "ANTIFRAUD_DATA_DIR": str(tmp_path / "data"),
        "ANTIFRAUD_KEYS_DIR": str(keys_dir),
        "ANTIFRAUD_LOG_FORMAT": "json",
        **database_env,
    }
    done = harness.antifraud("migrate", *SEALING, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split("\n")[:3] == [f"{name}: migrated" for name in SEALING]
    assert not keys_dir.exists(), sorted(p.name for p in keys_dir.iterdir())
