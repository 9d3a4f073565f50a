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
    PermissionDenied,
    Unavailable,
)
from services.common.indicators import Indicator, IndicatorKind
from services.common.logs import get_logger
from services.common.principals import Principal, Role
from services.identity.adapters.repository import DuplicateAccount
from services.identity.domain import messages, names
from services.identity.domain.accounts import (
    BINDABLE_KINDS,
    PAYEE_KINDS,
    BoundAccount,
    Confirmation,
    HolderAnswer,
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
from services.identity.service_layer.access import require_role, require_self
from services.identity.service_layer.deps import Deps
from services.identity.service_layer.fanout import ask_all
from services.identity.service_layer.notifications import enqueue_user_notice
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
    """Binds an account its partner confirms is the caller's; moves it from whoever had it."""
    require_self(principal, user_id)
    _check_kind(account, BINDABLE_KINDS, "account")
    confirmation = confirmation_for(account.kind)
    partner = deps.banks.holder_confirmer(account)
    if partner is None:
        raise FailedPrecondition("no platform or bank partner can confirm this account is yours")
    async with deps.uow() as uow:
        done = await replay.recall(uow.conn)
        if done is not None:
            return done
        repo = uow.repo
        held = await repo.account_holder(account)
        if held is not None and held.user_id == user_id:
            raise AlreadyExists("you have bound this account already")
        revealed = await repo.reveal(
            user_id,
            ("name", "id_number"),
            actor=principal.audit_actor,
            purpose="BindAccount (the platform or bank confirms the holder)",
            request_id=request_id,
            now=deps.clock(),
        )
        if revealed is None:
            raise NotFound(f"users/{user_id} not found")
        await uow.commit()
    try:
        answer = await deps.banks.confirm_holder(
            partner,
            account,
            revealed.id_number,
            revealed.name,
            consent=f"users/{user_id}/bindAccount/{request_id}",
        )
    except PartnerFailure:
        raise Unavailable(
            "the account's platform or bank is unavailable; retry with the same request_id"
        ) from None
    if answer is not HolderAnswer.MATCH:
        # Said the same way whether the account exists or is someone else's.
        raise FailedPrecondition("the account's platform or bank does not confirm it is yours")
    now = deps.clock()
    async with deps.uow() as uow:
        done = await replay.claim(uow.conn)
        if done is not None:
            return done
        repo = uow.repo
        former = await repo.account_holder(account)
        if former is not None and former.user_id == user_id:
            raise AlreadyExists("you have bound this account already")
        if former is not None:
            # The partner just confirmed the caller holds it: the other binding is a squat
            # or out of date (the account changed hands). It goes; its binder is told.
            await repo.release_account(former.id)
            await enqueue_user_notice(
                uow.conn,
                f"account-moved:{former.id}",
                former.user_id,
                messages.account_moved(former.masked_account),
            )
        try:
            bound = await repo.add_account(
                str(uuid.uuid4()), user_id, account, mask_account(account), confirmation, now
            )
        except DuplicateAccount:
            raise Unavailable("the account is being bound right now; retry") from None
        response = await replay.remember(uow.conn, bound)
        await uow.commit()
    if former is not None:
        deps.wake_outbox()
    log.info(
        "account bound",
        user_id=user_id,
        kind=account.kind.name,
        confirmation=confirmation.name,
        moved_from=None if former is None else former.user_id,
    )
    return response


async def list_accounts(deps: Deps, principal: Principal, user_id: str) -> list[BoundAccount]:
    require_self(principal, user_id)
    async with deps.uow() as uow:
        return await uow.repo.accounts_of(user_id)


async def unbind_account(deps: Deps, principal: Principal, user_id: str, account_id: str) -> None:
    require_self(principal, user_id)
    async with deps.uow() as uow:
        mine = [a for a in await uow.repo.accounts_of(user_id) if a.id == account_id]
        if not mine:
            raise NotFound(f"users/{user_id}/accounts/{account_id} not found")
        await uow.repo.release_account(account_id)
        await uow.commit()
    log.info("account unbound", user_id=user_id)


async def verify_account(
    deps: Deps, principal: Principal, account: Indicator
) -> AccountVerification:
    # Registered citizens (before paying someone) and staff; see the gateway policy table.
    if principal.role is Role.CITIZEN and principal.anonymous:
        raise PermissionDenied("register with your real name first")
    require_role(principal, Role.CITIZEN, Role.ANALYST, Role.ADMIN, Role.INTERNAL)
    _check_kind(account, BINDABLE_KINDS, "account")
    async with deps.uow() as uow:
        repo = uow.repo
        bound = await repo.account_holder(account)
        if bound is not None and not bound.confirmation.vouched:
            bound = None  # a binding no partner confirmed vouches for no one
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
