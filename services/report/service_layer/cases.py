"""Handlers for cases (报案助手): file one, read one with its orders' status, list them.

Filing is one transaction: the case, its payees, the report made of its suspect
indicators and, per payee, the two outgoing events (list the account at HIGH,
send a stop-payment order). The relay delivers them within moments of the commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Protocol

from services.common.db import Database
from services.common.errors import FailedPrecondition, PermissionDenied, ResourceExhausted
from services.common.indicators import Indicator
from services.common.logs import get_logger
from services.common.principals import Principal
from services.report.adapters.repository import CaseFilter, ReportRepository
from services.report.domain import access, case_lifecycle, limits
from services.report.domain.corroboration import Rules
from services.report.domain.model import (
    Case,
    CaseEventType,
    CaseStatus,
    Money,
    NewCase,
    NewReport,
    Payee,
    ReportKind,
    StopPaymentStatus,
    case_name,
)
from services.report.service_layer import events, paging
from services.report.service_layer.reports import accept, new_id, not_found
from services.report.service_layer.unit_of_work import ReportUnitOfWork

log = get_logger("report")

#: How long GetCase waits for the warning service before showing the last known status.
ORDER_READ_SECONDS = 1.0


class OrderState(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def status(self) -> StopPaymentStatus: ...

    @property
    def detail(self) -> str: ...

    @property
    def account(self) -> Indicator: ...

    @property
    def held_amount(self) -> Money | None: ...

    @property
    def hold_expire_time(self) -> datetime | None: ...


class CaseOrders(Protocol):
    """Reads the stop-payment orders of a case from the warning service."""

    async def orders_of_case(self, case_id: str, *, timeout: float) -> Sequence[OrderState]: ...


async def _check_rate(
    repo: ReportRepository, caller: Principal, rules: Rules, now: datetime
) -> None:
    limit = rules.case_rate_limit
    count, freeing = await repo.cases_since(
        access.reporter(caller), now - rules.case_rate_window, limit
    )
    verdict = limits.check(count, freeing, limit, rules.case_rate_window, now)
    if not verdict.allowed:
        raise ResourceExhausted(
            f"too many cases: at most {limit} every "
            f"{int(rules.case_rate_window.total_seconds() // 3600)} hours",
            verdict.retry_after,
        )


def _report_of(case_id: str, new: NewCase) -> NewReport:
    return NewReport(
        kind=ReportKind.OTHER,
        indicators=new.suspects,
        description=f"Filed with case {case_name(case_id)}: {new.description}"[:5000],
        incident_time=new.incident_time,
        category=new.category,
    )


async def file(
    uow: ReportUnitOfWork, caller: Principal, new: NewCase, rules: Rules, now: datetime
) -> Case:
    if not access.may_file_case(caller):
        raise PermissionDenied("filing a case needs a registered user")
    repo = uow.repo
    # The filer's row serialises their filings, so the case rate limit holds with replicas.
    await repo.lock_reporter(access.reporter(caller), False, now)
    if access.rate_limited(caller):
        await _check_rate(repo, caller, rules, now)
    case_id = new_id()
    report_id = None
    if new.suspects:
        # The victim's suspects corroborate like any report; not rate limited on their own.
        report = await accept(
            repo, caller, _report_of(case_id, new), rules, now, case_id=case_id, rate_limited=False
        )
        report_id = report.id
    await repo.insert_case(
        case_id=case_id,
        filer=access.reporter(caller),
        description=new.description,
        category=new.category,
        amount_lost=new.amount_lost,
        incident_time=new.incident_time,
        payees=new.payees,
        suspects=new.suspects,
        report_id=report_id,
        now=now,
    )
    for position in range(len(new.payees)):
        await events.case_payee(uow.conn, case_id, position)
    case = await repo.get_case(case_id)
    assert case is not None
    return case


async def get(repo: ReportRepository, caller: Principal, case_id: str) -> Case:
    case = await repo.get_case(case_id)
    if case is None or not access.may_see(caller, case.filer):
        raise not_found(case_name(case_id))
    return case


def _match(payee: Payee, orders: Sequence[OrderState]) -> OrderState | None:
    """The order for a payee: by the name we stored, else (not yet stored) by account."""
    if payee.bank_order:
        return next((o for o in orders if o.name == payee.bank_order), None)
    return next((o for o in orders if o.account == payee.account), None)


def _status_text(case: Case) -> str:
    """What a status change says to the victim."""
    held = case_lifecycle.held_amount(case.payees)
    amount = f"{held.units}.{held.nanos // 10_000_000:02d} {held.currency}"
    return {
        CaseStatus.ORDERS_SENT: "stop-payment orders sent to the banks",
        CaseStatus.HELD: f"the banks hold {amount}",
        CaseStatus.RELEASED: "every hold ended; no funds were returned",
        CaseStatus.TRANSFERRED: "held funds were transferred back to you",
    }.get(case.status, "")


async def restate(repo: ReportRepository, case_id: str, now: datetime) -> Case:
    """Bring a case's stored status in line with its orders; a move goes into its history."""
    case = await repo.lock_case(case_id)
    assert case is not None
    status = case_lifecycle.status_of(case.payees, case.status is CaseStatus.CLOSED)
    if status is case.status:
        return case
    await repo.update_case(case_id, now, status=status)
    moved = replace(case, status=status)
    await repo.add_case_event(
        case_id, CaseEventType.STATUS_CHANGED, status, _status_text(moved), "system", now
    )
    return await _reread(repo, case_id)


