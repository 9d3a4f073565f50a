"""Database access shared by every service: engine, migrations, unit of work.

Each service owns its own database: a SQLite file by default, or a schema of
its own on PostgreSQL. Handlers work inside a ``UnitOfWork``: leaving the block
without ``commit()`` rolls everything back.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from services.common import config, keys
from services.common.files import private_file
from services.common.vault import Vault, attach

ALEMBIC_DIR = Path(__file__).with_name("alembic")

#: Services whose tables hold sealed values: their database comes with their keys.
SEALING_SERVICES = frozenset({"identity", "report", "warning"})


class Database:
    """A service's database: its engine, its schema and its migrations."""

    def __init__(
        self,
        service: str,
        url: str | None = None,
        schema: str | None = None,
        *,
        vault: Vault | None = None,
    ) -> None:
        self.service = service
        self.url = url or config.database_url(service)
        self.is_sqlite = self.url.startswith("sqlite")
        self.schema = schema if schema is not None else config.database_schema(service)
        self.engine = self._create_engine()
        self._vault: Vault | None = None
        if vault is not None:
            self.attach_vault(vault)
        elif service in SEALING_SERVICES:
            # ANTIFRAUD_<SERVICE>_DATA_KEYS / _INDEX_KEY, else the keys dir (keys.py); loaded
            # when first needed, so that ``antifraud migrate`` needs no keys.
            attach(self.engine, self._load_vault)

    def _load_vault(self) -> Vault:
        if self._vault is None:
            self._vault = Vault(keys.load_service(self.service))
        return self._vault

    @property
    def vault(self) -> Vault | None:
        """The service's vault; None for a service that seals nothing."""
        if self._vault is None and self.service in SEALING_SERVICES:
            return self._load_vault()
        return self._vault

    def attach_vault(self, vault: Vault) -> None:
        """The service's keys, for its sealed columns (``services.common.sealed``)."""
        self._vault = vault
        attach(self.engine, vault)

    def _create_engine(self) -> AsyncEngine:
        if self.is_sqlite:
            database = make_url(self.url).database
            if database and database != ":memory:":
                # 0600 in a 0700 directory before SQLite opens it; its -wal and -shm
                # files take the database file's mode.
                private_file(Path(database))
            engine = create_async_engine(self.url, connect_args={"timeout": 30})
            _sqlite_write_transactions(engine)
            return engine
        connect_args: dict[str, Any] = {}
        if self.schema:
            connect_args["server_settings"] = {"search_path": self.schema}
        return create_async_engine(
            self.url,
            connect_args=connect_args,
            pool_size=10,
            max_overflow=10,
            pool_pre_ping=True,
        )

    async def migrate(self, versions: Path, revision: str = "head") -> None:
        """Bring the schema to the newest revision (or ``revision``); safe to run from many
        replicas at once."""
        cfg = Config()
        cfg.set_main_option("script_location", str(ALEMBIC_DIR))
        cfg.set_main_option("version_locations", str(versions))
        cfg.set_main_option("path_separator", "os")
        async with self.engine.connect() as conn:
            if not self.is_sqlite:
                # One migrator at a time per service; the others wait, then find nothing to do.
                key = int.from_bytes(hashlib.sha256(self.service.encode()).digest()[:4], "big")
                await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
                if self.schema:
                    await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
                await conn.commit()

            def upgrade(sync_conn: Connection) -> None:
                cfg.attributes["connection"] = sync_conn
                command.upgrade(cfg, revision)

            try:
                await conn.run_sync(upgrade)
                await conn.commit()
            finally:
                if not self.is_sqlite:
                    await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    await conn.commit()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reading only: on SQLite it does not take the write lock."""
        async with self.engine.connect() as conn:
            yield await conn.execution_options(antifraud_readonly=True)

    async def dispose(self) -> None:
        await self.engine.dispose()


def _sqlite_write_transactions(engine: AsyncEngine) -> None:
    """SQLite: WAL, foreign keys, and BEGIN IMMEDIATE so two writers wait instead of failing."""

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Connection) -> None:
        readonly = conn.get_execution_options().get("antifraud_readonly", False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


class UnitOfWork:
    """One transaction. ``commit()`` makes it durable; leaving without it rolls back."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._conn: AsyncConnection | None = None

    @property
    def conn(self) -> AsyncConnection:
        if self._conn is None:
            raise RuntimeError("unit of work used outside its block")
        return self._conn

    @property
    def dialect(self) -> str:
        return self.conn.dialect.name

    async def __aenter__(self) -> Self:
        # The transaction begins with the first statement (BEGIN IMMEDIATE on SQLite).
        self._conn = await self.db.engine.connect()
        return self

    async def commit(self) -> None:
        # No new transaction is begun here: the next statement begins one when it comes,
        # so on SQLite the write lock is not held while the caller does other things.
        await self.conn.commit()

    async def rollback(self) -> None:
        await self.conn.rollback()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self.conn, None
        try:
            await conn.rollback()
        finally:
            await conn.close()
