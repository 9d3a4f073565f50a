"""Proving a phone number: a one-time code sent by the number's carrier, checked by it.

``start_challenge`` answers alike for every number a carrier serves, registered
here or not: it sends a code and says when it expires. ``prove`` answers one
way (``NOT_PROVEN`` on ``code``) for every code that does not prove the number,
whatever the reason, so neither says anything about who is registered.
"""

from __future__ import annotations

import hmac
import uuid
from datetime import timedelta

import sqlalchemy as sa

from services.common.errors import (
    FieldViolation,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
)
from services.common.principals import Principal, Role
from services.identity.adapters import tables
from services.identity.domain.challenges import (
    CODE_MESSAGES,
    NOT_PROVEN,
    ChallengePurpose,
    CodeCheck,
    PhoneChallenge,
)
from services.identity.domain.lookups import PartnerFailure
from services.identity.domain.masking import mask_phone
from services.identity.service_layer.access import require_role
from services.identity.service_layer.deps import Deps

#: A code is accepted this long at most (the carrier may say less).
CHALLENGE_TTL = timedelta(minutes=5)
#: Codes sent to one number per hour: enough for typos, too few to flood a phone.
CHALLENGES_PER_HOUR = 5

_NO_CARRIER = "no carrier partner serves this number, so it cannot be proven by SMS"


def not_proven() -> InvalidArgument:
    return InvalidArgument([FieldViolation("code", NOT_PROVEN)])


async def start_challenge(
    deps: Deps, principal: Principal, phone_e164: str, purpose: ChallengePurpose
) -> PhoneChallenge:
    require_role(principal, Role.INTERNAL, Role.ADMIN, Role.CITIZEN)
    carrier = deps.carriers.carrier_for(phone_e164)
    if carrier is None:
        raise InvalidArgument.field("phone_number", _NO_CARRIER)
    now = deps.clock()
    async with deps.uow() as uow:
        phone_hmac = uow.repo.phone_index(phone_e164)
        pc = tables.phone_challenges
        recent = await uow.conn.scalar(
            sa.select(sa.func.count())
            .select_from(pc)
            .where(pc.c.phone_hmac == phone_hmac, pc.c.create_time > now - timedelta(hours=1))
        )
    if (recent or 0) >= CHALLENGES_PER_HOUR:
        raise ResourceExhausted("too many codes sent to this number; wait", retry_after=600)
    challenge_id = str(uuid.uuid4())
    try:
        sent = await deps.carriers.send_code(
            carrier,
            phone_e164,
            CODE_MESSAGES[purpose],
            key=f"identity-challenge-{challenge_id}",
            consent=f"phoneChallenges/{challenge_id}",
        )
    except PartnerFailure:
        raise Unavailable("the number's carrier is unavailable; try again") from None
    if sent is None:
        raise InvalidArgument.field("phone_number", _NO_CARRIER)
    expire = now + CHALLENGE_TTL
    if sent.expire_time is not None:
        expire = min(expire, sent.expire_time)
    challenge = PhoneChallenge(
        id=challenge_id,
        purpose=purpose,
        phone_hmac=phone_hmac,
        masked_phone=mask_phone(phone_e164),
        carrier_id=carrier.id,
        authentication_id=sent.authentication_id,
        create_time=now,
        expire_time=expire,
    )
    async with deps.uow() as uow:
        await uow.repo.add_challenge(challenge)
        await uow.commit()
    return challenge


async def prove(
    deps: Deps,
    challenge_id: str,
    code: str,
    purpose: ChallengePurpose,
    *,
    phone_e164: str | None = None,
) -> PhoneChallenge:
    """The challenge, once its code is proven (by the carrier, or earlier with the same code);
    ``not_proven()`` otherwise. With ``phone_e164``, the challenge must be for that number."""
    now = deps.clock()
    async with deps.uow() as uow:
        repo = uow.repo
        challenge = await repo.get_challenge(challenge_id)
        proof = repo.code_proof(challenge_id, code)
        expected_phone = None if phone_e164 is None else repo.phone_index(phone_e164)
    if (
        challenge is None
        or challenge.purpose is not purpose
        or (expected_phone is not None and challenge.phone_hmac != expected_phone)
        or not challenge.open_at(now)
    ):
        raise not_proven()
    if challenge.proof_hmac is not None:
        # Proven before (a retry of a step that failed later): the same code only.
        if hmac.compare_digest(challenge.proof_hmac, proof):
            return challenge
        raise not_proven()
    carrier = deps.carriers.carrier_for_id(challenge.carrier_id)
    if carrier is None:
        raise not_proven()
    try:
        check = await deps.carriers.validate_code(
            carrier,
            challenge.authentication_id,
            code,
            key=f"identity-code-{challenge_id}-{proof[:16]}",
        )
    except PartnerFailure:
        raise Unavailable("the number's carrier is unavailable; retry with the same code") from None
    if check is not CodeCheck.VALID:
        raise not_proven()
    async with deps.uow() as uow:
        await uow.repo.prove_challenge(challenge_id, proof)
        await uow.commit()
    return challenge


async def confirm(
    deps: Deps,
    principal: Principal,
    challenge_id: str,
    code: str,
    purpose: ChallengePurpose,
    phone_e164: str,
) -> PhoneChallenge:
    """Prove a challenge and use it up: the holder of the number agreed (a guardian)."""
    require_role(principal, Role.INTERNAL, Role.ADMIN, Role.CITIZEN)
    challenge = await prove(deps, challenge_id, code, purpose, phone_e164=phone_e164)
    async with deps.uow() as uow:
        await uow.repo.use_challenge(challenge.id, deps.clock())
        await uow.commit()
    return challenge
