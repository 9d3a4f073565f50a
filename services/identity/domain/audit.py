"""The audit log: who read which personal values in clear, when and why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class AuditEvent:
    actor: str
    record: str
    fields: tuple[str, ...]
    purpose: str
    request_id: str
    event_time: datetime
    id: int = 0
