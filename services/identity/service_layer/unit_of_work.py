"""The identity service's unit of work: one transaction and the repository on it."""

from __future__ import annotations

from services.common.db import Database, UnitOfWork
from services.identity.adapters.repository import IdentityRepository
from services.identity.adapters.vault import Vault


class IdentityUnitOfWork(UnitOfWork):
    def __init__(self, db: Database, vault: Vault) -> None:
        super().__init__(db)
        self.vault = vault

    @property
    def repo(self) -> IdentityRepository:
        return IdentityRepository(self.conn, self.vault)
