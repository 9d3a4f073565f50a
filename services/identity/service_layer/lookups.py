"""一证通查, 一证通查2.0 and 一键查卡: what partners hold about the caller's own identity.

Each look-up needs a passed face check of the caller from the last few minutes (as the
app asks for one), whose name goes to every partner asked as the record of the
person's consent; then it reads the caller's values in clear (audited, committed
first), asks every carrier or bank at once, and answers with what came back in time.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from services.common import pagination
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from services.common.logs import get_logger
from services.common.principals import Principal
from services.identity.domain.lookups import (
    Answer,
    BankCard,
    CarrierCards,
    LinkedAccount,
    Page,
    PartnerFailure,
    complete,
    page_of,
)
from services.identity.domain.users import Revealed
from services.identity.domain.verification import FaceResult
from services.identity.service_layer.access import require_self
from services.identity.service_layer.deps import Deps
from services.identity.service_layer.fanout import ask_all

log = get_logger("identity.lookups")

T = TypeVar("T")


FACE_CHECKS = "faceChecks/"


@dataclass(frozen=True)
class FaceCheck:
    id: str
    result: FaceResult
    create_time: datetime
    expire_time: datetime | None


@dataclass(frozen=True)
class PhoneCardCount:
    carriers: list[Answer[CarrierCards]]
    total: int
    complete: bool


@dataclass(frozen=True)
class Listing(Generic[T]):
    page: Page[T]
    next_page_token: str
    sources: list[Answer[object]]
    complete: bool


async def create_face_check(
    deps: Deps, principal: Principal, user_id: str, request_id: str, face_token: str
) -> FaceCheck:
    """A face check of the caller against their registered identity, kept as consent."""
    require_self(principal, user_id)
    async with deps.uow() as uow:
        user = await uow.repo.get_user(user_id)
    if user is None:
        raise NotFound(f"users/{user_id} not found")
    token_key = hashlib.sha256(face_token.encode()).hexdigest()[:16]
    try:
        result, reference = await deps.face.verify_face(
            user.face_subject_ref, face_token, f"identity-face-check-{request_id}-{token_key}"
        )
    except PartnerFailure:
        raise Unavailable("the face verification service is unavailable; try again") from None
    now = deps.clock()
    check_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"faceChecks/{user_id}/{request_id}/{token_key}"))
    async with deps.uow() as uow:
        if not await uow.repo.face_check_exists(check_id):
            await uow.repo.add_face_check(check_id, user_id, result, reference, now)
            await uow.commit()
    passed = result is FaceResult.PASSED
    log.info("face check made", user_id=user_id, passed=passed)
    return FaceCheck(
        check_id, result, now, now + deps.settings.lookup_face_check_ttl if passed else None
    )


async def _consent(deps: Deps, user_id: str) -> str:
    """The name of the caller's passed face check of the last few minutes, else refused."""
    ttl = deps.settings.lookup_face_check_ttl
    async with deps.uow() as uow:
        found = await uow.repo.latest_passed_face_check(user_id, deps.clock() - ttl)
    if found is None:
        minutes = max(int(ttl.total_seconds() // 60), 1)
        raise FailedPrecondition(
            f"this look-up needs a face check of the last {minutes} minutes: CreateFaceCheck first"
        )
    return f"{FACE_CHECKS}{found}"


async def _reveal(
    deps: Deps,
    principal: Principal,
    user_id: str,
    fields: tuple[str, ...],
    purpose: str,
    request_id: str,
) -> Revealed:
    require_self(principal, user_id)
    async with deps.uow() as uow:
        revealed = await uow.repo.reveal(
            user_id,
            fields,
            actor=principal.audit_actor,
            purpose=purpose,
            request_id=request_id,
            now=deps.clock(),
        )
        if revealed is None:
            raise NotFound(f"users/{user_id} not found")
        await uow.commit()
    return revealed


def _offset(page_token: str) -> int:
    position = pagination.decode(page_token)
    if position is None:
        return 0
    offset = position.get("o")
    if not isinstance(offset, int) or offset < 0:
        raise InvalidArgument.field("page_token", "is not a page token from this API")
    return offset


def _token(page: Page[T]) -> str:
    return "" if page.next_offset is None else pagination.encode({"o": page.next_offset})


async def count_phone_cards(
    deps: Deps, principal: Principal, user_id: str, request_id: str
) -> PhoneCardCount:
    require_self(principal, user_id)
    consent = await _consent(deps, user_id)
    revealed = await _reveal(
        deps, principal, user_id, ("id_number",), "CountPhoneCards (一证通查)", request_id
    )
    answers = await ask_all(
        deps.carriers.carriers(),
        lambda carrier: deps.carriers.count_phone_cards(
            carrier, revealed.id_number, consent=consent
        ),
        deps.settings.partner_timeout_seconds,
    )
    total = sum(a.value.card_count for a in answers if a.value is not None)
    result = PhoneCardCount(answers, total, complete(answers))
    log.info(
        "phone cards counted", user_id=user_id, complete=result.complete, carriers=len(answers)
    )
    return result


async def list_linked_accounts(
    deps: Deps, principal: Principal, user_id: str, page_size: int, page_token: str, request_id: str
) -> Listing[LinkedAccount]:
    offset = _offset(page_token)
    require_self(principal, user_id)
    consent = await _consent(deps, user_id)
    revealed = await _reveal(
        deps,
        principal,
        user_id,
        ("phone", "id_number"),
        "ListLinkedAccounts (一证通查2.0)",
        request_id,
    )
    last_six = revealed.id_number[-6:]
    answers = await ask_all(
        deps.carriers.carriers(),
        lambda carrier: deps.carriers.list_linked_accounts(
            carrier, revealed.phone_e164, last_six, consent=consent
        ),
        deps.settings.partner_timeout_seconds,
    )
    merged = sorted(
        (account for a in answers if a.value is not None for account in a.value),
        key=lambda x: (x.platform, x.register_time is None, x.register_time, x.masked_account_name),
    )
    page = page_of(merged, offset, page_size)
    sources: list[Answer[object]] = [Answer(a.partner, a.status) for a in answers]
    return Listing(page, _token(page), sources, complete(answers))


async def list_bank_cards(
    deps: Deps, principal: Principal, user_id: str, page_size: int, page_token: str, request_id: str
) -> Listing[BankCard]:
    offset = _offset(page_token)
    require_self(principal, user_id)
    consent = await _consent(deps, user_id)
    revealed = await _reveal(
        deps, principal, user_id, ("name", "id_number"), "ListBankCards (一键查卡)", request_id
    )
    answers = await ask_all(
        deps.banks.banks(),
        lambda bank: deps.banks.list_cards(
            bank, revealed.id_number, revealed.name, consent=consent
        ),
        deps.settings.partner_timeout_seconds,
    )
    merged = sorted(
        (card for a in answers if a.value is not None for card in a.value),
        key=lambda c: (c.bank_id, c.masked_card_number, c.card_type),
    )
    page = page_of(merged, offset, page_size)
    sources: list[Answer[object]] = [Answer(a.partner, a.status) for a in answers]
    return Listing(page, _token(page), sources, complete(answers))
