"""AIP-155 request ids: a repeat of a create returns the first response.

Each service adds ``idempotency_table`` to its metadata. ``recall`` and
``remember`` run inside the handler's transaction, so the response is stored
atomically with the change it describes.

A request id is remembered for a window (``ANTIFRAUD_IDEMPOTENCY_RETENTION_HOURS``,
24 by default; ``retention_job``): a retry within it gets the first response, the
same id after it is a new request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import sqlalchemy as sa
from google.protobuf.message import Message
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.db import UnitOfWork
from services.common.errors import Conflict
from services.common.retention import RetentionJob, delete_batch

U = TypeVar("U", bound=UnitOfWork)
M = TypeVar("M", bound=Message)
R = TypeVar("R", bound=Message)


def idempotency_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "idempotency_keys",
        metadata,
        sa.Column("method", sa.String(64), primary_key=True),
        sa.Column("request_id", sa.String(36), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("response", sa.LargeBinary, nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Index("ix_idempotency_keys_create_time", "create_time"),
    )


async def prune(conn: AsyncConnection, table: sa.Table, before: datetime, limit: int) -> int:
    """Forget up to ``limit`` request ids first answered before ``before``."""
    return await delete_batch(conn, table, table.c.create_time < before, limit)


def retention_job(table: sa.Table, window: timedelta) -> RetentionJob:
    async def run(conn: AsyncConnection, before: datetime, limit: int) -> int:
        return await prune(conn, table, before, limit)

    return RetentionJob("idempotency_keys", window, run)


def fingerprint(request: Message) -> str:
    return hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()


async def recall(
    conn: AsyncConnection, table: sa.Table, method: str, request_id: str, print_: str
) -> bytes | None:
    """The first response for this request id, or None; the same id with another body conflicts."""
    row = (
        await conn.execute(
            sa.select(table.c.fingerprint, table.c.response).where(
                table.c.method == method, table.c.request_id == request_id
            )
        )
    ).first()
    if row is None:
        return None
    if row.fingerprint != print_:
        raise Conflict(f"request_id {request_id} was already used with a different request")
    return bytes(row.response)


async def remember(
    conn: AsyncConnection,
    table: sa.Table,
    method: str,
    request_id: str,
    print_: str,
    response: Message,
) -> None:
    await conn.execute(
        sa.insert(table).values(
            method=method,
            request_id=request_id,
            fingerprint=print_,
            response=response.SerializeToString(deterministic=True),
            create_time=datetime.now(UTC),
        )
    )


async def run_once(
    uow_factory: Callable[[], U],
    table: sa.Table,
    method: str,
    request_id: str,
    request: M,
    response_type: type[R],
    work: Callable[[U], Awaitable[R]],
) -> R:
    """Run ``work`` in one transaction with its response stored under the request id.

    A repeat with the same body returns the stored response without running
    ``work``; with another body it is a Conflict. Two concurrent first attempts
    race on the primary key: the loser retries and finds the winner's response.
    """
    print_ = fingerprint(request)
    for attempt in range(2):
        async with uow_factory() as uow:
            prior = await recall(uow.conn, table, method, request_id, print_)
            if prior is not None:
                return response_type.FromString(prior)
            response = await work(uow)
            try:
                await remember(uow.conn, table, method, request_id, print_, response)
                await uow.commit()
            except IntegrityError:
                if attempt:
                    raise
                continue
            return response
    raise AssertionError("unreachable")
