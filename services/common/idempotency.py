"""AIP-155 request ids: a repeat of a create returns the first response, even at once.

Each service adds ``idempotency_table`` to its metadata. A request id is first
*claimed* (a row whose response is PENDING), then the response replaces the
claim in the transaction that makes the change, so it is stored atomically with
the change it describes.

Twins (the same request id twice at the same time):

- Work done in one transaction (``run_once``): the claim is the transaction's
  first write. On PostgreSQL the twin's claim waits on the key until the first
  commits, then finds its response; SQLite runs writers one at a time anyway.
  Both callers get the identical response.
- Work that spans transactions or calls other services commits its claim first
  (``claim`` then ``commit``): a twin meanwhile is answered ABORTED "in
  progress" (retry later, same request id) and gets the stored response once
  the first has finished. ``release`` drops a claim whose work failed; a claim
  left by a process that died is taken over after CLAIM_TTL.

A request id is remembered for a window (``ANTIFRAUD_IDEMPOTENCY_RETENTION_HOURS``,
24 by default; ``retention_job``): a retry within it gets the first response, the
same id after it is a new request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from google.protobuf.message import Message
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.db import UnitOfWork
from services.common.errors import Conflict
from services.common.retention import RetentionJob, delete_batch

U = TypeVar("U", bound=UnitOfWork)
M = TypeVar("M", bound=Message)
R = TypeVar("R", bound=Message)

#: The response of a claimed request id still being worked on. Never a serialized
#: message: field number 0 does not exist, so no message starts with a zero byte.
PENDING = b"\x00"
#: A claim older than this belongs to work that died with its process.
CLAIM_TTL = timedelta(seconds=60)


class InProgress(Conflict):
    """The request id is being worked on by another call: retry with the same id."""


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


def _key(table: sa.Table, method: str, request_id: str) -> Any:
    return sa.and_(table.c.method == method, table.c.request_id == request_id)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def recall(
    conn: AsyncConnection, table: sa.Table, method: str, request_id: str, print_: str
) -> bytes | None:
    """The first response for this request id, or None when there is none yet.

    The same id with another body is a Conflict; one still being worked on by
    another call is InProgress (both ABORTED).
    """
    row = (
        await conn.execute(
            sa.select(table.c.fingerprint, table.c.response, table.c.create_time).where(
                _key(table, method, request_id)
            )
        )
    ).first()
    if row is None:
        return None
    if row.fingerprint != print_:
        raise Conflict(f"request_id {request_id} was already used with a different request")
    if bytes(row.response) == PENDING:
        if datetime.now(UTC) - _aware(row.create_time) > CLAIM_TTL:
            return None  # abandoned: the caller may claim it again
        raise InProgress(f"request_id {request_id} is still being processed; retry shortly")
    return bytes(row.response)


async def claim(
    conn: AsyncConnection, table: sa.Table, method: str, request_id: str, print_: str
) -> bytes | None:
    """Claim the request id for this call: None when it is ours to do, else the first
    response (after waiting for a twin's transaction on PostgreSQL). Raises like recall."""
    now = datetime.now(UTC)
    values = {
        "method": method,
        "request_id": request_id,
        "fingerprint": print_,
        "response": PENDING,
        "create_time": now,
    }
    insert: Any = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)
    inserted = await conn.execute(insert.values(**values).on_conflict_do_nothing())
    if inserted.rowcount == 1:
        return None
    prior = await recall(conn, table, method, request_id, print_)
    if prior is not None:
        return prior
    # An abandoned claim: take it over, unless another call just did.
    taken = await conn.execute(
        sa.update(table)
        .where(
            _key(table, method, request_id),
            table.c.response == PENDING,
            table.c.create_time < now - CLAIM_TTL,
        )
        .values(create_time=now)
    )
    if taken.rowcount == 1:
        return None
    raise InProgress(f"request_id {request_id} is still being processed; retry shortly")


async def claim_many(
    conn: AsyncConnection, table: sa.Table, method: str, claims: Sequence[tuple[str, str]]
) -> set[str]:
    """Claim many request ids, each ``(request_id, fingerprint)``, in one statement; returns
    those claimed now. Any other was claimed or answered before: ``claim`` it alone to find
    its first response (or the reason there is none)."""
    if not claims:
        return set()
    rows = claim_rows(method, claims)
    # One row a plain execute, more one multi-row INSERT (SQLAlchemy's "insertmanyvalues"):
    # either way a statement compiled once, not a VALUES list compiled again on every call.
    claimed = await conn.execute(_claim_statement(conn, table), rows[0] if len(rows) == 1 else rows)
    return set(claimed.scalars())


