"""The records of screened events with side effects: one per carrier and event id."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.retention import delete_batch
from services.warning.adapters.sql import chunks, insert_for
from services.warning.adapters.tables import screenings

s = screenings.c


@dataclass(frozen=True)
class ScreeningRow:
    carrier: str
    event_id: str
    action: int
    level: int
    #: The warning this event leads to, chosen before the record is written (so the record
    #: needs no second statement); corrected by ``set_warnings`` when it is another.
    warning_id: str | None = None


async def claim(
    conn: AsyncConnection, rows: Sequence[ScreeningRow], now: datetime
) -> set[tuple[str, str]]:
    """Insert the records not yet held; returns the (carrier, event id) pairs inserted now.

    A record another transaction holds (a repeat, or a twin on another replica) is left as
    it is: its side effects are that transaction's.
    """
    won: set[tuple[str, str]] = set()
    for chunk in chunks(rows, 500):
        statement = (
            insert_for(conn, screenings)
            .values(
                [
                    {
                        "carrier": r.carrier,
                        "event_id": r.event_id,
                        "action": r.action,
                        "level": r.level,
                        "warning_id": r.warning_id,
                        "create_time": now,
                    }
                    for r in chunk
                ]
            )
            .on_conflict_do_nothing(index_elements=[s.carrier, s.event_id])
            .returning(s.carrier, s.event_id)
        )
        won.update((r.carrier, r.event_id) for r in await conn.execute(statement))
    return won


async def set_warnings(conn: AsyncConnection, warned: dict[tuple[str, str], str | None]) -> None:
    if warned:
        await conn.execute(
            sa.update(screenings)
            .where(s.carrier == sa.bindparam("b_carrier"), s.event_id == sa.bindparam("b_event"))
            .values(warning_id=sa.bindparam("b_warning")),
            [
                {"b_carrier": c, "b_event": e, "b_warning": w}
                for (c, e), w in sorted(warned.items(), key=lambda kv: kv[0])
            ],
        )


async def warnings_of(
    conn: AsyncConnection, carrier: str, event_ids: Sequence[str]
) -> dict[str, str | None]:
    """The warning each recorded event led to (None when none), by event id."""
    found: dict[str, str | None] = {}
    for chunk in chunks(sorted(set(event_ids))):
        query = sa.select(s.event_id, s.warning_id).where(
            s.carrier == carrier, s.event_id.in_(chunk)
        )
        found.update({r.event_id: r.warning_id for r in await conn.execute(query)})
    return found


async def prune(conn: AsyncConnection, cutoff: datetime, limit: int) -> int:
    return await delete_batch(conn, screenings, s.create_time < cutoff, limit)
