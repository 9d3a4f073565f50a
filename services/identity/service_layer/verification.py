"""Remote verification: create, read, list, answer, block; the sweeper that expires requests.

"A fraudster cannot complete it for a number that is not theirs": only the
registered user who holds the target number may answer (the principal must be
that user), and the face check runs against that user's registered identity.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar

from google.protobuf.message import Message

from services.common import names, pagination
from services.common.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
)
from services.common.logs import get_logger
from services.common.outbox import enqueue
from services.common.principals import Principal, Role
from services.identity.adapters import tables
from services.identity.adapters.repository import IdentityRepository
from services.identity.domain.lookups import PartnerFailure
from services.identity.domain.masking import mask_phone
from services.identity.domain.users import User
from services.identity.domain.verification import (
    Decision,
    FaceResult,
    Purpose,
    RequestClosed,
    VerificationRequest,
    VerificationState,
    retry_after,
)
from services.identity.service_layer.access import require_self
from services.identity.service_layer.deps import Deps
from services.identity.service_layer.replay import Replay

log = get_logger("identity.verification")

M = TypeVar("M", bound=Message)

#: Outbox topics: the invitation to the target, the outcome to the requester.
TOPIC_INVITE = "verification.invite"
TOPIC_OUTCOME = "verification.outcome"


@dataclass(frozen=True)
class VerificationView:
    """A request as one viewer may see it."""

    request: VerificationRequest
    state: VerificationState  # as of the time of reading
    requester: User
    #: The target's masked name, once VERIFIED; None otherwise.
    target_masked_name: str | None
    #: Face checks left, for the target and staff; None for the requester.
    attempts_left: int | None


@dataclass(frozen=True)
class CreateRequest:
    requester_id: str
    target_phone_e164: str
    purpose: Purpose
    #: "Is this <name>?": then the answer is yes or no, never a masked name.
    expected_name: str = ""

    def __repr__(self) -> str:
        return f"CreateRequest(requester_id={self.requester_id!r})"


@dataclass(frozen=True)
class Respond:
    call_request_id: str
    verification_id: str
    user_id: str
    decision: Decision
    face_token: str

    def __repr__(self) -> str:  # the face token is a credential: never in a repr
        return f"Respond(verification_id={self.verification_id!r}, decision={self.decision.name})"


@dataclass(frozen=True)
class Responded:
    view: VerificationView
    face_result: FaceResult | None


@dataclass(frozen=True)
class BlockResult:
    requester: User
    declined: int
    block_time: datetime


async def _view(
    repo: IdentityRepository,
    deps: Deps,
    request: VerificationRequest,
    now: datetime,
    *,
    show_attempts: bool,
    requester: User | None = None,
) -> VerificationView:
    if requester is None:
        requester = await repo.get_user(request.requester_id)
        if requester is None:  # a foreign key guarantees it; a missing row is corruption
            raise RuntimeError(f"requester of {request.id} is missing")
    state = request.state_at(now)
    target_name = None
    if (
        state is VerificationState.VERIFIED
        and request.responder_id is not None
        and not request.name_asked  # asked "is this <name>?": yes or no only
    ):
        target = await repo.get_user(request.responder_id)
        target_name = target.masked_name if target is not None else None
    attempts = request.attempts_left(deps.settings.max_face_attempts) if show_attempts else None
    return VerificationView(request, state, requester, target_name, attempts)


def _event_key(topic: str, request: VerificationRequest, suffix: str = "") -> str:
    return f"{topic}:{request.id}{suffix}"


def _payload(request: VerificationRequest) -> bytes:
    return json.dumps({"verification_request": request.id}).encode()


async def _check_rate(
    repo: IdentityRepository, deps: Deps, requester_id: str, target_hmac: str, now: datetime
) -> None:
    """Counted in the database, under the requester's row lock, so replicas share the limits."""
    settings = deps.settings
    longest = max(rule.window for rule in settings.requester_limits)
    recent = await repo.request_times(requester_id, now - longest)
    for rule in settings.requester_limits:
        wait = retry_after(recent, now, rule)
        if wait is not None:
            raise ResourceExhausted(
                f"at most {rule.limit} verification requests per "
                f"{int(rule.window.total_seconds())} s; try again later",
                wait,
            )
    rule = settings.per_target_limit
    to_target = await repo.request_times(
        requester_id, now - rule.window, target_phone_hmac=target_hmac
    )
    wait = retry_after(to_target, now, rule)
    if wait is not None:
        raise ResourceExhausted(
            f"at most {rule.limit} verification requests to one number per "
            f"{int(rule.window.total_seconds())} s",
            wait,
        )


