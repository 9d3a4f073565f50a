"""一证通查, 一证通查2.0 and 一键查卡: what partners hold about the caller's own identity.

Each look-up reads the caller's values in clear (audited, committed first),
asks every carrier or bank at once, and answers with what came back in time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from services.common import pagination
from services.common.errors import InvalidArgument, NotFound
from services.common.logs import get_logger
from services.common.principals import Principal
from services.identity.domain.lookups import (
    Answer,
    BankCard,
    CarrierCards,
    LinkedAccount,
    Page,
    complete,
    page_of,
)
from services.identity.domain.users import Revealed
from services.identity.service_layer.access import require_self
from services.identity.service_layer.deps import Deps
from services.identity.service_layer.fanout import ask_all

log = get_logger("identity.lookups")

T = TypeVar("T")


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
    revealed = await _reveal(
        deps, principal, user_id, ("id_number",), "CountPhoneCards (一证通查)", request_id
    )
    answers = await ask_all(
        deps.carriers.carriers(),
        lambda carrier: deps.carriers.count_phone_cards(carrier, revealed.id_number),
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
        lambda carrier: deps.carriers.list_linked_accounts(carrier, revealed.phone_e164, last_six),
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
    revealed = await _reveal(
        deps, principal, user_id, ("name", "id_number"), "ListBankCards (一键查卡)", request_id
    )
    answers = await ask_all(
        deps.banks.banks(),
        lambda bank: deps.banks.list_cards(bank, revealed.id_number, revealed.name),
        deps.settings.partner_timeout_seconds,
    )
    merged = sorted(
        (card for a in answers if a.value is not None for card in a.value),
        key=lambda c: (c.bank_id, c.masked_card_number, c.card_type),
    )
    page = page_of(merged, offset, page_size)
    sources: list[Answer[object]] = [Answer(a.partner, a.status) for a in answers]
    return Listing(page, _token(page), sources, complete(answers))
