"""Who is calling, as the gateway states it in ``x-principal``, and what each kind may do.

Formats: ``citizen:<user_id>``, ``analyst:<id>``, ``bank:<id>``, ``carrier:<id>``,
``admin:<id>``. An empty principal is a call from another service inside the
suite and is trusted. Anything else is refused rather than guessed at.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class PrincipalKind(enum.Enum):
    INTERNAL = "internal"
    CITIZEN = "citizen"
    ANALYST = "analyst"
    BANK = "bank"
    CARRIER = "carrier"
    ADMIN = "admin"


class InvalidPrincipal(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    id: str = ""

    @classmethod
    def parse(cls, raw: str) -> Principal:
        if not raw:
            return cls(PrincipalKind.INTERNAL)
        kind_text, sep, ident = raw.partition(":")
        try:
            kind = PrincipalKind(kind_text)
        except ValueError:
            raise InvalidPrincipal("unknown principal kind") from None
        if not sep or kind is PrincipalKind.INTERNAL:
            raise InvalidPrincipal("malformed principal")
        if not ident and kind is not PrincipalKind.CITIZEN:
            # Only a citizen may be anonymous (an app not yet registered).
            raise InvalidPrincipal("malformed principal")
        return cls(kind, ident)

    @property
    def trusted(self) -> bool:
        """Internal services and administrators may act on any record."""
        return self.kind in (PrincipalKind.INTERNAL, PrincipalKind.ADMIN)

    @property
    def is_staff(self) -> bool:
        """May read any record and the audit log."""
        return self.trusted or self.kind is PrincipalKind.ANALYST

    def acts_for(self, user_id: str) -> bool:
        """True when the caller may act as ``user_id``: that citizen, or a trusted service."""
        if self.kind is PrincipalKind.CITIZEN:
            return bool(self.id) and self.id == user_id
        return self.kind is PrincipalKind.INTERNAL

    def audit_actor(self) -> str:
        """How the caller is named in the audit log."""
        if self.kind is PrincipalKind.INTERNAL:
            return "internal"
        return f"{self.kind.value}:{self.id}"
