"""The report service's unit of work: one transaction and the repository on it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError

from services.common.db import Database, UnitOfWork
from services.common.logs import get_logger
from services.report.adapters.repository import ReportRepository

T = TypeVar("T")
log = get_logger("report")

#: PostgreSQL's deadlock_detected and serialization_failure: the transaction was
#: chosen as a victim and is safe to run again from the start.
_RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
ATTEMPTS = 3


class ReportUnitOfWork(UnitOfWork):
    @property
    def repo(self) -> ReportRepository:
        return ReportRepository(self.conn)


def retryable(error: DBAPIError) -> bool:
    return getattr(error.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES


async def again_on_deadlock(run: Callable[[], Awaitable[T]]) -> T:
    """Run a whole transaction, again when the database picked it as a deadlock victim.

    Rows are locked in one order (reporter, indicators by key, reports), but an
    UPDATE of many reports locks them in scan order, so two submissions listing
    different indicators named by the same reports can still meet head-on.
    """
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return await run()
        except DBAPIError as exc:
            if attempt == ATTEMPTS or not retryable(exc):
                raise
            log.warning("transaction retried", attempt=attempt, sqlstate=exc.orig.sqlstate)  # type: ignore[union-attr]
    raise AssertionError("unreachable")


def unit_of_work_factory(db: Database) -> Callable[[], ReportUnitOfWork]:
    return lambda: ReportUnitOfWork(db)