async def create_request(
    deps: Deps,
    principal: Principal,
    cmd: CreateRequest,
    replay: Replay[VerificationView, M],
) -> M:
    require_self(principal, cmd.requester_id, field="requester_user_id")
    now = deps.clock()
    async with deps.uow() as uow:
        done = await replay.claim(uow.conn)
        if done is not None:
            return done
        repo = uow.repo
        # The row lock serialises one requester's creations, so two replicas cannot
        # both count four and both insert a fifth.
        requester = await repo.get_user(cmd.requester_id, for_update=True)
        if requester is None:
            raise NotFound(f"users/{cmd.requester_id} not found")
        target_hmac = repo.phone_index(cmd.target_phone_e164)
        if target_hmac == await repo.user_phone_index(requester.id):
            raise InvalidArgument.field("target_phone_number", "is your own number")
        target = await repo.user_by_phone_index(target_hmac)
        if target is not None and await repo.is_blocked(target.id, requester.id):
            raise FailedPrecondition(
                "the holder of this number does not accept verification requests from you"
            )
        await _check_rate(repo, deps, requester.id, target_hmac, now)
        request = VerificationRequest(
            id=str(uuid.uuid4()),
            requester_id=requester.id,
            target_phone_hmac=target_hmac,
            masked_target_phone=mask_phone(cmd.target_phone_e164),
            purpose=cmd.purpose,
            state=VerificationState.PENDING,
            create_time=now,
            expire_time=now + deps.settings.verification_ttl,
            name_asked=bool(cmd.expected_name),
        )
        await repo.add_request(request, cmd.target_phone_e164, cmd.expected_name)
        await enqueue(
            uow.conn,
            tables.outbox,
            TOPIC_INVITE,
            _event_key(TOPIC_INVITE, request),
            _payload(request),
        )
        view = VerificationView(request, request.state, requester, None, None)
        response = await replay.remember(uow.conn, view)
        await uow.commit()
    deps.wake_outbox()
    log.info(
        "verification requested",
        verification_request=request.id,
        requester_id=requester.id,
        target_registered=target is not None,
        purpose=cmd.purpose.name,
    )
    return response


async def get_request(deps: Deps, principal: Principal, verification_id: str) -> VerificationView:
    now = deps.clock()
    async with deps.uow() as uow:
        repo = uow.repo
        request = await repo.get_request(verification_id)
        # Anyone but its parties and staff is told it does not exist.
        missing = NotFound(f"verificationRequests/{verification_id} not found")
        if request is None:
            raise missing
        if principal.staff:
            return await _view(repo, deps, request, now, show_attempts=True)
        if principal.role is not Role.CITIZEN:
            raise missing
        if principal.subject == request.requester_id:
            return await _view(repo, deps, request, now, show_attempts=False)
        if await repo.user_phone_index(principal.subject) == request.target_phone_hmac:
            return await _view(repo, deps, request, now, show_attempts=True)
        raise missing


async def list_incoming(
    deps: Deps,
    principal: Principal,
    user_id: str,
    state: VerificationState | None,
    page_size: int,
    page_token: str,
) -> tuple[list[VerificationView], str]:
    require_self(principal, user_id)
    # By default the open invitations only: an answered or expired request is withdrawn.
    state = VerificationState.PENDING if state is None else state
    position = pagination.decode(page_token)
    after: tuple[datetime, str] | None = None
    if position is not None:
        try:
            after = (datetime.fromisoformat(position["t"]), str(position["id"]))
        except (KeyError, TypeError, ValueError):
            raise InvalidArgument.field("page_token", "is not a page token from this API") from None
    now = deps.clock()
    async with deps.uow() as uow:
        repo = uow.repo
        user = await repo.get_user(user_id)
        phone_hmac = await repo.user_phone_index(user_id)
        if user is None or phone_hmac is None:
            raise NotFound(f"users/{user_id} not found")
        # Numbers are recycled: a new holder sees requests that could still reach them
        # when they registered (an SMS invitation), not the previous holder's history.
        since = user.create_time - deps.settings.verification_ttl
        requests = await repo.list_incoming(
            phone_hmac, state=state, now=now, since=since, after=after, limit=page_size + 1
        )
        more = len(requests) > page_size
        requests = requests[:page_size]
        requesters = await repo.get_users([r.requester_id for r in requests])
        views = [
            await _view(
                repo, deps, r, now, show_attempts=True, requester=requesters[r.requester_id]
            )
            for r in requests
        ]
    token = ""
    if more and requests:
        last = requests[-1]
        token = pagination.encode({"t": last.create_time.isoformat(), "id": last.id})
    return views, token


def _closed(exc: RequestClosed) -> FailedPrecondition:
    return FailedPrecondition(
        f"the verification request is {exc.state.name} and cannot be answered"
    )


