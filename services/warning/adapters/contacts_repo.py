"""Contacts between numbers as counts per pair and day; pruned past the retention window."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.retention import delete_batch
from services.warning.adapters.sql import greatest, insert_for
from services.warning.adapters.tables import contact_pairs, fanout_targets
from services.warning.domain.contacts import PairCounts, PairDay

c = contact_pairs.c


async def add(conn: AsyncConnection, counts: dict[PairDay, PairCounts]) -> None:
    """Add counts to what is stored: one upsert per pair-day, in one executemany."""
    if not counts:
        return
    insert = insert_for(conn, contact_pairs)
    statement = insert.on_conflict_do_update(
        index_elements=[c.number_a, c.number_b, c.day],
        set_={
            "calls": c.calls + insert.excluded.calls,
            "sms": c.sms + insert.excluded.sms,
            "last_time": greatest(conn, c.last_time, insert.excluded.last_time),
        },
    )
    await conn.execute(
        statement,
        [
            {
                "number_a": key.number_a,
                "number_b": key.number_b,
                "day": key.day,
                "calls": n.calls,
                "sms": n.sms,
                "last_time": n.last_time,
            }
            for key, n in sorted(counts.items(), key=lambda kv: (kv[0].number_a, kv[0].number_b))
        ],
    )


async def prune(conn: AsyncConnection, cutoff: datetime, limit: int) -> int:
    """Delete up to ``limit`` pair-days whose latest contact is older than ``cutoff``."""
    return await delete_batch(conn, contact_pairs, c.last_time < cutoff, limit)


async def snapshot_contacts(
    conn: AsyncConnection, fanout_id: str, phone_number: str, since: datetime
) -> int:
    """Copy every number in contact with ``phone_number`` since ``since`` into the fan-out's
    targets, with how often and how lately: one INSERT ... SELECT, whatever the count."""
    as_a = sa.select(
        c.number_b.label("contact"), (c.calls + c.sms).label("n"), c.last_time.label("last_time")
    ).where(c.number_a == phone_number, c.last_time >= since)
    as_b = sa.select(
        c.number_a.label("contact"), (c.calls + c.sms).label("n"), c.last_time.label("last_time")
    ).where(c.number_b == phone_number, c.last_time >= since)
    both = sa.union_all(as_a, as_b).subquery()
    grouped = sa.select(
        sa.literal(fanout_id, sa.String),
        both.c.contact,
        sa.func.sum(both.c.n),
        sa.func.max(both.c.last_time),
    ).group_by(both.c.contact)
    result = await conn.execute(
        sa.insert(fanout_targets).from_select(
            ["fanout_id", "phone_number", "contact_count", "last_time"], grouped
        )
    )
    return int(result.rowcount)


async def pair_totals(
    conn: AsyncConnection, pairs: Iterable[tuple[str, str]], since: datetime
) -> dict[tuple[str, str], tuple[int, datetime]]:
    """For each unordered pair (``a < b``): contacts since ``since`` and the latest one."""
    found: dict[tuple[str, str], tuple[int, datetime]] = {}
    for a, b in sorted(set(pairs)):
        row = (
            await conn.execute(
                sa.select(sa.func.sum(c.calls + c.sms), sa.func.max(c.last_time)).where(
                    c.number_a == a, c.number_b == b, c.last_time >= since
                )
            )
        ).one()
        if row[0]:
            found[(a, b)] = (int(row[0]), row[1])
    return found
