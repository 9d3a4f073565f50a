"""Each service's migrations build the indexes its table definitions name, the outbox's
indexes of waiting events among them (the relay's claims need them: without them a claim
walks past every event delivered in the last day). On a real database, both backends."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from services.common.db import Database
from services.identity.adapters import tables as identity_tables
from services.identity.component import MIGRATIONS as IDENTITY_VERSIONS
from services.report import bootstrap as report_bootstrap
from services.report.adapters import tables as report_tables
from services.warning import bootstrap as warning_bootstrap
from services.warning.adapters import tables as warning_tables

#: The services with an outbox: (name, migrations, table definitions).
SERVICES = [
    ("warning", warning_bootstrap.VERSIONS, warning_tables.metadata),
    ("report", report_bootstrap.VERSIONS, report_tables.metadata),
    ("identity", IDENTITY_VERSIONS, identity_tables.metadata),
]


@pytest.mark.parametrize(
    ("service", "versions", "metadata"), SERVICES, ids=[s[0] for s in SERVICES]
)
async def test_migrations_build_the_indexes_the_code_uses(
    db_target: tuple[str, str | None], service: str, versions: Path, metadata: sa.MetaData
) -> None:
    url, schema = db_target
    db = Database(service, url=url, schema=schema)
    try:
        await db.migrate(versions)
        await db.migrate(versions)  # a second run (another replica) finds nothing to do

        def index_differences(conn: sa.Connection) -> list[object]:
            context = MigrationContext.configure(conn)
            return [
                d
                for d in compare_metadata(context, metadata)
                if isinstance(d, tuple) and d[0] in ("add_index", "remove_index")
            ]

        async with db.engine.connect() as conn:
            differences = await conn.run_sync(index_differences)
            indexes = await conn.run_sync(lambda c: sa.inspect(c).get_indexes("outbox"))
    finally:
        await db.dispose()
    assert differences == []
    assert {"ix_outbox_waiting", "ix_outbox_waiting_topic"} <= {i["name"] for i in indexes}
