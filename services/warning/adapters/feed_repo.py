"""The change-feed follower's state: a leased cursor, and the last level seen per number."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.warning.adapters.sql import chunks, insert_for
from services.warning.adapters.tables import followed_numbers, leases
from services.warning.domain.model import RiskLevel

lc = leases.c


async def acquire(
    conn: AsyncConnection, name: str, holder: str, now: datetime, lease: timedelta
) -> bool:
    """Take or extend the lease ``name``; False while another holder's lease runs."""
    await conn.execute(
        insert_for(conn, leases)
        .values(name=name, holder=None, lease_until=None, cursor=None, update_time=now)
        .on_conflict_do_nothing(index_elements=[lc.name])
    )
    result = await conn.execute(
        sa.update(leases)
        .where(
            lc.name == name,
            sa.or_(lc.holder.is_(None), lc.holder == holder, lc.lease_until < now),
        )
        .values(holder=holder, lease_until=now + lease, update_time=now)
    )
    return bool(result.rowcount)


async def cursor(conn: AsyncConnection, name: str) -> str | None:
    found: str | None = await conn.scalar(sa.select(lc.cursor).where(lc.name == name))
    return found


async def advance(
    conn: AsyncConnection,
    name: str,
    holder: str,
    new_cursor: str | None,
    now: datetime,
    lease: timedelta,
) -> bool:
    """Store the cursor (when given) and extend the lease, only if ``holder`` still holds it.

    Run first in the transaction that applies a batch of changes, so that a follower that
    lost its lease cannot commit the batch.
    """
    values: dict[str, object] = {"lease_until": now + lease, "update_time": now}
    if new_cursor is not None:
        values["cursor"] = new_cursor
    result = await conn.execute(
        sa.update(leases).where(lc.name == name, lc.holder == holder).values(**values)
    )
    return bool(result.rowcount)


async def release(conn: AsyncConnection, name: str, holder: str) -> None:
    await conn.execute(
        sa.update(leases)
        .where(lc.name == name, lc.holder == holder)
        .values(holder=None, lease_until=None)
    )


async def levels(conn: AsyncConnection, phone_numbers: Iterable[str]) -> dict[str, RiskLevel]:
    found: dict[str, RiskLevel] = {}
    n = followed_numbers.c
    for chunk in chunks(sorted(set(phone_numbers))):
        for r in await conn.execute(
            sa.select(n.phone_number, n.level).where(n.phone_number.in_(chunk))
        ):
            found[r.phone_number] = RiskLevel(r.level)
    return found


async def set_levels(conn: AsyncConnection, new: dict[str, RiskLevel], now: datetime) -> None:
    if not new:
        return
    insert = insert_for(conn, followed_numbers)
    await conn.execute(
        insert.on_conflict_do_update(
            index_elements=[followed_numbers.c.phone_number],
            set_={"level": insert.excluded.level, "update_time": insert.excluded.update_time},
        ),
        [{"phone_number": p, "level": int(level), "update_time": now} for p, level in new.items()],
    )