async def record_order(
    repo: ReportRepository, case_id: str, position: int, order: OrderState, now: datetime
) -> bool:
    """Store what the warning service says of one payee's order; True when it moved."""
    return await repo.update_payee(
        case_id,
        position,
        status=order.status,
        now=now,
        bank_order=order.name,
        detail=order.detail,
        held=order.held_amount,
        hold_expire_time=order.hold_expire_time,
    )


async def get_with_orders(
    db: Database, caller: Principal, case_id: str, orders: CaseOrders, now: datetime
) -> Case:
    """A case with its orders' status read from the warning service, and stored when it moved.

    The warning service is asked outside any transaction; when it cannot be reached
    in time, the stored (last known) status stands.
    """
    async with db.read() as conn:
        case = await get(ReportRepository(conn), caller, case_id)
    return await refresh(db, case, orders, now)


async def refresh(db: Database, case: Case, orders: CaseOrders, now: datetime) -> Case:
    """Read a case's orders at the warning service and store what moved (and the status)."""
    if not case.payees or all(p.status.final for p in case.payees):
        return case
    try:
        found = await orders.orders_of_case(case.id, timeout=ORDER_READ_SECONDS)
    except Exception as exc:  # any failure to read leaves the last known status
        log.warning("bank orders not read", case=case_name(case.id), error=type(exc).__name__)
        return case
    async with ReportUnitOfWork(db) as uow:
        changed = False
        for payee in case.payees:
            order = _match(payee, found)
            if order is not None:
                changed |= await record_order(uow.repo, case.id, payee.position, order, now)
        if not changed:
            return case
        fresh = await restate(uow.repo, case.id, now)
        await uow.commit()
    return fresh


# --- officers' acts ---------------------------------------------------------------------------


async def _staff_case(repo: ReportRepository, caller: Principal, case_id: str) -> Case:
    if not caller.staff:
        raise PermissionDenied("only officers work cases")
    case = await repo.lock_case(case_id)
    if case is None:
        raise not_found(case_name(case_id))
    return case


async def _reread(repo: ReportRepository, case_id: str) -> Case:
    """The case as the transaction now sees it, after a change of its status or events."""
    fresh = await repo.get_case(case_id)
    assert fresh is not None  # read under the same transaction that found it
    return fresh


async def assign(
    uow: ReportUnitOfWork, caller: Principal, case_id: str, officer: str, now: datetime
) -> Case:
    repo = uow.repo
    case = await _staff_case(repo, caller, case_id)
    officer = officer or caller.audit_actor
    if officer != case.officer:
        await repo.update_case(case_id, now, officer=officer)
        await repo.add_case_event(
            case_id, CaseEventType.ASSIGNED, case.status, officer, caller.audit_actor, now
        )
    return await _reread(repo, case_id)


async def reply(
    uow: ReportUnitOfWork, caller: Principal, case_id: str, text: str, now: datetime
) -> Case:
    repo = uow.repo
    case = await _staff_case(repo, caller, case_id)
    await repo.update_case(case_id, now)
    await repo.add_case_event(
        case_id, CaseEventType.REPLY, case.status, text, caller.audit_actor, now
    )
    return await _reread(repo, case_id)


async def close(
    uow: ReportUnitOfWork, caller: Principal, case_id: str, reason: str, now: datetime
) -> Case:
    repo = uow.repo
    case = await _staff_case(repo, caller, case_id)
    if case.status is CaseStatus.CLOSED:
        return case
    if not case_lifecycle.may_close(case.payees):
        raise FailedPrecondition(
            f"{case_name(case_id)} still has funds held at a bank: release or return them first"
        )
    await repo.update_case(case_id, now, status=CaseStatus.CLOSED)
    await repo.add_case_event(
        case_id, CaseEventType.CLOSED, CaseStatus.CLOSED, reason, caller.audit_actor, now
    )
    return await _reread(repo, case_id)


@dataclass(frozen=True, slots=True)
class CasePage:
    cases: list[Case]
    next_page_token: str


async def list_page(
    repo: ReportRepository, caller: Principal, where: CaseFilter, size: int, token: str
) -> CasePage:
    if not caller.staff:
        if caller.anonymous:
            raise PermissionDenied("anonymous callers have no cases")
        if where.officer is not None:
            raise PermissionDenied("only officers list cases by officer")
        where = replace(where, filer=access.reporter(caller))
    digest = paging.digest({**asdict(where), "statuses": [int(s) for s in where.statuses]})
    cases = await repo.list_cases(where, paging.position(token, digest), size + 1)
    next_token = ""
    if len(cases) > size:
        cases = cases[:size]
        next_token = paging.token(cases[-1].create_time, cases[-1].id, digest)
    return CasePage(cases, next_token)
