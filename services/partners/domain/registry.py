"""The national identity registry's rules: does a name go with an ID number?

Unseeded, every ID number with a valid GB 11643 check character exists, registered
under the first name anyone verified it with; later different names are mismatches.
That keeps demos working with any well-formed number while still saying no to a
second, different name, as the real registry would.
"""

from __future__ import annotations

import enum

from services.common import resident_id
from services.partners.domain.names import same_name


class IdentityMatch(enum.IntEnum):
    """Numbers match antifraud.partner.v1.IdentityMatch."""

    MATCH = 1
    NAME_MISMATCH = 2
    NOT_FOUND = 3


class Registry:
    def __init__(self, name: str = "registry") -> None:
        self.name = name
        self._persons: dict[str, str] = {}

    def reset(self) -> None:
        self._persons.clear()

    def seed_person(self, id_number: str, name: str) -> None:
        self._persons[id_number] = name

    def verify(self, name: str, id_number: str) -> IdentityMatch:
        if not resident_id.checksum_valid(id_number):
            return IdentityMatch.NOT_FOUND
        registered = self._persons.setdefault(id_number, name)
        return IdentityMatch.MATCH if same_name(registered, name) else IdentityMatch.NAME_MISMATCH
