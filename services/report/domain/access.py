"""What a caller may do with reports and cases, and the key their reports count under.

Who the caller is comes from :mod:`services.common.principals`; these are the
report service's own rules on top of it.
"""

from __future__ import annotations

from services.common.principals import Principal, Role

#: The one reporter every anonymous report counts under, however many apps send them.
ANONYMOUS = "anonymous"


def reporter(caller: Principal) -> str:
    """The key reports are counted under: one per person, one for all anonymous reports."""
    return ANONYMOUS if caller.anonymous else caller.audit_actor


def may_see(caller: Principal, filed_by: str) -> bool:
    """Staff see everything; others only what they filed under their own name."""
    return caller.staff or (not caller.anonymous and filed_by == reporter(caller))


def may_file_case(caller: Principal) -> bool:
    """A case needs a victim we can reach: a registered citizen, or staff on their behalf."""
    return caller.staff or (caller.role is Role.CITIZEN and not caller.anonymous)


def rate_limited(caller: Principal) -> bool:
    """Staff are not limited (a hotline analyst files many reports); everyone else is."""
    return not caller.staff


def victim_user_id(filer: str) -> str:
    """The app user a case's filer is, when a citizen filed it (else empty: staff filed it
    at the counter, and the victim has no app to be told in)."""
    role, _, subject = filer.partition(":")
    return subject if role == "citizen" else ""
