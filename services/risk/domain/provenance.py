"""Who may assert what: a source's type and id come from the caller's key, never the request.

A bank's key speaks as that bank, a carrier's as that carrier, an analyst's as that
analyst (police analysts confirm as POLICE, and keep the allow list); citizen reports
and cases reach the list only through report intake, which speaks for them.
Administrators may assert anything, as the gateway's policy says.
"""

from __future__ import annotations

from services.common.errors import PermissionDenied
from services.common.principals import Principal, Role
from services.risk.domain.model import SourceType

#: The sources each partner or staff role holds; the first is its own.
_HELD: dict[Role, tuple[SourceType, ...]] = {
    Role.CARRIER: (SourceType.CARRIER,),
    Role.BANK: (SourceType.BANK,),
    Role.ANALYST: (SourceType.ANALYST, SourceType.POLICE, SourceType.ALLOW_LIST),
}
#: What the suite's services assert on behalf of others.
_SERVICE_SOURCES: dict[str, tuple[SourceType, ...]] = {
    "report": (
        SourceType.CITIZEN_REPORTS,
        SourceType.CASE,
        SourceType.ANALYST,
        SourceType.POLICE,
    ),
}


def source_of(
    caller: Principal, source_type: SourceType | None, source_id: str, field: str
) -> tuple[SourceType, str]:
    """The (type, id) ``caller`` asserts as; PermissionDenied for a source it does not hold.

    ``field`` names the request's source fields in the error (``assertion``, ...).
    """
    if caller.role is Role.ADMIN:
        if source_type is None or not source_id:
            raise PermissionDenied(f"{field}: an administrator names the source and its id")
        return source_type, source_id
    if caller.role is Role.INTERNAL:
        allowed = _SERVICE_SOURCES.get(caller.subject, ())
        if source_type is None or source_type not in allowed or not source_id:
            raise PermissionDenied(f"{field}: service {caller.subject} may not assert that source")
        return source_type, source_id
    held = _HELD.get(caller.role, ())
    if not held:
        raise PermissionDenied(f"{field}: role {caller.role} asserts no source")
    chosen = held[0] if source_type is None else source_type
    if chosen not in held:
        names = ", ".join(s.name for s in held)
        raise PermissionDenied(f"{field}.source_type: a {caller.role} key asserts only {names}")
    if source_id and source_id != caller.subject:
        raise PermissionDenied(f"{field}: a {caller.role} key speaks only for {caller.subject}")
    return chosen, caller.subject
