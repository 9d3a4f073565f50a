"""Many new rows into one table, in the caller's transaction, at the driver's own speed.

An ``executemany`` of ``sa.insert(table)`` costs SQLAlchemy's per-row work (parameter
dictionaries processed one by one, then rendered as multi-row VALUES): for a fan-out of
100,000 contacts, writing four tables, it was about half the warning service's CPU time.
Here each column's bind processor (a sealed phone number, a date on SQLite) is applied
once per value, and the rows go to the driver as tuples:

- PostgreSQL: binary ``COPY`` (asyncpg's ``copy_records_to_table``) on the connection's
  own asyncpg connection, inside the transaction SQLAlchemy opened;
- SQLite: one ``executemany`` of a plain ``INSERT`` (the sqlite3 module's loop, in
  aiosqlite's thread, off the event loop).

For rows that are new by construction (fresh ids): there is no ``ON CONFLICT``, so a
repeated key fails the transaction, as a plain INSERT would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.sealed import FixedSealed


def _processors(
    table: sa.Table, names: Sequence[str], dialect: sa.Dialect
) -> list[Callable[[Any], Any] | None]:
    """Each column's bind processor, applied once per distinct object (``_once_per_object``);
    a sealed column's is the vault's own seal (``FixedSealed.sealer``), which remembers
    the numbers it sealed already, with no wrapper around it."""
    found: list[Callable[[Any], Any] | None] = []
    for name in names:
        column_type = table.c[name].type
        if isinstance(column_type, FixedSealed):
            found.append(column_type.sealer(dialect))
            continue
        process = column_type.dialect_impl(dialect).bind_processor(dialect)
        found.append(_once_per_object(process))
    return found


def driver_rows(
    table: sa.Table, names: Sequence[str], rows: Sequence[Mapping[str, Any]], dialect: sa.Dialect
) -> list[tuple[Any, ...]]:
    """The rows as the driver takes them: tuples in the order of ``names``, each value
    through its column's bind processor."""
    # Column by column: a list comprehension per column, then one zip, costs a third of
    # a generator per row over every column.
    return driver_columns(table, names, [[row[name] for row in rows] for name in names], dialect)


def driver_columns(
    table: sa.Table, names: Sequence[str], columns: Sequence[list[Any]], dialect: sa.Dialect
) -> list[tuple[Any, ...]]:
    """``driver_rows`` of rows given column by column: a list of values per name, in the
    order of ``names`` (no mapping made per row first)."""
    if not columns or not columns[0]:
        return []
    made: list[list[Any]] = []
    for values, process in zip(columns, _processors(table, names, dialect), strict=True):
        if process is not None:
            values = [process(v) if v is not None else None for v in values]
        made.append(values)
    return list(zip(*made, strict=True))


def _once_per_object(process: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    """``process``, applied once per distinct object: a chunk's rows share their times (one
    ``now`` object in every row), and formatting a datetime for SQLite, or converting it to
    UTC, was a fifth of a fan-out's CPU. Keyed by identity, so values that are equal but not
    the same (a time in another zone) are each processed; the rows keep every key alive."""
    if process is None:
        return None
    done: dict[int, Any] = {}

    def once(value: Any) -> Any:
        key = id(value)
        if key in done:
            return done[key]
        found = done[key] = process(value)
        return found

    return once


async def insert_rows(
    conn: AsyncConnection, table: sa.Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert ``rows`` (dictionaries with the same keys, column names) into ``table``."""
    if not rows:
        return
    names = list(rows[0])
    await insert_values(conn, table, names, driver_rows(table, names, rows, conn.dialect))


async def insert_values(
    conn: AsyncConnection, table: sa.Table, names: list[str], values: Sequence[tuple[Any, ...]]
) -> None:
    """Insert rows already as the driver takes them (``driver_rows``), made beforehand."""
    if not values:
        return
    if conn.dialect.name == "postgresql":
        await _copy(conn, table, names, values)
        return
    columns = ", ".join(f'"{name}"' for name in names)
    marks = ", ".join("?" for _ in names)
    await conn.exec_driver_sql(
        f'INSERT INTO "{table.name}" ({columns}) VALUES ({marks})',  # noqa: S608 - our names
        values,
    )


async def _copy(
    conn: AsyncConnection, table: sa.Table, names: list[str], values: Sequence[tuple[Any, ...]]
) -> None:
    adapter: Any = (await conn.get_raw_connection()).dbapi_connection
    # SQLAlchemy's asyncpg adapter opens its transaction with the first statement: make
    # sure there was one, so that the COPY is part of the caller's transaction.
    if getattr(adapter, "_transaction", None) is None:
        await conn.exec_driver_sql("SELECT 1")
    # The schema comes from the connection's search_path, as for every other statement.
    await adapter.driver_connection.copy_records_to_table(table.name, records=values, columns=names)
