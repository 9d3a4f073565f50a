"""Who may do what: the checks every handler makes on the calling principal."""

from __future__ import annotations

from services.common.errors import PermissionDenied
from services.common.principals import Principal, Role


def require_self(principal: Principal, user_id: str, *, field: str = "user_id") -> None:
    """Only the citizen themselves (or a trusted internal service) may act as ``user_id``."""
    if not principal.acts_for(user_id):
        raise PermissionDenied(f"{field} must be the calling citizen's own user id")


def require_role(principal: Principal, *roles: Role) -> None:
    if principal.role not in roles:
        raise PermissionDenied(f"not allowed for {principal.role.value} callers")
