"""deploy/postgres/roles.sql on the real PostgreSQL: the migration role makes and migrates
every schema; each service's role then starts on its own schema (its start-up migration is a
no-op at head) with rights on its rows only: no DDL, nothing of another service.

Roles are global to the cluster, so the script runs with its names under a prefix of this
test's own (``antifraud_`` becomes ``t<random>_``) and everything is dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services import registry
from services.common.db import Database
from tests import harness

pytestmark = pytest.mark.postgres
ROLES_SQL = harness.ROOT / "deploy" / "postgres" / "roles.sql"
SERVICES = ["risk", "report", "warning", "identity", "gateway"]
#: What a service's role may do to its own tables: rows, nothing else.
RIGHTS = {
    "SELECT": True,
    "INSERT": True,
    "UPDATE": True,
    "DELETE": True,
    "TRUNCATE": False,
    "REFERENCES": False,
    "TRIGGER": False,
}


def url_as(role: str) -> str:
    """The test database's URL, logged in as ``role`` (trust authentication locally)."""
    scheme, _, rest = harness.PG_URL.partition("://")
    return f"{scheme}://{role}@{rest.split('@', 1)[1]}"


@pytest.fixture
async def roles() -> AsyncIterator[tuple[str, AsyncEngine]]:
    if not harness.postgres_reachable():
        pytest.skip("PostgreSQL not reachable at 127.0.0.1:5432")
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    admin = create_async_engine(harness.PG_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        public_open = (
            await conn.execute(sa.text("SELECT has_schema_privilege('public', 'public', 'CREATE')"))
        ).scalar()
        await conn.exec_driver_sql(ROLES_SQL.read_text().replace("antifraud_", prefix))
    try:
        yield prefix, admin
    finally:
        async with admin.connect() as conn:
            for service in SERVICES:
                await conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{prefix}{service}" CASCADE')
            for role in [*(prefix + s for s in SERVICES), f"{prefix}migrate"]:
                await conn.exec_driver_sql(f'DROP OWNED BY "{role}" CASCADE')
                await conn.exec_driver_sql(f'DROP ROLE "{role}"')
            if public_open:  # as it was before the script revoked it
                await conn.exec_driver_sql("GRANT CREATE ON SCHEMA public TO PUBLIC")
        await admin.dispose()


async def test_each_service_role_reaches_its_own_schema_only(
    roles: tuple[str, AsyncEngine],
) -> None:
    prefix, admin = roles
    for service in SERVICES:
        versions = registry.migrations(service)
        assert versions is not None
        migrator = Database(service, url=url_as(f"{prefix}migrate"), schema=prefix + service)
        try:
            await migrator.migrate(versions)
        finally:
            await migrator.dispose()
    for service in SERVICES:
        own, role = prefix + service, prefix + service
        db = Database(service, url=url_as(role), schema=own)
        try:
            # What every service does as it starts: a no-op at head, without DDL rights.
            await db.migrate(registry.migrations(service))  # type: ignore[arg-type]
            async with db.read() as conn:
                assert (
                    await conn.execute(sa.text("SELECT count(*) FROM alembic_version"))
                ).scalar() == 1
            other = prefix + next(s for s in SERVICES if s != service)
            async with db.engine.connect() as conn:
                with pytest.raises(DBAPIError, match="permission denied"):
                    await conn.execute(sa.text(f'SELECT * FROM "{other}".alembic_version'))
            async with db.engine.connect() as conn:
                with pytest.raises(DBAPIError, match="permission denied"):
                    await conn.execute(sa.text(f'CREATE TABLE "{own}".intruder (i int)'))
        finally:
            await db.dispose()
        async with admin.connect() as conn:
            tables = (
                (
                    await conn.execute(
                        sa.text("SELECT tablename FROM pg_tables WHERE schemaname = :s"), {"s": own}
                    )
                )
                .scalars()
                .all()
            )
            assert len(tables) > 1, service
            for table in tables:
                # has_table_privilege with a list is true when any one is held: ask each.
                for right, wanted in RIGHTS.items():
                    held = await conn.execute(
                        sa.text("SELECT has_table_privilege(:r, :t, :p)"),
                        {"r": role, "t": f'"{own}"."{table}"', "p": right},
                    )
                    assert held.scalar() is wanted, f"{service}: {right} on {table}"
            owner = await conn.execute(
                sa.text("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = :s"),
                {"s": own},
            )
            assert owner.scalar() == f"{prefix}migrate"