def claim_rows(method: str, claims: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """The rows ``claim_many`` inserts, one per request id (a request id twice: the first
    one's claim)."""
    now = datetime.now(UTC)
    prints: dict[str, str] = {}
    for request_id, print_ in claims:
        prints.setdefault(request_id, print_)
    return [
        {
            "method": method,
            "request_id": request_id,
            "fingerprint": print_,
            "response": PENDING,
            "create_time": now,
        }
        for request_id, print_ in prints.items()
    ]


#: ``claim_many``'s and ``remember_many``'s statements, by database and table, built once.
_STATEMENTS: dict[tuple[str, str, sa.Table], Any] = {}


def _claim_statement(conn: AsyncConnection, table: sa.Table) -> Any:
    key = ("claim", conn.dialect.name, table)
    found = _STATEMENTS.get(key)
    if found is None:
        insert = (postgresql.insert if key[1] == "postgresql" else sqlite.insert)(table)
        found = _STATEMENTS[key] = insert.on_conflict_do_nothing().returning(table.c.request_id)
    return found


def remember_statement(table: sa.Table) -> Any:
    """``remember_many``'s statement (its parameters: ``remember_params``)."""
    key = ("remember", "", table)
    found = _STATEMENTS.get(key)
    if found is None:
        found = _STATEMENTS[key] = (
            sa.update(table)
            .where(
                table.c.method == sa.bindparam("b_method"),
                table.c.request_id == sa.bindparam("b_request_id"),
                table.c.response == PENDING,
            )
            .values(
                fingerprint=sa.bindparam("b_fingerprint"),
                response=sa.bindparam("b_response"),
                create_time=sa.bindparam("b_create_time", type_=table.c.create_time.type),
            )
        )
    return found


async def remember(
    conn: AsyncConnection,
    table: sa.Table,
    method: str,
    request_id: str,
    print_: str,
    response: Message,
) -> None:
    """Store the response under the request id (replacing this call's claim, if any)."""
    data = response.SerializeToString(deterministic=True)
    updated = await conn.execute(
        sa.update(table)
        .where(_key(table, method, request_id), table.c.response == PENDING)
        .values(fingerprint=print_, response=data, create_time=datetime.now(UTC))
    )
    if updated.rowcount == 0:
        await conn.execute(
            sa.insert(table).values(
                method=method,
                request_id=request_id,
                fingerprint=print_,
                response=data,
                create_time=datetime.now(UTC),
            )
        )


async def remember_many(
    conn: AsyncConnection,
    table: sa.Table,
    method: str,
    answered: Sequence[tuple[str, str, Message]],
) -> None:
    """Store the responses of many claims of this transaction in one statement, each
    ``(request_id, fingerprint, response)`` replacing its own claim (``claim`` first)."""
    if not answered:
        return
    params = remember_params(method, answered)
    await conn.execute(remember_statement(table), params[0] if len(params) == 1 else params)


def remember_params(
    method: str, answered: Sequence[tuple[str, str, Message]]
) -> list[dict[str, Any]]:
    """The parameters of ``remember_statement`` for each ``(request_id, fingerprint,
    response)``."""
    now = datetime.now(UTC)
    return [
        {
            "b_method": method,
            "b_request_id": request_id,
            "b_fingerprint": print_,
            "b_response": response.SerializeToString(deterministic=True),
            "b_create_time": now,
        }
        for request_id, print_, response in answered
    ]


async def release(conn: AsyncConnection, table: sa.Table, method: str, request_id: str) -> None:
    """Drop this call's claim: its work failed, a retry with the same id may do it."""
    await conn.execute(
        sa.delete(table).where(_key(table, method, request_id), table.c.response == PENDING)
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
    ``work``; with another body it is a Conflict. Twins run one after the other:
    the claim is the transaction's first write, so the second waits for the first
    and returns its response.
    """
    print_ = fingerprint(request)
    async with uow_factory() as uow:
        # The claim alone: a new request id (nearly every call) costs one statement, not a
        # look-up and then an insert; a repeat finds its first response through the claim.
        prior = await claim(uow.conn, table, method, request_id, print_)
        if prior is not None:
            return response_type.FromString(prior)
        response = await work(uow)
        await remember(uow.conn, table, method, request_id, print_, response)
        await uow.commit()
        return response
