"""Accounts: binding one's own, verifying anyone's, confirming a payee's name."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf.message import Message

from services.common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from services.common.indicators import Indicator, IndicatorKind
from services.common.logs import get_logger
from services.common.principals import Principal
from services.identity.adapters.repository import DuplicateAccount
from services.identity.domain import names
from services.identity.domain.accounts import (
    BINDABLE_KINDS,
    PAYEE_KINDS,
    BoundAccount,
    Confirmation,
    PayeeMatch,
    PayeeSource,
    confirmation_for,
)
from services.identity.domain.lookups import (
    Partner,
    PartnerFailure,
    PayeeAnswer,
    PayeeCheck,
    SourceStatus,
)
from services.identity.domain.masking import mask_account
from services.identity.service_layer.access import require_self
from services.identity.service_layer.deps import Deps
from services.identity.service_layer.fanout import ask_all
from services.identity.service_layer.replay import Replay

log = get_logger("identity.accounts")

M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class AccountVerification:
    masked_value: str
    holder_masked_name: str | None  # None: not bound to a verified person
    confirmation: Confirmation | None
    risk_verdict: Any  # the risk service's Verdict, passed through; None when it did not answer
    risk_status: SourceStatus


@dataclass(frozen=True)
class PayeeResult:
    match: PayeeMatch
    masked_holder_name: str
    source: PayeeSource | None
    bank_id: str


@dataclass(frozen=True)
class BankAnswer:
    """The bank's confirmation of payee; ``check`` is None when no bank could answer."""

    check: PayeeCheck | None
    bank: Partner | None


def _check_kind(account: Indicator, allowed: frozenset[IndicatorKind], field: str) -> None:
    if account.kind not in allowed:
        kinds = ", ".join(sorted(k.name for k in allowed))
        raise InvalidArgument.field(f"{field}.kind", f"must be one of {kinds}")


async def ask_bank(deps: Deps, account: Indicator, name: str) -> BankAnswer:
    """The holding bank's answer; every bank is asked when the directory cannot route it."""
    routed = deps.banks.bank_for(account)
    candidates = [routed] if routed is not None else list(deps.banks.banks())
    answers = await ask_all(
        candidates,
        lambda bank: deps.banks.check_payee(bank, account, name),
        deps.settings.partner_timeout_seconds,
    )
    for answer in answers:
        if answer.value is not None and answer.value.answer is not PayeeAnswer.ACCOUNT_NOT_FOUND:
            return BankAnswer(answer.value, answer.partner)
    if answers and all(a.status is SourceStatus.OK for a in answers):
        return BankAnswer(PayeeCheck(PayeeAnswer.ACCOUNT_NOT_FOUND, ""), None)
    return BankAnswer(None, None)


async def bind_account(
    deps: Deps,
    principal: Principal,
    user_id: str,
    account: Indicator,
    replay: Replay[BoundAccount, M],
    request_id: str,
) -> M:
    require_self(principal, user_id)
    _check_kind(account, BINDABLE_KINDS, "account")
    confirmation = confirmation_for(account.kind)
    async with deps.uow() as uow:
        done = await replay.recall(uow.conn)
        if done is not None:
            return done
        repo = uow.repo
        if await repo.get_user(user_id) is None:
            raise NotFound(f"users/{user_id} not found")
        if await repo.account_holder(account) is not None:
            raise AlreadyExists("the account is already bound to a verified person")
        name = ""
        if confirmation is Confirmation.BANK_CONFIRMED:
            revealed = await repo.reveal(
                user_id,
                ("name",),
                actor=principal.audit_actor,
                purpose="BindAccount (bank confirms the holder's name)",
                request_id=request_id,
                now=deps.clock(),
            )
            name = revealed.name if revealed is not None else ""
            await uow.commit()
    if confirmation is Confirmation.BANK_CONFIRMED:
        answer = await ask_bank(deps, account, name)
        if answer.check is None:
            raise Unavailable("the bank is unavailable; retry with the same request_id")
        if answer.check.answer is not PayeeAnswer.MATCH:
            raise FailedPrecondition("the bank does not confirm the account is held in your name")
    now = deps.clock()
    async with deps.uow() as uow:
        done = await replay.recall(uow.conn)
        if done is not None:
            return done
        try:
            bound = await uow.repo.add_account(
                str(uuid.uuid4()), user_id, account, mask_account(account), confirmation, now
            )
        except DuplicateAccount:
            raise AlreadyExists("the account is already bound to a verified person") from None
        response = await replay.remember(uow.conn, bound)
        await uow.commit()
    log.info(
        "account bound", user_id=user_id, kind=account.kind.name, confirmation=confirmation.name
    )
    return response


async def verify_account(
    deps: Deps, principal: Principal, account: Indicator
) -> AccountVerification:
    _check_kind(account, BINDABLE_KINDS, "account")
    async with deps.uow() as uow:
        repo = uow.repo
        bound = await repo.account_holder(account)
        holder = None if bound is None else await repo.get_user(bound.user_id)
    try:
        verdict = await deps.risk.check(account)
        status = SourceStatus.OK
    except PartnerFailure as exc:
        verdict, status = None, exc.status
    return AccountVerification(
        masked_value=mask_account(account),
        holder_masked_name=None if holder is None else holder.masked_name,
        confirmation=None if bound is None else bound.confirmation,
        risk_verdict=verdict,
        risk_status=status,
    )


async def check_payee(
    deps: Deps, principal: Principal, account: Indicator, payee_name: str, request_id: str
) -> PayeeResult:
    _check_kind(account, PAYEE_KINDS, "account")
    async with deps.uow() as uow:
        repo = uow.repo
        bound = await repo.account_holder(account)
        # Only a binding the bank confirmed speaks for the holder's name; a self-declared
        # one could be anyone's claim, so the bank is asked instead.
        if bound is not None and bound.confirmation is Confirmation.BANK_CONFIRMED:
            holder = await repo.get_user(bound.user_id)
            revealed = await repo.reveal(
                bound.user_id,
                ("name",),
                actor=principal.audit_actor,
                purpose="CheckPayee (confirmation of payee)",
                request_id=request_id,
                now=deps.clock(),
            )
            await uow.commit()
            if holder is not None and revealed is not None:
                match = PayeeMatch(int(names.compare(payee_name, revealed.name)))
                shown = holder.masked_name if match is not PayeeMatch.NO_MATCH else ""
                return PayeeResult(match, shown, PayeeSource.BOUND_ACCOUNT, "")
    answer = await ask_bank(deps, account, payee_name)
    if answer.check is None:
        return PayeeResult(PayeeMatch.UNAVAILABLE, "", None, "")
    if answer.check.answer is PayeeAnswer.ACCOUNT_NOT_FOUND:
        return PayeeResult(PayeeMatch.NO_MATCH, "", PayeeSource.BANK, "")
    match = PayeeMatch(int(answer.check.answer))
    shown = answer.check.masked_holder_name if match is not PayeeMatch.NO_MATCH else ""
    bank_id = answer.bank.id if answer.bank is not None else ""
    return PayeeResult(match, shown, PayeeSource.BANK, bank_id)
