"""Who is calling: the one model of a caller, for every service.

A caller is named ``<role>:<subject>``: ``citizen:<user_id>`` (``citizen:`` for an app
not yet registered), ``analyst:<id>``, ``bank:<id>``, ``carrier:<id>``, ``admin:<id>``,
and ``internal:<service>`` for a service of the suite acting on its own behalf. The
name travels only inside a signed token (:mod:`services.common.tokens`): the gateway
signs for API key holders, a service only for itself, so nobody can claim a name by
writing it. Anything else is refused rather than guessed at.

What a role may do with a service's own records (whose report, whose verification)
stays in that service; this module only says who the caller is.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from services.common import context, regions

#: Subjects are user ids (UUIDs), partner and staff ids: a short, plain charset keeps
#: them safe to log, to use as keys and to put back into a header.
_SUBJECT = re.compile(r"[A-Za-z0-9_.@\-]{1,100}")
_SERVICE = re.compile(r"[a-z][a-z0-9\-]{0,30}")


class Role(enum.StrEnum):
    INTERNAL = "internal"
    CITIZEN = "citizen"
    CARRIER = "carrier"
    BANK = "bank"
    ANALYST = "analyst"
    ADMIN = "admin"


class InvalidPrincipal(ValueError):
    """A principal that is not one we know; callers refuse the request."""


@dataclass(frozen=True, slots=True)
class Principal:
    """A caller: its role and, except for internal services, whom it names."""

    role: Role
    #: A citizen's user id (empty while anonymous), a partner or staff id, a service name.
    subject: str = ""
    #: The region an officer's key serves (GB/T 2260); empty for every region. Set by the
    #: key's issuer, carried in the signed token, never taken from a request.
    region: str = ""

    def __post_init__(self) -> None:
        if self.region:
            if self.role is not Role.ANALYST:
                raise InvalidPrincipal("only an officer's key serves a region")
            if regions.problem(self.region) is not None:
                raise InvalidPrincipal("the region is not a GB/T 2260 code")
        if self.role is Role.INTERNAL:
            if self.subject and _SERVICE.fullmatch(self.subject) is None:
                raise InvalidPrincipal("an internal caller is named by its service")
        elif not self.subject:
            # Only a citizen may be anonymous (an app not yet registered).
            if self.role is not Role.CITIZEN:
                raise InvalidPrincipal(
                    f"role {self.role} needs a subject: its partner, staff or user id"
                )
        elif _SUBJECT.fullmatch(self.subject) is None:
            raise InvalidPrincipal("the subject must be 1 to 100 letters, digits or . _ @ -")

    @classmethod
    def parse(cls, raw: str, region: str = "") -> Principal:
        """The principal ``<role>:<subject>`` names (serving ``region``); raises
        InvalidPrincipal.

        Empty is this process itself (background work outside any call).
        """
        if not raw:
            return cls(Role.INTERNAL)
        role_text, sep, subject = raw.partition(":")
        try:
            role = Role(role_text)
        except ValueError:
            raise InvalidPrincipal("unknown role") from None
        if not sep or (role is Role.INTERNAL and not subject):
            raise InvalidPrincipal("malformed principal")
        return cls(role, subject, region)

    @classmethod
    def service(cls, name: str) -> Principal:
        """A service of the suite acting on its own behalf."""
        return cls(Role.INTERNAL, name)

    @property
    def header(self) -> str:
        """The text that :meth:`parse` reads back as this principal."""
        if self.role is Role.INTERNAL and not self.subject:
            return ""
        return f"{self.role}:{self.subject}"

    @property
    def anonymous(self) -> bool:
        """A citizen's app that has not registered yet."""
        return self.role is Role.CITIZEN and not self.subject

    @property
    def trusted(self) -> bool:
        """Internal services and administrators may act on any record."""
        return self.role in (Role.INTERNAL, Role.ADMIN)

    @property
    def staff(self) -> bool:
        """May read any record and review the work of others."""
        return self.trusted or self.role is Role.ANALYST

    def acts_for(self, user_id: str) -> bool:
        """True when the caller may act as ``user_id``: that citizen, or an internal service."""
        if self.role is Role.CITIZEN:
            return bool(self.subject) and self.subject == user_id
        return self.role is Role.INTERNAL

    @property
    def audit_actor(self) -> str:
        """How the caller is named in audit logs."""
        return self.header or Role.INTERNAL.value


def current() -> Principal:
    """The caller of the RPC being served; raises InvalidPrincipal for a malformed one."""
    raw = context.current_principal()
    # The region belongs to the officer whose token carried it: code that speaks as the
    # service itself for a moment (the principal cleared) serves no region.
    region = context.region_var.get() if raw.startswith(f"{Role.ANALYST.value}:") else ""
    return Principal.parse(raw, region)


def caller() -> Principal:
    """The verified caller of the RPC being served; PermissionDenied if it names no one."""
    from services.common.errors import PermissionDenied

    try:
        return current()
    except InvalidPrincipal:
        raise PermissionDenied("the caller's principal is not one this service knows") from None
