"""Each service's migrations build the schema its table definitions describe: every table,
column, index (the outbox's indexes of waiting events among them: without them a claim walks
past every event delivered in the last day) and, on PostgreSQL, every column type. On a
real database, both backends."""

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
from services.risk import bootstrap as risk_bootstrap
from services.risk.adapters import tables as risk_tables
from services.warning import bootstrap as warning_bootstrap
from services.warning.adapters import tables as warning_tables

#: (name, migrations, table definitions, has an outbox)
SERVICES = [
    ("warning", warning_bootstrap.VERSIONS, warning_tables.metadata, True),
    ("report", report_bootstrap.VERSIONS, report_tables.metadata, True),
    ("identity", IDENTITY_VERSIONS, identity_tables.metadata, True),
    ("risk", risk_bootstrap.VERSIONS, risk_tables.metadata, False),
]


@pytest.mark.parametrize(
    ("service", "versions", "metadata", "outbox"), SERVICES, ids=[s[0] for s in SERVICES]
)
async def test_migrations_build_what_the_code_describes(
    db_target: tuple[str, str | None],
    service: str,
    versions: Path,
    metadata: sa.MetaData,
    outbox: bool,
) -> None:
    url, schema = db_target
    db = Database(service, url=url, schema=schema)
    try:
        await db.migrate(versions)
        await db.migrate(versions)  # a second run (another replica) finds nothing to do

        def differences(conn: sa.Connection) -> list[object]:
            # SQLite cannot change a column's type in place (nor does it enforce a length):
            # types are compared on PostgreSQL only.
            compare_type = conn.dialect.name == "postgresql"
            context = MigrationContext.configure(conn, opts={"compare_type": compare_type})
            return list(compare_metadata(context, metadata))

        async with db.engine.connect() as conn:
            found = await conn.run_sync(differences)
            indexes = (
                await conn.run_sync(lambda c: sa.inspect(c).get_indexes("outbox")) if outbox else []
            )
    finally:
        await db.dispose()
    assert found == []
    if outbox:
        assert {"ix_outbox_waiting", "ix_outbox_waiting_topic"} <= {i["name"] for i in indexes}
