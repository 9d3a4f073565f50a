"""Who may do what: the checks every handler makes on the calling principal."""

from __future__ import annotations

from services.common.errors import PermissionDenied
from services.identity.domain.principal import Principal, PrincipalKind


def require_self(principal: Principal, user_id: str, *, field: str = "user_id") -> None:
    """Only the citizen themselves (or a trusted internal service) may act as ``user_id``."""
    if not principal.acts_for(user_id):
        raise PermissionDenied(f"{field} must be the calling citizen's own user id")


def require_kind(principal: Principal, *kinds: PrincipalKind) -> None:
    if principal.kind not in kinds:
        raise PermissionDenied(f"not allowed for {principal.kind.value} callers")
