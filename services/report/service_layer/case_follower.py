"""Keeps the case board in step with the banks between anyone's reads.

A bank's answer lands at the warning service; GetCase reads it on demand, and this loop
does the same for every open case in turn, a page per step (newest first, wrapping
around), so the statuses the board filters on move within seconds of the bank's answer
even when no one opens the case. Every replica may run it: the updates are idempotent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from services.common.db import Database
from services.report.adapters.repository import CaseFilter, Position, ReportRepository
from services.report.domain.model import CaseStatus
from services.report.service_layer.cases import CaseOrders, refresh

#: Cases whose orders may still move.
FOLLOWED = (CaseStatus.FILED, CaseStatus.ORDERS_SENT, CaseStatus.HELD)


class CaseFollower:
    def __init__(
        self,
        db: Database,
        orders: CaseOrders,
        *,
        interval: float = 2.0,
        batch: int = 50,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = db
        self.orders = orders
        self.interval = interval
        self.batch = batch
        self.clock = clock
        self._after: Position | None = None

    async def step(self) -> float:
        """Refresh one page of open cases; the next step takes the next page."""
        async with self.db.read() as conn:
            page = await ReportRepository(conn).list_cases(
                CaseFilter(statuses=FOLLOWED), self._after, self.batch
            )
        for case in page:
            await refresh(self.db, case, self.orders, self.clock())
        self._after = (
            Position(page[-1].create_time, page[-1].id) if len(page) == self.batch else None
        )
        return self.interval
