"""一证通查, 一证通查2.0 and 一键查卡: what partners hold about the caller's own identity.

Each look-up needs a passed face check of the caller from the last few minutes (as the
app asks for one), whose name goes to every partner asked as the record of the
person's consent; then it reads the caller's values in clear (audited, committed
first), asks every carrier or bank at once, and answers with what came back in time.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

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
    Partner,
    PartnerFailure,
    SourceStatus,
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


#: How long a look-up's later pages are served from its first answer.
SNAPSHOT_TTL = timedelta(minutes=10)


@dataclass(frozen=True)
class Fetched(Generic[T]):
    items: list[T]
    sources: list[Answer[object]]
    complete: bool


def _position(page_token: str) -> tuple[str, int] | None:
    """(snapshot id, offset) of a page token, None for the first page."""
    position = pagination.decode(page_token)
    if position is None:
        return None
    snapshot, offset = position.get("s"), position.get("o")
    if not isinstance(snapshot, str) or not isinstance(offset, int) or offset < 0:
        raise InvalidArgument.field("page_token", "is not a page token from this API")
    return snapshot, offset


async def _paged(
    deps: Deps,
    user_id: str,
    kind: str,
    page_size: int,
    page_token: str,
    fetch: Callable[[], Awaitable[Fetched[T]]],
    encode: Callable[[T], dict[str, Any]],
    decode: Callable[[dict[str, Any]], T],
) -> Listing[T]:
    """The first page asks the partners and keeps their whole answer (masked values only);
    later pages come from it, so paging is stable while a partner comes and goes."""
    position = _position(page_token)
    now = deps.clock()
    if position is None:
        fetched, offset, snapshot_id = await fetch(), 0, str(uuid.uuid4())
        if len(fetched.items) > page_size:
            payload = {
                "items": [encode(item) for item in fetched.items],
                "sources": [
                    [a.partner.id, a.partner.display_name, int(a.status)] for a in fetched.sources
                ],
                "complete": fetched.complete,
            }
            async with deps.uow() as uow:
                await uow.repo.add_snapshot(
                    snapshot_id, user_id, kind, json.dumps(payload).encode(), now + SNAPSHOT_TTL
                )
                await uow.commit()
    else:
        snapshot_id, offset = position
        async with deps.uow() as uow:
            stored = await uow.repo.get_snapshot(snapshot_id, user_id, kind, now)
        if stored is None:
            raise InvalidArgument.field(
                "page_token", "has expired or is not yours; start again without it"
            )
        payload = json.loads(stored)
        fetched = Fetched(
            [decode(item) for item in payload["items"]],
            [
                Answer(Partner(pid, name), SourceStatus(status))
                for pid, name, status in payload["sources"]
            ],
            bool(payload["complete"]),
        )
    page = page_of(fetched.items, offset, page_size)
    token = (
        ""
        if page.next_offset is None
        else pagination.encode({"s": snapshot_id, "o": page.next_offset})
    )
    return Listing(page, token, fetched.sources, fetched.complete)


def _time_or_none(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


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
    require_self(principal, user_id)

    async def fetch() -> Fetched[LinkedAccount]:
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
            key=lambda x: (
                x.platform,
                x.register_time is None,
                x.register_time,
                x.masked_account_name,
            ),
        )
        sources: list[Answer[object]] = [Answer(a.partner, a.status) for a in answers]
        return Fetched(merged, sources, complete(answers))

    return await _paged(
        deps,
        user_id,
        "linked_accounts",
        page_size,
        page_token,
        fetch,
        lambda a: {
            "p": a.platform,
            "n": a.masked_account_name,
            "t": None if a.register_time is None else a.register_time.isoformat(),
            "c": a.carrier_id,
        },
        lambda d: LinkedAccount(int(d["p"]), str(d["n"]), _time_or_none(d["t"]), str(d["c"])),
    )


async def list_bank_cards(
    deps: Deps, principal: Principal, user_id: str, page_size: int, page_token: str, request_id: str
) -> Listing[BankCard]:
    require_self(principal, user_id)

    async def fetch() -> Fetched[BankCard]:
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
        sources: list[Answer[object]] = [Answer(a.partner, a.status) for a in answers]
        return Fetched(merged, sources, complete(answers))

    return await _paged(
        deps,
        user_id,
        "bank_cards",
        page_size,
        page_token,
        fetch,
        lambda c: {"b": c.bank_id, "n": c.bank_name, "t": c.card_type, "m": c.masked_card_number},
        lambda d: BankCard(str(d["b"]), str(d["n"]), int(d["t"]), str(d["m"])),
    )
