"""A registered citizen as the service handles it: masked forms only.

The plain name, ID number and phone number exist only while a request that
needs them runs (registration, a partner look-up); they are never on a ``User``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.identity.domain.id_number import ResidentId


@dataclass(frozen=True, slots=True)
class User:
    id: str
    masked_name: str
    masked_id_number: str
    masked_phone: str
    face_subject_ref: str
    verify_time: datetime
    create_time: datetime


@dataclass(frozen=True, slots=True)
class NewUser:
    """What registration writes: plain values, sealed by the repository before they are stored."""

    id: str
    name: str
    id_number: ResidentId
    phone_e164: str
    verify_time: datetime

    def __repr__(self) -> str:
        return f"NewUser(id={self.id!r})"


@dataclass(frozen=True, slots=True)
class Revealed:
    """Personal values in clear, read for one purpose and audited; never kept or logged."""

    name: str = ""
    id_number: str = ""
    phone_e164: str = ""

    def __repr__(self) -> str:
        return "Revealed(...)"