async def respond(
    deps: Deps, principal: Principal, cmd: Respond, replay: Replay[Responded, M]
) -> M:
    require_self(principal, cmd.user_id)
    now = deps.clock()
    async with deps.uow() as uow:
        done = await replay.recall(uow.conn)
        if done is not None:
            return done
        repo = uow.repo
        request = await repo.get_request(cmd.verification_id, for_update=True)
        if request is None:
            raise NotFound(f"verificationRequests/{cmd.verification_id} not found")
        responder = await repo.get_user(cmd.user_id)
        if responder is None:
            raise NotFound(f"users/{cmd.user_id} not found")
        if await repo.user_phone_index(responder.id) != request.target_phone_hmac:
            raise PermissionDenied("only the registered holder of the target number may answer")
        if cmd.decision is Decision.DECLINE:
            try:
                answered = request.decline(responder.id, now)
            except RequestClosed as exc:
                raise _closed(exc) from None
            await repo.save_request(answered)
            await enqueue(
                uow.conn,
                tables.outbox,
                TOPIC_OUTCOME,
                _event_key(TOPIC_OUTCOME, answered),
                _payload(answered),
            )
            view = await _view(repo, deps, answered, now, show_attempts=True)
            response = await replay.remember(uow.conn, Responded(view, None))
            await uow.commit()
            deps.wake_outbox()
            log.info("verification declined", verification_request=request.id)
            return response
        try:
            request.check_can_accept(now)
        except RequestClosed as exc:
            raise _closed(exc) from None
    # No transaction is held while the provider checks the face.
    try:
        result, reference = await deps.face.verify_face(
            responder.face_subject_ref, cmd.face_token, f"identity-respond-{cmd.call_request_id}"
        )
    except PartnerFailure:
        raise Unavailable(
            "face verification is unavailable; retry with the same request_id"
        ) from None
    now = deps.clock()
    async with deps.uow() as uow:
        done = await replay.claim(uow.conn)
        if done is not None:
            return done
        repo = uow.repo
        current = await repo.get_request(cmd.verification_id, for_update=True)
        if current is None:
            raise RuntimeError(f"verification request {cmd.verification_id} vanished")
        try:
            answered = current.record_face_check(
                responder.id, result, reference, now, max_attempts=deps.settings.max_face_attempts
            )
        except RequestClosed as exc:
            raise _closed(exc) from None
        if answered.state is VerificationState.VERIFIED and answered.name_asked:
            expected = await repo.expected_name(answered.id)
            revealed = await repo.reveal(
                responder.id,
                ("name",),
                actor=principal.audit_actor,
                purpose="RespondToVerificationRequest (is the holder the expected name?)",
                request_id=cmd.call_request_id,
                now=now,
            )
            if expected is not None and revealed is not None:
                answered = replace(answered, name_matches=names.same_name(expected, revealed.name))
        await repo.save_request(answered)
        if answered.state is not VerificationState.PENDING:
            await enqueue(
                uow.conn,
                tables.outbox,
                TOPIC_OUTCOME,
                _event_key(TOPIC_OUTCOME, answered),
                _payload(answered),
            )
        view = await _view(repo, deps, answered, now, show_attempts=True)
        response = await replay.remember(uow.conn, Responded(view, result))
        await uow.commit()
    deps.wake_outbox()
    log.info(
        "verification face check",
        verification_request=answered.id,
        result=result.name,
        state=answered.state.name,
        attempts=answered.face_attempts,
    )
    return response


async def block_requester(
    deps: Deps, principal: Principal, user_id: str, requester_id: str
) -> BlockResult:
    require_self(principal, user_id)
    if user_id == requester_id:
        raise InvalidArgument.field("requester_user_id", "cannot block yourself")
    now = deps.clock()
    async with deps.uow() as uow:
        repo = uow.repo
        phone_hmac = await repo.user_phone_index(user_id)
        if phone_hmac is None:
            raise NotFound(f"users/{user_id} not found")
        requester = await repo.get_user(requester_id)
        if requester is None:
            raise NotFound(f"users/{requester_id} not found")
        block_time = await repo.add_block(user_id, requester_id, now)
        declined = await repo.decline_pending(requester_id, phone_hmac, user_id, now)
        await uow.commit()
    log.info("requester blocked", user_id=user_id, requester_id=requester_id, declined=declined)
    return BlockResult(requester, declined, block_time)


async def unblock_requester(
    deps: Deps, principal: Principal, user_id: str, requester_id: str
) -> bool:
    require_self(principal, user_id)
    async with deps.uow() as uow:
        removed = await uow.repo.remove_block(user_id, requester_id)
        await uow.commit()
    return removed


async def expire_overdue(deps: Deps) -> int:
    """One sweep: pending requests past their expiry become EXPIRED in the database, and
    each requester is told (the same outcome notice as for an answer)."""
    async with deps.uow() as uow:
        expired = await uow.repo.expire_due(deps.clock())
        for verification_id in expired:
            await enqueue(
                uow.conn,
                tables.outbox,
                TOPIC_OUTCOME,
                f"{TOPIC_OUTCOME}:{verification_id}",
                json.dumps({"verification_request": verification_id}).encode(),
            )
        await uow.commit()
    if expired:
        deps.wake_outbox()
        log.info("verification requests expired", count=len(expired))
    return len(expired)
