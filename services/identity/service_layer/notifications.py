"""Outbox handlers: tell the target of a new request, and the requester of its outcome.

Both go through the warning service's outbound path (app push to a registered
user, SMS to a number). The outbox event carries only the request id; the
target number is read (and audited) when an SMS must go to a number that has
no registered user.
"""

from __future__ import annotations

import json
import uuid

from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.logs import get_logger
from services.common.outbox import OutboxEvent, PermanentFailure, enqueue
from services.identity.adapters import tables
from services.identity.domain import messages
from services.identity.domain.lookups import PartnerFailure
from services.identity.domain.verification import VerificationState
from services.identity.service_layer.deps import Deps
from services.identity.service_layer.ports import NotificationRefused, Notifier, RecipientUnknown

log = get_logger("identity.notifications")

#: Namespace of the request ids we send the warning service: one per event, stable across retries.
_NAMESPACE = uuid.UUID("6f1d8a52-3c1e-4f0a-9a57-0d3c1b9e2a10")


def _request_id(event: OutboxEvent, variant: str = "") -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{event.key}/{variant}" if variant else event.key))


def _verification_id(event: OutboxEvent) -> str:
    try:
        value = json.loads(event.payload)["verification_request"]
    except (ValueError, KeyError, TypeError):
        raise PermanentFailure("malformed event payload") from None
    return str(value)


#: Outbox topic: a notice to a user about their own record (see ``user_notice``).
TOPIC_USER_NOTICE = "user.notice"


async def enqueue_user_notice(conn: AsyncConnection, key: str, user_id: str, text: str) -> None:
    """Queue a notice to a user in the caller's transaction; ``key`` makes it once only."""
    payload = json.dumps({"user_id": user_id, "text": text}).encode()
    await enqueue(conn, tables.outbox, TOPIC_USER_NOTICE, f"{TOPIC_USER_NOTICE}:{key}", payload)


class VerificationNotices:
    def __init__(self, deps: Deps, notifier: Notifier) -> None:
        self.deps = deps
        self.notifier = notifier

    async def invite(self, event: OutboxEvent) -> None:
        deps = self.deps
        verification_id = _verification_id(event)
        now = deps.clock()
        async with deps.uow() as uow:
            repo = uow.repo
            request = await repo.get_request(verification_id)
            if request is None:
                raise PermanentFailure("verification request not found")
            if request.state_at(now) is not VerificationState.PENDING:
                return  # answered or expired before the notice left: nothing to ask any more
            requester = await repo.get_user(request.requester_id)
            if requester is None:
                raise PermanentFailure("requester not found")
            target = await repo.user_by_phone_index(request.target_phone_hmac)
            phone: str | None = None
            if target is None:
                phone = await repo.reveal_target_phone(
                    request.id,
                    actor="internal",
                    purpose="verification invitation SMS",
                    request_id_of_call=_request_id(event),
                    now=now,
                )
                await uow.commit()  # the audit event is durable before the number is used
        minutes = max(int(deps.settings.verification_ttl.total_seconds() // 60), 1)
        text = messages.invitation(
            requester.masked_name,
            requester.masked_phone,
            request.purpose,
            minutes,
            registered=target is not None,
        )
        await self._send(
            event,
            user_id=None if target is None else target.id,
            phone=phone,
            text=text,
            result=False,
        )
        log.info(
            "verification invitation sent",
            verification_request=request.id,
            channel="app" if target is not None else "sms",
        )

    async def outcome(self, event: OutboxEvent) -> None:
        deps = self.deps
        verification_id = _verification_id(event)
        async with deps.uow() as uow:
            repo = uow.repo
            request = await repo.get_request(verification_id)
            if request is None:
                raise PermanentFailure("verification request not found")
            target_name = ""
            if (
                request.state is VerificationState.VERIFIED
                and request.responder_id is not None
                and not request.name_asked
            ):
                target = await repo.get_user(request.responder_id)
                target_name = target.masked_name if target is not None else ""
        text = messages.outcome(
            request.state, request.masked_target_phone, target_name, request.name_matches
        )
        await self._send(event, user_id=request.requester_id, phone=None, text=text, result=True)

    async def user_notice(self, event: OutboxEvent) -> None:
        """Tells a user something about their own record, in the app only: the notices of a
        released number or a moved binding must not go by SMS to a number no longer theirs."""
        try:
            payload = json.loads(event.payload)
            user_id, text = str(payload["user_id"]), str(payload["text"])
        except (ValueError, KeyError, TypeError):
            raise PermanentFailure("malformed event payload") from None
        try:
            await self.notifier.notify(
                _request_id(event), user_id=user_id, phone_e164=None, text=text, result=True
            )
        except RecipientUnknown:
            log.info("user has no app profile; notice not delivered", user_id=user_id)
        except PartnerFailure as exc:
            raise RuntimeError(str(exc)) from None
        except NotificationRefused as exc:
            raise PermanentFailure(str(exc)) from None

    async def _send(
        self, event: OutboxEvent, *, user_id: str | None, phone: str | None, text: str, result: bool
    ) -> None:
        try:
            try:
                await self.notifier.notify(
                    _request_id(event), user_id=user_id, phone_e164=phone, text=text, result=result
                )
            except RecipientUnknown:
                # A registered user without an app profile at the notifier: an SMS to their number.
                assert user_id is not None
                number = await self._user_phone(user_id, event)
                await self.notifier.notify(
                    _request_id(event, "sms"),
                    user_id=None,
                    phone_e164=number,
                    text=text,
                    result=result,
                )
        except PartnerFailure as exc:
            # Retried by the relay with backoff; the same request id makes a repeat harmless.
            raise RuntimeError(str(exc)) from None
        except NotificationRefused as exc:
            raise PermanentFailure(str(exc)) from None

    async def _user_phone(self, user_id: str, event: OutboxEvent) -> str:
        async with self.deps.uow() as uow:
            revealed = await uow.repo.reveal(
                user_id,
                ("phone",),
                actor="internal",
                purpose=f"{event.topic} SMS",
                request_id=_request_id(event),
                now=self.deps.clock(),
            )
            if revealed is None:
                raise PermanentFailure("recipient user not found")
            await uow.commit()
        return revealed.phone_e164
