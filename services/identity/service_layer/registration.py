"""Registration and reading users."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import TypeVar

from google.protobuf.message import Message

from services.common.errors import (
    AlreadyExists,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from services.common.logs import get_logger
from services.common.principals import Principal, Role
from services.identity.adapters.repository import DuplicateUser
from services.identity.domain import messages
from services.identity.domain.challenges import ChallengePurpose, PhoneChallenge, SubscriberMatch
from services.identity.domain.id_number import ResidentId
from services.identity.domain.lookups import PartnerFailure, RegistryMatch
from services.identity.domain.users import NewUser, User
from services.identity.domain.verification import FaceResult
from services.identity.service_layer import phone_proof
from services.identity.service_layer.access import require_role
from services.identity.service_layer.deps import Deps
from services.identity.service_layer.notifications import enqueue_user_notice
from services.identity.service_layer.replay import Replay

log = get_logger("identity.registration")

M = TypeVar("M", bound=Message)

_NOT_CONFIRMED = "the national identity registry does not confirm this name with this ID number"
_CARRIER_NOT_CONFIRMED = (
    "the number's carrier does not confirm that this number is registered to this ID number"
)
_NO_CARRIER = "no carrier partner serves this number, so it cannot be confirmed as yours"


@dataclass(frozen=True)
class RegisterUser:
    name: str
    id_number: ResidentId
    phone_e164: str
    #: The phone challenge and its code; required of citizens.
    challenge_id: str = ""
    code: str = ""

    def __repr__(self) -> str:
        return "RegisterUser(...)"


@dataclass(frozen=True)
class SignIn:
    challenge_id: str
    code: str
    face_token: str
    request_id: str

    def __repr__(self) -> str:
        return "SignIn(...)"


def _violations(fields: tuple[str, ...], reason: str) -> InvalidArgument:
    return InvalidArgument([FieldViolation(f, reason) for f in fields])


async def _confirm_with_carrier(deps: Deps, cmd: RegisterUser, consent: str) -> None:
    """The number's carrier says the number is registered (实名) to this ID number."""
    carrier = deps.carriers.carrier_for(cmd.phone_e164)
    if carrier is None:
        raise _violations(("phone_number",), _NO_CARRIER)
    try:
        match = await deps.carriers.match_subscriber(
            carrier, cmd.phone_e164, cmd.id_number.value, consent=consent
        )
    except PartnerFailure:
        raise Unavailable(
            "the number's carrier is unavailable; retry with the same request_id"
        ) from None
    if match is not SubscriberMatch.MATCH:
        raise _violations(("phone_number", "id_number"), _CARRIER_NOT_CONFIRMED)


