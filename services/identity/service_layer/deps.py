"""Everything a handler needs, wired once by the bootstrap (tests wire their own)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.common.db import Database
from services.identity.adapters.vault import Vault
from services.identity.config import IdentitySettings
from services.identity.service_layer.ports import (
    Banks,
    Carriers,
    ContactChecker,
    FaceVerifier,
    IdentityRegistry,
    RiskChecker,
)
from services.identity.service_layer.unit_of_work import IdentityUnitOfWork


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Deps:
    db: Database
    vault: Vault
    settings: IdentitySettings
    registry: IdentityRegistry
    face: FaceVerifier
    carriers: Carriers
    banks: Banks
    risk: RiskChecker
    clock: Callable[[], datetime] = utc_now
    #: Called after a commit that queued notifications, so they leave at once.
    wake_outbox: Callable[[], None] = field(default=lambda: None)
    #: The warning service's contact records, for the payee decision (None: not asked).
    contacts: ContactChecker | None = None

    def uow(self) -> IdentityUnitOfWork:
        return IdentityUnitOfWork(self.db, self.vault)
