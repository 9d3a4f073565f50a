"""Registration and reading users."""

from __future__ import annotations

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
from services.identity.domain.id_number import ResidentId
from services.identity.domain.lookups import PartnerFailure, RegistryMatch
from services.identity.domain.users import NewUser, User
from services.identity.service_layer.access import require_role
from services.identity.service_layer.deps import Deps
from services.identity.service_layer.replay import Replay

log = get_logger("identity.registration")

M = TypeVar("M", bound=Message)

_NOT_CONFIRMED = "the national identity registry does not confirm this name with this ID number"


@dataclass(frozen=True)
class RegisterUser:
    name: str
    id_number: ResidentId
    phone_e164: str

    def __repr__(self) -> str:
        return "RegisterUser(...)"


async def register_user(
    deps: Deps, principal: Principal, cmd: RegisterUser, replay: Replay[User, M]
) -> M:
    # Sign-up happens before a citizen has a user id: the gateway calls as itself or as citizen.
    require_role(principal, Role.INTERNAL, Role.ADMIN, Role.CITIZEN)
    async with deps.uow() as uow:
        done = await replay.recall(uow.conn)
        if done is not None:
            return done
        # Refuse a duplicate before asking the registry about it.
        conflict = await uow.repo.registration_conflict(cmd.id_number.value, cmd.phone_e164)
        if conflict is not None:
            raise AlreadyExists(f"a user is already registered with this {conflict}")
    try:
        match = await deps.registry.verify_identity(cmd.name, cmd.id_number.value)
    except PartnerFailure:
        raise Unavailable(
            "the national identity registry is unavailable; retry with the same request_id"
        ) from None
    if match is not RegistryMatch.MATCH:
        # One answer for a wrong name and an unknown number: the API must not tell which ID exist.
        raise InvalidArgument(
            [
                FieldViolation("full_name", _NOT_CONFIRMED),
                FieldViolation("id_number", _NOT_CONFIRMED),
            ]
        )
    now = deps.clock()
    async with deps.uow() as uow:
        done = await replay.recall(uow.conn)
        if done is not None:
            return done
        new = NewUser(str(uuid.uuid4()), cmd.name, cmd.id_number, cmd.phone_e164, verify_time=now)
        try:
            user = await uow.repo.add_user(new, now)
        except DuplicateUser as exc:
            raise AlreadyExists(f"a user is already registered with this {exc.field}") from None
        response = await replay.remember(uow.conn, user)
        await uow.commit()
    log.info("user registered", user_id=user.id, region=cmd.id_number.region_code[:2])
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
