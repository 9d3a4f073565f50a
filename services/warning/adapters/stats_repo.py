"""Counts for analysts: warnings, deliveries and bank orders by state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.warning.adapters.tables import bank_orders, deliveries, warnings
from services.warning.domain.model import BankOrderState, Channel, DeliveryState, WarningState


@dataclass(frozen=True)
class Stats:
    warnings: dict[WarningState, int]
    deliveries: dict[tuple[Channel, DeliveryState], int]
    bank_orders: dict[BankOrderState, int]


async def counts(conn: AsyncConnection, since: datetime | None) -> Stats:
    def since_filter(table: sa.Table) -> sa.ColumnElement[bool]:
        return table.c.create_time >= since if since is not None else sa.true()

    count = sa.func.count()
    warning_rows = await conn.execute(
        sa.select(warnings.c.state, count).where(since_filter(warnings)).group_by(warnings.c.state)
    )
    delivery_rows = await conn.execute(
        sa.select(deliveries.c.channel, deliveries.c.state, count)
        .where(since_filter(deliveries))
        .group_by(deliveries.c.channel, deliveries.c.state)
    )
    order_rows = await conn.execute(
        sa.select(bank_orders.c.state, count)
        .where(since_filter(bank_orders))
        .group_by(bank_orders.c.state)
    )
    return Stats(
        warnings={WarningState[r[0]]: int(r[1]) for r in warning_rows},
        deliveries={(Channel[r[0]], DeliveryState[r[1]]): int(r[2]) for r in delivery_rows},
        bank_orders={BankOrderState[r[0]]: int(r[1]) for r in order_rows},
    )
