"""Small SQL helpers the repositories share: upserts and row locks on either backend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

T = TypeVar("T")

#: Rows per multi-row statement: well under SQLite's 32,766 and asyncpg's 32,767 parameters.
CHUNK_ROWS = 1000


def insert_for(conn: AsyncConnection, table: sa.Table) -> Any:
    """An INSERT that knows ON CONFLICT, for the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def greatest(conn: AsyncConnection, a: Any, b: Any) -> Any:
    """The larger of two values (SQLite's two-argument max, PostgreSQL's GREATEST)."""
    if conn.dialect.name == "postgresql":
        return sa.func.greatest(a, b)
    return sa.func.max(a, b)


def for_update(conn: AsyncConnection, query: sa.Select[Any]) -> sa.Select[Any]:
    """Row locks that other replicas skip, on PostgreSQL; SQLite serialises writers anyway."""
    if conn.dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True)
    return query


def chunks(items: Sequence[T], size: int = CHUNK_ROWS) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