async def register_user(
    deps: Deps, principal: Principal, cmd: RegisterUser, replay: Replay[User, M]
) -> M:
    # Sign-up happens before a citizen has a user id: the gateway calls as itself or as citizen.
    require_role(principal, Role.INTERNAL, Role.ADMIN, Role.CITIZEN)
    async with deps.uow() as uow:
        done = await replay.recall(uow.conn)
        if done is not None:
            return done
    # Nothing is said about existing users until the caller has proven the number, the
    # carrier has tied it to the ID number and the registry the name: no existence oracle.
    challenge: PhoneChallenge | None = None
    if cmd.challenge_id:
        challenge = await phone_proof.prove(
            deps,
            cmd.challenge_id,
            cmd.code,
            ChallengePurpose.REGISTRATION,
            phone_e164=cmd.phone_e164,
        )
    elif principal.role is Role.CITIZEN:
        raise _violations(("phone_challenge", "code"), "a citizen proves the phone number first")
    consent = challenge.consent_reference if challenge is not None else "registration"
    await _confirm_with_carrier(deps, cmd, consent)
    try:
        match = await deps.registry.verify_identity(cmd.name, cmd.id_number.value)
    except PartnerFailure:
        raise Unavailable(
            "the national identity registry is unavailable; retry with the same request_id"
        ) from None
    if match is not RegistryMatch.MATCH:
        # One answer for a wrong name and an unknown number: the API must not tell which ID exist.
        raise _violations(("full_name", "id_number"), _NOT_CONFIRMED)
    now = deps.clock()
    released: User | None = None
    async with deps.uow() as uow:
        repo = uow.repo
        done = await replay.claim(uow.conn)
        if done is not None:
            return done
        if await repo.user_by_id_number_index(repo.id_number_index(cmd.id_number.value)):
            # Said only to whom the carrier and the registry just tied to this ID number.
            raise AlreadyExists(
                "a user is already registered with this ID number; sign in on this device"
            )
        holder = await repo.user_by_phone_index(repo.phone_index(cmd.phone_e164))
        if holder is not None:
            # The carrier says the number is this person's now: the old binding is stale
            # (a recycled number, or one taken before numbers were proven). Release it.
            await repo.release_phone(holder.id, now)
            await enqueue_user_notice(
                uow.conn,
                f"phone-released:{holder.id}:{now.isoformat()}",
                holder.id,
                messages.phone_released(holder.masked_phone),
            )
            released = holder
        new = NewUser(str(uuid.uuid4()), cmd.name, cmd.id_number, cmd.phone_e164, verify_time=now)
        try:
            user = await repo.add_user(new, now)
        except DuplicateUser:
            raise AlreadyExists(
                "a user is already registered with this ID number; sign in on this device"
            ) from None
        if challenge is not None:
            await repo.use_challenge(challenge.id, now)
        response = await replay.remember(uow.conn, user)
        await uow.commit()
    if released is not None:
        deps.wake_outbox()
        log.info("phone number released from its former user", user_id=released.id)
    log.info("user registered", user_id=user.id, region=cmd.id_number.region_code[:2])
    return response


async def sign_in(deps: Deps, principal: Principal, cmd: SignIn, replay: Replay[User, M]) -> M:
    """A registered citizen on a new device: the code sent to their number and their face."""
    require_role(principal, Role.INTERNAL, Role.ADMIN, Role.CITIZEN)
    async with deps.uow() as uow:
        done = await replay.recall(uow.conn)
        if done is not None:
            return done
    challenge = await phone_proof.prove(deps, cmd.challenge_id, cmd.code, ChallengePurpose.SIGN_IN)
    async with deps.uow() as uow:
        user = await uow.repo.user_by_phone_index(challenge.phone_hmac)
    if user is None:
        # The caller holds the number (the code said so): telling them is no oracle.
        raise NotFound("no user is registered with this phone number; register instead")
    try:
        result, _reference = await deps.face.verify_face(
            user.face_subject_ref,
            cmd.face_token,
            # One check per capture: a retry with a new capture is a new check.
            f"identity-sign-in-{cmd.request_id}-{hashlib.sha256(cmd.face_token.encode()).hexdigest()[:16]}",
        )
    except PartnerFailure:
        raise Unavailable(
            "the face verification service is unavailable; retry with the same request_id"
        ) from None
    if result is not FaceResult.PASSED:
        raise PermissionDenied("the face check does not match the registered holder")
    now = deps.clock()
    async with deps.uow() as uow:
        done = await replay.claim(uow.conn)
        if done is not None:
            return done
        await uow.repo.use_challenge(challenge.id, now)
        response = await replay.remember(uow.conn, user)
        await uow.commit()
    log.info("user signed in on a new device", user_id=user.id)
    return response


async def get_user(deps: Deps, principal: Principal, user_id: str) -> User:
    if principal.role is Role.CITIZEN and principal.subject != user_id:
        raise PermissionDenied("citizens may read only their own user")
    if principal.role in (Role.BANK, Role.CARRIER):
        raise PermissionDenied(f"not allowed for {principal.role.value} callers")
    async with deps.uow() as uow:
        user = await uow.repo.get_user(user_id)
    if user is None:
        raise NotFound(f"users/{user_id} not found")
    return user


async def find_user_by_phone(deps: Deps, principal: Principal, phone_e164: str) -> str:
    # Whether a number is registered is personal information: internal services only.
    require_role(principal, Role.INTERNAL, Role.ADMIN)
    async with deps.uow() as uow:
        repo = uow.repo
        user = await repo.user_by_phone_index(repo.phone_index(phone_e164))
    if user is None:
        raise NotFound("no user is registered with this phone number")
    return user.id
