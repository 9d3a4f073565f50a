"""Handlers for announced calls: an operator announces, the callee checks."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from services.common.principals import Principal
from services.report.knowledge.adapters.repository import KnowledgeRepository
from services.report.knowledge.domain import access
from services.report.knowledge.domain.calls import AnnouncedCall, CallCheck, NewCall
from services.report.knowledge.service_layer.unit_of_work import KnowledgeUnitOfWork
from services.report.service_layer.reports import new_id


class Directory(Protocol):
    """Finds the user registered with a phone number (the identity service)."""

    async def user_of_phone(self, phone_e164: str) -> str | None: ...


async def announce(
    uow: KnowledgeUnitOfWork, caller: Principal, new: NewCall, now: datetime
) -> AnnouncedCall:
    access.require_staff(caller, "announce calls")
    return await uow.repo.insert_call(new_id(), new, caller.audit_actor, now)


async def verify(
    repo: KnowledgeRepository, caller: Principal, caller_number: str, now: datetime
) -> CallCheck:
    """Was a call from ``caller_number`` announced to the asking citizen, and still valid?

    Only the caller's own user id is ever looked up: nothing in the request can point
    at another person.
    """
    callee = access.callee_of(caller)
    return CallCheck(await repo.announced_call(callee, caller_number, now))
