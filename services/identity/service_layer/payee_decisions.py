"""The pre-payment decision for banks (this service owns the rule), the bank's
acknowledgement of what it did, the counts of both, and the payer's consent.

Why here: confirmation of payee is already this service's (bound accounts, the banks'
name checks), the payer's registration and consent are personal data it holds under
PIPL, and it already asks the risk service for verdicts. The gateway stays a door that
forwards the bank's request; risk stays free of personal data.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.common.errors import FailedPrecondition, NotFound
from services.common.fraud_types import RiskLevel
from services.common.indicators import Indicator
from services.common.logs import get_logger
from services.common.principals import Principal, Role
from services.identity.adapters import payee_decisions_repo as repo
from services.identity.adapters.payee_decisions_repo import StoredDecision
from services.identity.domain.accounts import PayeeMatch
from services.identity.domain.lookups import PartnerFailure
from services.identity.domain.payee_decision import (
    Decision,
    PayeeAction,
    PayeeOutcome,
    Signals,
    decide,
)
from services.identity.service_layer.access import require_role, require_self
from services.identity.service_layer.accounts import PayeeResult, check_payee
from services.identity.service_layer.deps import Deps
from services.identity.service_layer.ports import ContactChecker

log = get_logger("identity.payee")


@dataclass(frozen=True)
class PayeeVerdict:
    decision: Decision
    name: PayeeResult | None
    verdict: Any  # the risk service's Verdict message, None when it did not answer
    decision_id: str


async def _risk(deps: Deps, account: Indicator) -> Any:
    try:
        return await deps.risk.check(account)
    except PartnerFailure:
        return None


async def _risky_contact(deps: Deps, contacts: ContactChecker | None, payer_phone: str) -> bool:
    """Only a registered citizen who consented; any failure to ask counts as nothing known."""
    if not payer_phone or contacts is None:
        return False
    async with deps.uow() as uow:
        user = await uow.repo.user_by_phone_index(uow.repo.phone_index(payer_phone))
        if user is None or not await repo.consented(uow.conn, user.id):
            return False
    try:
        return await contacts.recent_risky_contact(payer_phone)
    except PartnerFailure:
        log.warning("payer contacts not read for a payee decision")
        return False


async def decide_payment(
    deps: Deps,
    contacts: ContactChecker | None,
    principal: Principal,
    account: Indicator,
    payee_name: str,
    payer_phone: str,
    request_id: str,
) -> PayeeVerdict:
    require_role(principal, Role.BANK, Role.ADMIN, Role.INTERNAL)

    async def name() -> PayeeResult | None:
        if not payee_name:
            return None
        return await check_payee(deps, principal, account, payee_name, request_id)

    named, verdict, contact = await asyncio.gather(
        name(), _risk(deps, account), _risky_contact(deps, contacts, payer_phone)
    )
    level = None if verdict is None else RiskLevel(int(verdict.level) or int(RiskLevel.NONE))
    decision = decide(
        Signals(
            name=None if named is None else PayeeMatch(named.match),
            risk=level,
            risky_contact=contact,
        )
    )
    stored = StoredDecision(
        id=str(uuid.uuid4()),
        bank=principal.audit_actor,
        action=decision.action,
        reasons=decision.reasons,
        outcome=None,
        create_time=deps.clock(),
        acknowledge_time=None,
    )
    async with deps.uow() as uow:
        await repo.insert(uow.conn, stored)
        await uow.commit()
    log.info(
        "payee decision",
        action=decision.action.name,
        reasons=[r.name for r in decision.reasons],
    )
    return PayeeVerdict(decision, named, verdict, stored.id)


async def acknowledge(
    deps: Deps, principal: Principal, decision_id: str, outcome: PayeeOutcome
) -> StoredDecision:
    """The bank that was given the decision says what it did; the first answer stands."""
    require_role(principal, Role.BANK, Role.ADMIN)
    async with deps.uow() as uow:
        found = await repo.get(uow.conn, decision_id)
        if found is None or (principal.role is Role.BANK and found.bank != principal.audit_actor):
            # Another bank's decision does not exist as far as this bank can tell.
            raise NotFound(f"payeeDecisions/{decision_id} not found")
        if found.outcome is not None and found.outcome is not outcome:
            raise FailedPrecondition(
                f"payeeDecisions/{decision_id} was already acknowledged as {found.outcome.name}"
            )
        await repo.set_outcome(uow.conn, decision_id, outcome, deps.clock())
        await uow.commit()
        fresh = await repo.get(uow.conn, decision_id)
    assert fresh is not None
    return fresh


async def stats(
    deps: Deps, principal: Principal, start: datetime | None, end: datetime | None
) -> list[tuple[PayeeAction, PayeeOutcome | None, int]]:
    require_role(principal, Role.ANALYST, Role.ADMIN)
    async with deps.db.read() as conn:
        return await repo.counts(conn, start, end)


async def set_consent(deps: Deps, principal: Principal, user_id: str, consent: bool) -> datetime:
    require_self(principal, user_id)
    now = deps.clock()
    async with deps.uow() as uow:
        if await uow.repo.get_user(user_id) is None:
            raise NotFound(f"users/{user_id} not found")
        await repo.set_consent(uow.conn, user_id, consent, now)
        await uow.commit()
    log.info("payee check consent", user_id=user_id, consent=consent)
    return now
