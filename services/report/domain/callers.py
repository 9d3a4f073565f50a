"""Who is calling, read from the principal the gateway set, and what each caller may do.

Principals are ``citizen:<user_id>`` (``citizen:`` for an anonymous citizen),
``analyst:<id>``, ``admin:<id>``, ``bank:<id>`` and ``carrier:<id>``; an empty
principal is an internal service, which is trusted.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

ANONYMOUS = "anonymous"
INTERNAL = "internal"

_ID = re.compile(r"[A-Za-z0-9_.@\-]{1,100}")


class Role(enum.Enum):
    INTERNAL = "internal"
    CITIZEN = "citizen"
    ANALYST = "analyst"
    ADMIN = "admin"
    BANK = "bank"
    CARRIER = "carrier"


@dataclass(frozen=True, slots=True)
class Caller:
    role: Role
    user_id: str = ""

    @classmethod
    def parse(cls, principal: str) -> Caller | None:
        """The caller behind a principal, or None when it is not one we know."""
        if not principal:
            return cls(Role.INTERNAL)
        role_text, _, user_id = principal.partition(":")
        try:
            role = Role(role_text)
        except ValueError:
            return None
        if role is Role.INTERNAL:
            return None  # never spelled out: internal callers send no principal
        if not user_id:
            # Only a citizen may be anonymous; every other role has an id.
            return cls(role) if role is Role.CITIZEN else None
        if _ID.fullmatch(user_id) is None:
            return None
        return cls(role, user_id)

    @property
    def anonymous(self) -> bool:
        return self.role is Role.CITIZEN and not self.user_id

    @property
    def staff(self) -> bool:
        """Analysts, admins and internal services see every report and review them."""
        return self.role in (Role.ANALYST, Role.ADMIN, Role.INTERNAL)

    @property
    def reporter(self) -> str:
        """The key reports are counted under: one per person, one for all anonymous reports."""
        if self.role is Role.INTERNAL:
            return INTERNAL
        if self.anonymous:
            return ANONYMOUS
        return f"{self.role.value}:{self.user_id}"

    def owns(self, reporter: str) -> bool:
        """Whether a report or case filed under ``reporter`` is this caller's own."""
        return not self.anonymous and reporter == self.reporter

    def may_see(self, reporter: str) -> bool:
        return self.staff or self.owns(reporter)

    @property
    def may_file_case(self) -> bool:
        """A case needs a victim we can reach: a registered citizen, or staff on their behalf."""
        return self.staff or (self.role is Role.CITIZEN and not self.anonymous)

    @property
    def rate_limited(self) -> bool:
        """Staff are not limited (a hotline analyst files many reports); everyone else is."""
        return not self.staff
