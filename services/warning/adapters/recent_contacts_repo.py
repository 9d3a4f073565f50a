"""A number's recent contact with numbers the risk feed lists at MEDIUM or HIGH: what a
bank's payee decision asks of the contact records (for a payer who consented)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.fraud_types import RiskLevel
from services.warning.adapters.tables import contact_pairs, followed_numbers

c = contact_pairs.c
f = followed_numbers.c


@dataclass(frozen=True)
class RiskyContacts:
    numbers: int
    highest: RiskLevel | None
    last_time: datetime | None


async def risky_contacts(
    conn: AsyncConnection, phone_number: str, since: datetime
) -> RiskyContacts:
    """Distinct counterparts since ``since`` whose last level seen is MEDIUM or HIGH."""
    as_a = sa.select(c.number_b.label("contact"), c.last_time.label("last_time")).where(
        c.number_a == phone_number, c.last_time >= since
    )
    as_b = sa.select(c.number_a.label("contact"), c.last_time.label("last_time")).where(
        c.number_b == phone_number, c.last_time >= since
    )
    both = sa.union_all(as_a, as_b).subquery()
    row = (
        await conn.execute(
            sa.select(
                sa.func.count(sa.distinct(both.c.contact)),
                sa.func.max(f.level),
                sa.func.max(both.c.last_time),
            )
            .select_from(both.join(followed_numbers, f.phone_number == both.c.contact))
            .where(f.level >= int(RiskLevel.MEDIUM))
        )
    ).one()
    count, highest, last = row
    return RiskyContacts(
        int(count or 0),
        RiskLevel(highest) if highest else None,
        last,
    )
