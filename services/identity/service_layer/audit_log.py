"""Reading the audit log: staff see every read; a citizen sees the reads of their own record."""

from __future__ import annotations

from services.common import pagination
from services.common.errors import PermissionDenied
from services.common.principals import Principal, Role
from services.identity.adapters.repository import user_record
from services.identity.domain.audit import AuditEvent
from services.identity.service_layer.deps import Deps


async def list_audit_events(
    deps: Deps,
    principal: Principal,
    record: str,
    actor: str,
    page_size: int,
    page_token: str,
) -> tuple[list[AuditEvent], str]:
    if principal.role is Role.CITIZEN:
        own = user_record(principal.subject)
        if record and record != own:
            raise PermissionDenied("citizens may list only the reads of their own record")
        record = own
    elif not principal.staff:
        raise PermissionDenied(f"not allowed for {principal.role.value} callers")
    before = pagination.decode_before(page_token)
    async with deps.uow() as uow:
        events = await uow.repo.list_audit(
            record=record or None, actor=actor or None, before_id=before, limit=page_size + 1
        )
    token = ""
    if len(events) > page_size:
        events = events[:page_size]
        token = pagination.encode({"before": events[-1].id})
    return events, token
