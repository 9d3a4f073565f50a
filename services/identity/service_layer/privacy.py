"""A user's rights over their data (PIPL): export everything in clear, and erasure.

Both are for the person themselves, composed by the gateway (internal callers only).
The export reveals through the repository, so every value read in clear has its audit
event, committed before the values leave. Erasure deletes the user's rows; the audit
log (ids, never values) is kept, with an event for the erasure itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from services.common import context
from services.common.indicators import Indicator, IndicatorKind
from services.identity.adapters import tables as t
from services.identity.adapters.repository import user_record, utc
from services.identity.domain.accounts import Confirmation
from services.identity.domain.audit import AuditEvent
from services.identity.domain.users import Revealed, User
from services.identity.domain.verification import VerificationRequest
from services.identity.service_layer.deps import Deps

EXPORT_PURPOSE = "export requested by the person"


@dataclass(frozen=True)
class ExportedAccount:
    account: Indicator
    confirmation: Confirmation
    create_time: datetime


@dataclass(frozen=True)
class Export:
    user: User
    revealed: Revealed
    accounts: list[ExportedAccount]
    outgoing: list[VerificationRequest]
    incoming: list[VerificationRequest]
    blocked: list[str]


async def export(deps: Deps, user_id: str) -> Export | None:
    """Everything held about ``user_id``; None for an unknown user."""
    now = deps.clock()
    actor = f"citizen:{user_id}"
    request_id = context.current_request_id()
    async with deps.uow() as uow:
        repo = uow.repo
        user = await repo.get_user(user_id)
        if user is None:
            return None
        revealed = await repo.reveal(
            user_id,
            ("name", "id_number", "phone"),
            actor=actor,
            purpose=EXPORT_PURPOSE,
            request_id=request_id,
            now=now,
        )
        assert revealed is not None
        a = t.bound_accounts
        rows = (
            await uow.conn.execute(
                sa.select(a.c.id, a.c.kind, a.c.account_sealed, a.c.confirmation, a.c.create_time)
                .where(a.c.user_id == user_id)
                .order_by(a.c.create_time, a.c.id)
            )
        ).all()
        accounts = []
        for row in rows:
            await repo.add_audit(
                AuditEvent(
                    actor=actor,
                    record=f"{user_record(user_id)}/accounts/{row.id}",
                    fields=("account",),
                    purpose=EXPORT_PURPOSE,
                    request_id=request_id,
                    event_time=now,
                )
            )
            value = deps.vault.open(
                bytes(row.account_sealed), place=f"bound_accounts.account:{row.id}"
            )
            accounts.append(
                ExportedAccount(
                    Indicator(IndicatorKind(row.kind), value),
                    Confirmation(row.confirmation),
                    utc(row.create_time),
                )
            )
        vr = t.verification_requests
        columns = repo._REQUEST_COLUMNS
        outgoing = [
            repo._request(r._mapping)
            for r in await uow.conn.execute(
                sa.select(*columns).where(vr.c.requester_id == user_id).order_by(vr.c.create_time)
            )
        ]
        phone_hmac = await repo.user_phone_index(user_id)
        incoming = [
            repo._request(r._mapping)
            for r in await uow.conn.execute(
                sa.select(*columns)
                .where(vr.c.target_phone_hmac == phone_hmac)
                .order_by(vr.c.create_time)
            )
        ]
        blocked = list(
            (
                await uow.conn.execute(
                    sa.select(t.blocks.c.requester_id).where(t.blocks.c.blocker_id == user_id)
                )
            ).scalars()
        )
        # The audit events are durable before any value leaves the service.
        await uow.commit()
    return Export(user, revealed, accounts, outgoing, incoming, blocked)


async def erase(deps: Deps, user_id: str) -> int | None:
    """Delete the user and everything tied to them; None for an unknown user."""
    now = deps.clock()
    async with deps.uow() as uow:
        repo = uow.repo
        phone_hmac = await repo.user_phone_index(user_id)
        if phone_hmac is None:
            return None
        vr, b = t.verification_requests, t.blocks
        deleted = 0
        for statement in (
            sa.delete(b).where(sa.or_(b.c.blocker_id == user_id, b.c.requester_id == user_id)),
            sa.delete(t.bound_accounts).where(t.bound_accounts.c.user_id == user_id),
            # Requests to the user's number hold it (sealed): they go with the person.
            sa.delete(vr).where(
                sa.or_(vr.c.requester_id == user_id, vr.c.target_phone_hmac == phone_hmac)
            ),
            # Others' requests this user answered from another number keep no link to them.
            sa.update(vr).where(vr.c.responder_id == user_id).values(responder_id=None),
            sa.delete(t.payee_check_consents).where(t.payee_check_consents.c.user_id == user_id),
            sa.delete(t.users).where(t.users.c.id == user_id),
        ):
            deleted += int((await uow.conn.execute(statement)).rowcount)
        await repo.add_audit(
            AuditEvent(
                actor=f"citizen:{user_id}",
                record=user_record(user_id),
                fields=("name", "id_number", "phone", "accounts", "requests"),
                purpose="erasure requested by the person",
                request_id=context.current_request_id(),
                event_time=now,
            )
        )
        await uow.commit()
    return deleted
