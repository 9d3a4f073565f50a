"""App users' warning profiles: their number, whether they are protected, their guardians."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.db import UnitOfWork
from services.common.errors import AlreadyExists, NotFound
from services.warning.adapters import recipients_repo
from services.warning.domain.model import Recipient

MAX_GUARDIANS = 5


async def upsert(
    uow: UnitOfWork,
    user_id: str,
    phone_number: str,
    protected: bool,
    guardians: tuple[str, ...],
    now: datetime,
    *,
    take_over: bool = False,
    region: str = "",
) -> Recipient:
    holder = await recipients_repo.user_of_phone(uow.conn, phone_number)
    if holder is not None and holder != user_id and take_over:
        # The number changed hands: its former holder keeps a profile but not the number.
        await recipients_repo.release_phone(uow.conn, holder, now)
    elif holder is not None and holder != user_id:
        # Do not say which user holds it: the caller may be probing.
        raise AlreadyExists("the phone number belongs to another registered user")
    await recipients_repo.upsert(uow.conn, user_id, phone_number, protected, guardians, now, region)
    return await get(uow.conn, user_id)


async def get(conn: AsyncConnection, user_id: str) -> Recipient:
    found = await recipients_repo.get(conn, user_id)
    if found is None:
        raise NotFound(f"recipient {user_id} not found")
    return found
