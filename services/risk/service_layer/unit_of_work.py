"""The risk service's unit of work: one transaction and the repository on it."""

from __future__ import annotations

from services.common.db import UnitOfWork
from services.risk.adapters.repository import RiskRepository


class RiskUnitOfWork(UnitOfWork):
    @property
    def repo(self) -> RiskRepository:
        return RiskRepository(self.conn)
