"""Who may read or answer which warnings: a citizen only their own; staff and internal
services (no principal) any. The gateway checks this first; the service checks again,
so a caller that reaches it another way gets no further."""

from __future__ import annotations

from services.common import principals
from services.common.errors import PermissionDenied
from services.common.principals import InvalidPrincipal, Role


def require_self_or_staff(user_id: str | None) -> None:
    try:
        who = principals.current()
    except InvalidPrincipal:
        raise PermissionDenied("the caller's principal is not one this service knows") from None
    if who.role is Role.CITIZEN:
        if not who.acts_for(user_id or ""):
            raise PermissionDenied("citizens may only see and answer their own warnings")
    elif not who.staff:
        raise PermissionDenied(f"role {who.role} may not read warnings")


def require_internal(why: str) -> None:
    """Only another service of the suite (no principal) may call this."""
    try:
        who = principals.current()
    except InvalidPrincipal:
        raise PermissionDenied("the caller's principal is not one this service knows") from None
    if who.role is not Role.INTERNAL:
        raise PermissionDenied(why)
