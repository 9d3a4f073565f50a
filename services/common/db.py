"""Database access shared by every service: engine, migrations, unit of work.

Each service owns its own database: a SQLite file by default, or a schema of
its own on PostgreSQL. Handlers work inside a ``UnitOfWork``: leaving the block
without ``commit()`` rolls everything back.

A database that is down, refuses or black-holes connections must cost a call
less than its deadline: connecting, waiting for a pooled connection and each
statement are bounded (``ANTIFRAUD_DB_CONNECT_TIMEOUT_SECONDS``, default 2;
``ANTIFRAUD_DB_STATEMENT_TIMEOUT_SECONDS``, default 4, also SQLite's busy
timeout), and the failure is answered UNAVAILABLE (``services.common.errors``).
Migrations run on an engine of their own without these bounds (a replica may
wait for another's migration), and so does ``Database.unbounded()`` for bulk
and offline work.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
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
from sqlalchemy.pool import NullPool

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
        self.connect_timeout = config.env_float("DB_CONNECT_TIMEOUT_SECONDS", 2.0)
        self.statement_timeout = config.env_float("DB_STATEMENT_TIMEOUT_SECONDS", 4.0)
        self.engine = self._create_engine(bounded=True)
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

    def _create_engine(self, *, bounded: bool) -> AsyncEngine:
        """The service's engine (``bounded``: every wait has a limit) or one for migrations."""
        if self.is_sqlite:
            database = make_url(self.url).database
            if database and database != ":memory:":
                # 0600 in a 0700 directory before SQLite opens it; its -wal and -shm
                # files take the database file's mode.
                private_file(Path(database))
            busy = self.statement_timeout if bounded else 60.0
            engine = create_async_engine(
                self.url,
                connect_args={"timeout": busy},
                **({} if bounded else {"poolclass": NullPool}),
            )
            _sqlite_write_transactions(engine, busy)
            return engine
        server_settings: dict[str, str] = {}
        if self.schema:
            server_settings["search_path"] = self.schema
        if not bounded:
            return create_async_engine(
                self.url,
                connect_args={"server_settings": server_settings},
                poolclass=NullPool,
            )
        # The server cancels a statement first (57014, answered UNAVAILABLE); the client's
        # own limit, a little longer, covers a server that does not answer at all.
        server_settings["statement_timeout"] = str(int(self.statement_timeout * 1000))
        return create_async_engine(
            self.url,
            connect_args={
                "server_settings": server_settings,
                "timeout": self.connect_timeout,
                "command_timeout": self.statement_timeout + 1.0,
            },
            pool_size=10,
            max_overflow=10,
            pool_timeout=self.connect_timeout,
            pool_pre_ping=True,
        )

    async def migrate(self, versions: Path, revision: str = "head") -> None:
        """Bring the schema to the newest revision (or ``revision``); safe to run from many
        replicas at once."""
        cfg = Config()
        cfg.set_main_option("script_location", str(ALEMBIC_DIR))
        cfg.set_main_option("version_locations", str(versions))
        cfg.set_main_option("path_separator", "os")
        if self.is_sqlite and make_url(self.url).database in (None, "", ":memory:"):
            await self._migrate(
                self.engine, cfg, revision
            )  # one connection's database: no second engine
            return
        engine = self._create_engine(bounded=False)
        try:
            async with self._sqlite_migration_lock():
                await self._migrate(engine, cfg, revision)
        finally:
            await engine.dispose()

    @contextlib.asynccontextmanager
    async def _sqlite_migration_lock(self) -> AsyncIterator[None]:
        """One migrator at a time on a SQLite file (replicas start together on one machine):
        an exclusive lock on a file beside it, as PostgreSQL's advisory lock does there."""
        database = make_url(self.url).database if self.is_sqlite else None
        if not database:
            yield
            return
        lock = private_file(Path(f"{database}.migrate-lock"))  # 0600, like the database
        with open(lock, "a") as held:  # noqa: ASYNC230 - start-up only
            await asyncio.to_thread(fcntl.flock, held.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(held.fileno(), fcntl.LOCK_UN)

    async def _migrate(self, engine: AsyncEngine, cfg: Config, revision: str) -> None:
        async with engine.connect() as conn:
            if not self.is_sqlite:
                # One migrator at a time per service and schema; the others wait, then find
                # nothing to do. Another schema (another deployment) does not wait.
                scope = f"{self.schema or ''}:{self.service}"
                key = int.from_bytes(hashlib.sha256(scope.encode()).digest()[:4], "big")
                await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
                # Only when missing: CREATE SCHEMA needs CREATE on the database even when the
                # schema exists, which a service's own role does not have (its schema is
                # made and migrated by a migration role: deploy/postgres/roles.sql).
                if self.schema and not await self._schema_exists(conn):
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

    async def _schema_exists(self, conn: AsyncConnection) -> bool:
        found = await conn.execute(
            text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": self.schema}
        )
        return found.first() is not None

    @asynccontextmanager
    async def read(self, *, snapshot: bool = False) -> AsyncIterator[AsyncConnection]:
        """A connection for reading only: on SQLite it does not take the write lock.

        ``snapshot``: every statement sees the database as of the first (PostgreSQL's
        REPEATABLE READ; a read transaction on SQLite always does), for a read of several
        statements that must agree with each other, such as a record and its parts. A
        read-only REPEATABLE READ transaction never fails to serialise."""
        conn = await self.engine.connect()
        options: dict[str, object] = {"antifraud_readonly": True}
        if snapshot and not self.is_sqlite:
            options["isolation_level"] = "REPEATABLE READ"
        try:
            yield await conn.execution_options(**options)
        finally:
            await _release(conn)

    @asynccontextmanager
    async def unbounded(self) -> AsyncIterator[AsyncConnection]:
        """One transaction free of the request path's time limits, for bulk and offline
        work (loading a data set, benchmarks); committed when the block ends cleanly."""
        engine = self._create_engine(bounded=False)
        try:
            async with engine.begin() as conn:
                yield conn
        finally:
            await engine.dispose()

    async def ping(self) -> None:
        """Raise unless the database answers a trivial query within the connect timeout."""
        async with (
            asyncio.timeout(self.connect_timeout + self.statement_timeout),
            self.read() as conn,
        ):
            await conn.execute(text("SELECT 1"))  # a reader: never waits for SQLite's write lock

    async def dispose(self) -> None:
        await self.engine.dispose()


def _sqlite_write_transactions(engine: AsyncEngine, busy_seconds: float) -> None:
    """SQLite: WAL, foreign keys, and BEGIN IMMEDIATE so two writers wait instead of failing."""

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_seconds * 1000)}")
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
        await _release(conn)


async def _release(conn: AsyncConnection) -> None:
    """Roll back and return a connection to the pool, even when the call that used it is
    being cancelled (a client gone, a deadline passed): the clean-up runs to its end in a
    task of its own, so the pool never sees a half-reset connection."""

    async def release() -> None:
        try:
            await conn.rollback()
        finally:
            await conn.close()

    await asyncio.shield(release())
