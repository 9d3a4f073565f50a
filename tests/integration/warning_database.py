"""The warning service's database, migrated, on each backend: the ``db`` fixture of the
warning storage tests (a module imports ``warning_database`` to have it)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.common.db import Database
from services.warning.bootstrap import VERSIONS


@pytest.fixture(name="db")
async def warning_database(db_target: tuple[str, str | None]) -> AsyncIterator[Database]:
    url, schema = db_target
    database = Database("warning", url=url, schema=schema)
    await database.migrate(VERSIONS)
    yield database
    await database.dispose()
