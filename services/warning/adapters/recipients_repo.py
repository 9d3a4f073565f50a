"""Warning profiles of app users: phone number, protection, guardians."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.warning.adapters.sql import chunks, insert_for
from services.warning.adapters.tables import guardians, recipients
from services.warning.domain.model import Person, Recipient


async def get(conn: AsyncConnection, user_id: str) -> Recipient | None:
    row = (await conn.execute(sa.select(recipients).where(recipients.c.user_id == user_id))).first()
    if row is None:
        return None
    found = await _guardians_of(conn, [user_id])
    return Recipient(
        row.user_id,
        row.phone_number,
        row.protected,
        found.get(user_id, ()),
        row.create_time,
        row.update_time,
        row.region or "",
    )


async def user_of_phone(conn: AsyncConnection, phone_number: str) -> str | None:
    user_id: str | None = await conn.scalar(
        sa.select(recipients.c.user_id).where(recipients.c.phone_number == phone_number)
    )
    return user_id


async def release_phone(conn: AsyncConnection, user_id: str, now: datetime) -> None:
    """The user no longer holds their number: a placeholder no number can equal takes its
    place (the column is unique and required), so nothing meant for the number reaches them."""
    placeholder = "rel:" + hashlib.sha256(user_id.encode()).hexdigest()[:16]
    await conn.execute(
        sa.update(recipients)
        .where(recipients.c.user_id == user_id)
        .values(phone_number=placeholder, update_time=now)
    )


async def remove_guardian(conn: AsyncConnection, phone_number: str) -> int:
    """Remove a number from every user's guardians; how many users had it."""
    result = await conn.execute(
        sa.delete(guardians).where(guardians.c.phone_number == phone_number)
    )
    return int(result.rowcount)


async def persons(conn: AsyncConnection, phone_numbers: Iterable[str]) -> dict[str, Person]:
    """The registered users among these numbers, as persons with their guardians."""
    found: dict[str, Person] = {}
    for chunk in chunks(list(phone_numbers)):
        rows = (
            await conn.execute(
                sa.select(
                    recipients.c.user_id,
                    recipients.c.phone_number,
                    recipients.c.protected,
                    recipients.c.region,
                ).where(recipients.c.phone_number.in_(chunk))
            )
        ).all()
        protected = [r.user_id for r in rows if r.protected]
        guardians_of = await _guardians_of(conn, protected) if protected else {}
        for r in rows:
            found[r.phone_number] = Person(
                r.phone_number,
                r.user_id,
                r.protected,
                guardians_of.get(r.user_id, ()),
                r.region or "",
            )
    return found


async def upsert(
    conn: AsyncConnection,
    user_id: str,
    phone_number: str,
    protected: bool,
    guardian_numbers: tuple[str, ...],
    now: datetime,
    region: str = "",
) -> None:
    """Create or replace a profile; the caller has checked the number is not another user's.

    An upsert on the primary key, so two concurrent first registrations do not collide.
    """
    insert = insert_for(conn, recipients)
    await conn.execute(
        insert.values(
            user_id=user_id,
            phone_number=phone_number,
            protected=protected,
            create_time=now,
            update_time=now,
            region=region or None,
        ).on_conflict_do_update(
            index_elements=[recipients.c.user_id],
            set_={
                "phone_number": phone_number,
                "protected": protected,
                "update_time": now,
                "region": region or None,
            },
        )
    )
    await conn.execute(sa.delete(guardians).where(guardians.c.user_id == user_id))
    if guardian_numbers:
        await conn.execute(
            sa.insert(guardians),
            [
                {"user_id": user_id, "phone_number": phone, "position": i}
                for i, phone in enumerate(guardian_numbers)
            ],
        )


async def _guardians_of(conn: AsyncConnection, user_ids: list[str]) -> dict[str, tuple[str, ...]]:
    rows = (
        await conn.execute(
            sa.select(guardians.c.user_id, guardians.c.phone_number)
            .where(guardians.c.user_id.in_(user_ids))
            .order_by(guardians.c.user_id, guardians.c.position)
        )
    ).all()
    found: dict[str, list[str]] = {}
    for r in rows:
        found.setdefault(r.user_id, []).append(r.phone_number)
    return {user: tuple(phones) for user, phones in found.items()}
