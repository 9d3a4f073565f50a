"""Personal data in reports and cases: reveals of texts as typed, export, erasure, the
background re-seal (older rows, key rotation) and retention.

Every reveal and export writes its audit event in the transaction that reads the
sealed text, and the caller commits it before the text leaves the service.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from services.common import audit, pagination
from services.common.db import Database, UnitOfWork
from services.common.errors import InvalidArgument, NotFound, PermissionDenied
from services.common.logs import get_logger
from services.common.principals import Principal
from services.report.adapters import tables
from services.report.adapters.repository import Original, ReportRepository
from services.report.domain.model import Case, Evidence, Report

log = get_logger("report.privacy")

#: How many rows one re-seal transaction rewrites.
RESEAL_BATCH = 200


def reporter_of(user_id: str) -> str:
    """The reporter key a registered citizen's reports are counted under."""
    return f"citizen:{user_id}"


async def reveal(
    uow: UnitOfWork, caller: Principal, name: str, purpose: str, now: datetime
) -> Original:
    """A report's or case's text as typed, for staff with a purpose; audited."""
    if not caller.staff:
        raise PermissionDenied("only analysts may see texts as typed")
    if not purpose.strip():
        raise InvalidArgument.field("purpose", "say why the text as typed is needed")
    kind, _, row_id = name.partition("/")
    if kind not in ("reports", "cases") or not row_id or "/" in row_id:
        raise InvalidArgument.field("name", "must be reports/{report} or cases/{case}")
    repo = ReportRepository(uow.conn)
    await audit.record(
        uow.conn,
        tables.audit_events,
        actor=caller.audit_actor,
        record=name,
        fields=("description", "sms_text") if kind == "reports" else ("description",),
        purpose=purpose.strip(),
        now=now,
    )
    found = await repo.original(kind, row_id)
    if found is None:
        raise NotFound(f"{name} not found")
    return found


async def audit_log(
    db: Database, caller: Principal, record: str, actor: str, page_size: int, page_token: str
) -> tuple[list[audit.AuditEntry], str]:
    """This service's audit log, newest first, for staff; and the next page's token."""
    if not caller.staff:
        raise PermissionDenied("only analysts may read the audit log")
    before = pagination.decode_before(page_token)
    async with db.read() as conn:
        found = await audit.list_page(
            conn,
            tables.audit_events,
            record=record or None,
            actor=actor or None,
            before_id=before,
            limit=page_size + 1,
        )
    if len(found) <= page_size:
        return found, ""
    return found[:page_size], pagination.encode({"before": found[page_size - 1].id})


@dataclass(frozen=True, slots=True)
class Export:
    reports: list[Report]
    cases: list[Case]


async def export(uow: UnitOfWork, user_id: str, now: datetime) -> Export:
    """The user's reports and cases with their texts as typed; audited."""
    repo = ReportRepository(uow.conn)
    reporter = reporter_of(user_id)
    reports = []
    for report in await repo.reports_of(reporter):
        original = await repo.original("reports", report.id)
        if original is not None:
            report = replace(
                report,
                description=original.description,
                evidence=_with_sms(report.evidence, original.sms_text),
            )
        reports.append(report)
    cases = []
    for case in await repo.cases_of(reporter):
        original = await repo.original("cases", case.id)
        cases.append(case if original is None else replace(case, description=original.description))
    await audit.record(
        uow.conn,
        tables.audit_events,
        actor=reporter,
        record=f"reporters/{reporter}",
        fields=("reports", "cases"),
        purpose="export requested by the person",
        now=now,
    )
    return Export(reports, cases)


def _with_sms(evidence: Evidence, sms_text: str) -> Evidence:
    return Evidence(sms_text, evidence.call_time, evidence.amount_requested, evidence.attachments)


@dataclass(frozen=True, slots=True)
class Erased:
    deleted_reports: int
    anonymised_reports: int
    anonymised_cases: int


async def erase(uow: UnitOfWork, user_id: str, now: datetime) -> Erased:
    """Erase a reporter: reports that are no evidence go; confirmed reports and those of a
    case stay, with cases, under a pseudonym and without texts as typed. Audited."""
    repo = ReportRepository(uow.conn)
    reporter = reporter_of(user_id)
    pseudonym = f"erased:{uuid.uuid4().hex}"
    deleted, reports, cases = await repo.erase_reporter(reporter, pseudonym, now)
    calls = tables.knowledge_announced_calls
    await uow.conn.execute(sa.delete(calls).where(calls.c.callee_user_id == user_id))
    await audit.record(
        uow.conn,
        tables.audit_events,
        actor=reporter,
        record=f"reporters/{reporter}",
        fields=("reports", "cases"),
        purpose=f"erasure requested by the person; kept as {pseudonym}",
        now=now,
    )
    return Erased(deleted, reports, cases)


@dataclass
class PrivacyJobs:
    """In the background: seal rows an older version left in clear and move rows sealed
    under a retired data key to the current one (rotation); every ``retention_seconds``,
    delete reports past their retention (docs/data.md)."""

    db: Database
    retention: timedelta = timedelta(days=365)
    retention_seconds: float = 3600.0
    _last_prune: float = 0.0

    async def reseal(self) -> int:
        """One pass over both tables; returns how many rows were rewritten."""
        total = 0
        for kind in ("reports", "cases"):
            while True:
                async with UnitOfWork(self.db) as uow:
                    done = await ReportRepository(uow.conn).reseal_batch(kind, RESEAL_BATCH)
                    await uow.commit()
                total += done
                if done < RESEAL_BATCH:
                    break
        if total:
            log.info("texts re-sealed", rows=total)
        return total

    async def prune(self, now: datetime | None = None) -> int:
        cutoff = (now or datetime.now(UTC)) - self.retention
        total = 0
        while True:
            async with UnitOfWork(self.db) as uow:
                done = await ReportRepository(uow.conn).prune_reports(cutoff)
                await uow.commit()
            total += done
            if done == 0:
                break
        if total:
            log.info("reports past retention deleted", reports=total)
        return total

    async def step(self) -> float:
        await self.reseal()
        loop_time = datetime.now(UTC).timestamp()
        if loop_time - self._last_prune >= self.retention_seconds:
            self._last_prune = loop_time
            await self.prune()
        return 60.0
