"""The knowledge context's unit of work: one transaction and the repository on it."""

from __future__ import annotations

from services.common.db import UnitOfWork
from services.report.knowledge.adapters.repository import KnowledgeRepository


class KnowledgeUnitOfWork(UnitOfWork):
    @property
    def repo(self) -> KnowledgeRepository:
        return KnowledgeRepository(self.conn)
