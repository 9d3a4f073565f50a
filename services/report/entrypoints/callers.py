"""The caller of an RPC, request ids scoped to it, and creates run once per request id:
shared by the report service's servicers."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from google.protobuf.message import Message

from services.common import principals
from services.common.db import UnitOfWork
from services.common.errors import PermissionDenied
from services.common.idempotency import run_once
from services.common.principals import InvalidPrincipal, Principal
from services.report.adapters import tables
from services.report.domain import access
from services.report.service_layer.unit_of_work import again_on_deadlock

U = TypeVar("U", bound=UnitOfWork)
R = TypeVar("R", bound=Message)

# Request ids are scoped to the caller: the same UUID from two principals is two
# requests, so nobody can read another's response by reusing their request id.
_SCOPE = uuid.UUID("0b9e6d0e-5a43-4c1e-9f55-5d2f6f1b7a10")


def caller() -> Principal:
    try:
        return principals.current()
    except InvalidPrincipal:
        raise PermissionDenied("the caller's principal is not one this service knows") from None


def scoped(request_id: str, who: Principal) -> str:
    return str(uuid.uuid5(_SCOPE, f"{access.reporter(who)}\n{request_id}"))


async def once(
    uow_factory: Callable[[], U],
    method: str,
    request_id: str,
    who: Principal,
    request: Message,
    response_type: type[R],
    work: Callable[[U], Awaitable[R]],
) -> R:
    """Run a create in one transaction, once per (caller, request id) (AIP-155); the whole
    transaction again when the database picked it as a deadlock victim."""
    return await again_on_deadlock(
        lambda: run_once(
            uow_factory,
            tables.idempotency,
            method,
            scoped(request_id, who),
            request,
            response_type,
            work,
        )
    )
