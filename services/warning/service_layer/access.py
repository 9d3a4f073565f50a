"""Who may read or answer which warnings: a citizen only their own; staff and internal
services any. The gateway checks this first; the service checks again,
so a caller that reaches it another way gets no further."""

from __future__ import annotations

from services.common import principals
from services.common.errors import PermissionDenied
from services.common.principals import Role


def require_self_or_staff(user_id: str | None) -> None:
    who = principals.caller()
    if who.role is Role.CITIZEN:
        if not who.acts_for(user_id or ""):
            raise PermissionDenied("citizens may only see and answer their own warnings")
    elif not who.staff:
        raise PermissionDenied(f"role {who.role} may not read warnings")


def as_partner(field: str, given: str, role: Role) -> str:
    """The partner a request speaks for: a partner's own key names it, never the request.

    A carrier or bank may leave ``field`` empty or name itself; staff and internal
    services name the partner they act on.
    """
    who = principals.caller()
    if who.role is role:
        if given and given != who.subject:
            raise PermissionDenied(f"{field}: a {role} key speaks only for {who.subject}")
        return who.subject
    return given


def as_operator(given: str) -> str:
    """The officer working a task is the analyst whose key makes the call."""
    who = principals.caller()
    if who.role is Role.ANALYST:
        if given and given != who.subject:
            raise PermissionDenied("operator_id: an officer acts only as themselves")
        return who.subject
    return given


def task_region() -> str | None:
    """The region whose tasks the caller works: an officer's key's own region (from its
    signed token), None for every region (officers of no region, administrators, services)."""
    who = principals.caller()
    return who.region if who.role is Role.ANALYST and who.region else None


def bank_scope() -> str | None:
    """The bank whose orders a bank's key may see; None for staff and services (all)."""
    who = principals.caller()
    return who.subject if who.role is Role.BANK else None


def require_internal(why: str) -> None:
    """Only another service of the suite (its own signed token) may call this."""
    who = principals.caller()
    if who.role is not Role.INTERNAL:
        raise PermissionDenied(why)
