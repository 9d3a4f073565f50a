"""Reading and writing reports, indicators, reviews and cases inside one transaction.

Every method runs on the unit of work's connection; nothing here commits. Rows
that concurrent submissions race on (a reporter, an indicator) are locked in a
fixed order (reporter first, then indicators by key) so two replicas on one
PostgreSQL database serialise on them without deadlocking.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.indicators import Indicator, IndicatorKind
from services.common.redaction import mask_identifiers
from services.common.vault import Vault, of_connection
from services.report.adapters import tables as t
from services.report.domain.corroboration import Tally
from services.report.domain.model import (
    OPEN_STATUSES,
    Attachment,
    Case,
    CaseEvent,
    CaseEventType,
    CaseStatus,
    Evidence,
    Finding,
    FraudCategory,
    Money,
    NewPayee,
    Payee,
    Report,
    ReportKind,
    ReportStatus,
    Review,
    ReviewDecision,
    Standing,
    StopPaymentStatus,
)


def utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time we store is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


def indicator_key(indicator: Indicator) -> str:
    return hashlib.sha256(f"{int(indicator.kind)}:{indicator.value}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class IndicatorRow:
    id: int
    key: str
    indicator: Indicator
    standing: Standing
    reporter_count: int
    score: float
    categories: tuple[FraudCategory, ...]
    reset_time: datetime | None
    version: int
    synced_version: int


@dataclass(frozen=True, slots=True)
class ReportFilter:
    statuses: tuple[ReportStatus, ...] = ()
    kind: ReportKind | None = None
    indicator: Indicator | None = None
    start: datetime | None = None
    end: datetime | None = None
    reporter: str | None = None
    oldest_first: bool = False


@dataclass(frozen=True, slots=True)
class CaseFilter:
    filer: str | None = None
    category: FraudCategory | None = None
    start: datetime | None = None
    end: datetime | None = None
    statuses: tuple[CaseStatus, ...] = ()
    officer: str | None = None


@dataclass(frozen=True, slots=True)
class ReviewQueueFilter:
    kind: IndicatorKind | None = None
    standing: Standing | None = None


@dataclass(frozen=True, slots=True)
class QueuedIndicator:
    """An indicator of the review queue: its open reports counted."""

    id: int
    finding: Finding
    open_reports: int
    distinct_reporters: int
    oldest: datetime
    newest: datetime


@dataclass(frozen=True, slots=True)
class NamingReport:
    """A report naming an indicator, as a per-indicator review sees it."""

    id: str
    reporter: str
    status: ReportStatus


@dataclass(frozen=True, slots=True)
class Position:
    """A keyset position: the last row of the previous page."""

    time: datetime
    id: str


@dataclass(frozen=True, slots=True)
class Stats:
    by_status: dict[ReportStatus, int]
    by_kind: dict[ReportKind, int]
    corroborated: int
    confirmed: int


# --- (de)serialising the JSON columns ---------------------------------------------------------


def _money_json(money: Money | None) -> list[Any] | None:
    return None if money is None else [money.currency, money.units, money.nanos]


def _money_from(raw: Any) -> Money | None:
    if raw is None:
        return None
    currency, units, nanos = raw
    return Money(str(currency), int(units), int(nanos))


def evidence_json(evidence: Evidence) -> dict[str, Any]:
    return {
        "sms_text": evidence.sms_text,
        "call_time": evidence.call_time.isoformat() if evidence.call_time else None,
        "amount_requested": _money_json(evidence.amount_requested),
        "attachments": [[a.sha256, a.size_bytes, a.media_type] for a in evidence.attachments],
    }


def evidence_from(raw: dict[str, Any]) -> Evidence:
    call_time = raw.get("call_time")
    return Evidence(
        sms_text=str(raw.get("sms_text") or ""),
        call_time=datetime.fromisoformat(call_time) if call_time else None,
        amount_requested=_money_from(raw.get("amount_requested")),
        attachments=tuple(
            Attachment(str(sha), int(size), str(media))
            for sha, size, media in raw.get("attachments") or ()
        ),
    )


def _categories(raw: Any) -> tuple[FraudCategory, ...]:
    return tuple(FraudCategory(int(c)) for c in raw or ())


def mask_text(text: str) -> str:
    """Free text as it is stored and shown: identifiers masked."""
    return mask_identifiers(text).text


def mask_evidence(evidence: Evidence) -> Evidence:
    if not evidence.sms_text:
        return evidence
    return Evidence(
        sms_text=mask_text(evidence.sms_text),
        call_time=evidence.call_time,
        amount_requested=evidence.amount_requested,
        attachments=evidence.attachments,
    )


#: ``key_id`` of a row whose text as typed was dropped (its reporter was erased).
DROPPED = ""


def report_place(report_id: str) -> str:
    return f"reports.original:{report_id}"


def case_place(case_id: str) -> str:
    return f"cases.original:{case_id}"


@dataclass(frozen=True, slots=True)
class Original:
    """A text as typed: a description and (reports) the evidence SMS text."""

    description: str
    sms_text: str = ""

    def seal(self, vault: Vault, place: str) -> bytes:
        raw = json.dumps({"d": self.description, "s": self.sms_text}, ensure_ascii=False)
        return vault.seal(raw, place=place)

    @classmethod
    def open(cls, vault: Vault, sealed: bytes, place: str) -> Original:
        raw = json.loads(vault.open(sealed, place=place))
        return cls(str(raw.get("d") or ""), str(raw.get("s") or ""))


@dataclass(frozen=True, slots=True)
class ReportRows:
    """A new report's rows (``ReportRepository.report_rows``), and its description and
    evidence as stored and shown (masked)."""

    report: dict[str, Any]
    links: list[dict[str, Any]]
    description: str
    evidence: Evidence


#: Per reporter, their counted reports about an indicator, and the categories they name.
Tallied = tuple[list[Tally], list[FraudCategory]]


# --- the statements of every accepted report, built once ------------------------------------
# (SQLAlchemy caches their compiled form; building the construct again on every call was a
# good part of the report process's CPU per report.)

_INSERT_REPORT = sa.insert(t.reports)
_INSERT_LINKS = sa.insert(t.report_indicators)


def bound_values(table: sa.Table, prefix: str) -> dict[str, Any]:
    """Every column of ``table`` as a parameter named ``<prefix><column>``: the values of an
    INSERT that shares a statement with another (a CTE), its parameters kept apart."""
    return {c.name: sa.bindparam(f"{prefix}{c.name}", type_=c.type) for c in table.c}


def _report_with_link() -> Any:
    """PostgreSQL: a report and its one indicator link in one statement, the report's INSERT
    a CTE (the link's foreign key is checked at the end of the statement, the report's row
    in place); parameters ``b_r_<column>`` and ``b_l_<column>``."""
    report = sa.insert(t.reports).values(bound_values(t.reports, "b_r_"))
    link = sa.insert(t.report_indicators).values(bound_values(t.report_indicators, "b_l_"))
    return link.add_cte(report.cte("new_report"))


_REPORT_WITH_LINK = _report_with_link()

UPDATE_INDICATOR = (
    sa.update(t.indicators)
    .where(t.indicators.c.id == sa.bindparam("b_id"))
    .values(
        standing=sa.bindparam("b_standing"),
        reporter_count=sa.bindparam("b_reporter_count"),
        score=sa.bindparam("b_score"),
        categories=sa.bindparam("b_categories", type_=t.indicators.c.categories.type),
        reset_time=sa.bindparam("b_reset_time", type_=t.indicators.c.reset_time.type),
        version=sa.bindparam("b_version"),
        update_time=sa.bindparam("b_update_time", type_=t.indicators.c.update_time.type),
    )
)


def indicator_update(
    indicator_id: int,
    standing: Standing,
    reporter_count: int,
    score: float,
    categories: Sequence[FraudCategory],
    reset_time: datetime | None,
    version: int,
    now: datetime,
) -> dict[str, Any]:
    """The parameters of ``UPDATE_INDICATOR`` for one indicator."""
    return {
        "b_id": indicator_id,
        "b_standing": int(standing),
        "b_reporter_count": reporter_count,
        "b_score": score,
        "b_categories": sorted({int(c) for c in categories}),
        "b_reset_time": reset_time,
        "b_version": version,
        "b_update_time": now,
    }


def _tallies(where: Any, *, by_indicator: bool = False, own: Any = None) -> sa.Select[Any]:
    """The counted reports (rejected ones do not count) of the report links ``where``
    selects, counted in the database: per class of reporter (anonymous or not, their
    confirmed and rejected counts: what their weight depends on) and set of categories
    named (a bit mask, bit ``c`` for category ``c``), how many distinct reporters and how
    many reports. With ``own`` (a reporter, bound), that reporter's on a row of their own
    (``reporter`` names them; a class's is ''), for the report about to be stored to be
    counted in. A number reported thousands of times comes back as a few rows, not one per
    reporter."""
    ri, r, rep = t.report_indicators, t.reports, t.reporters
    by = [ri.c.indicator_id] if by_indicator else []
    standing = [rep.c.anonymous, rep.c.confirmed_count, rep.c.rejected_count]
    bit = sa.literal(1, sa.Integer).op("<<", return_type=sa.Integer)(
        sa.cast(r.c.category, sa.Integer)
    )
    per_reporter = (
        sa.select(
            *by,
            ri.c.reporter,
            *standing,
            sa.func.count().label("reports"),
            sa.func.sum(sa.distinct(bit)).label("categories"),
        )
        .select_from(
            ri.join(r, r.c.id == ri.c.report_id).join(rep, rep.c.reporter == ri.c.reporter)
        )
        .where(where, r.c.status != int(ReportStatus.REJECTED))
        .group_by(*by, ri.c.reporter, *standing)
        .subquery("per_reporter")
    )
    p = per_reporter.c
    nobody = sa.literal_column("''", sa.String)
    key: Any = nobody if own is None else sa.case((p.reporter == own, p.reporter), else_=nobody)
    grouping = [
        *([p.indicator_id] if by_indicator else []),
        *([] if own is None else [key]),
        p.anonymous,
        p.confirmed_count,
        p.rejected_count,
        p.categories,
    ]
    return sa.select(
        *([p.indicator_id] if by_indicator else []),
        key.label("reporter"),
        p.anonymous,
        p.confirmed_count,
        p.rejected_count,
        p.categories,
        sa.func.count().label("reporters"),
        sa.func.sum(p.reports).label("reports"),
    ).group_by(*grouping)


def _tallied(rows: Iterable[Any]) -> Tallied:
    """Tallies from ``_tallies``' rows (and the report about to be stored, ``tallied_with``):
    a class of reporters is a tally of its own; a named reporter's rows are added up."""
    merged: dict[str, Tally] = {}
    categories = 0
    for n, row in enumerate(rows):
        categories |= int(row.categories or 0)
        key = row.reporter or f"\0class-{n}"
        seen = merged.get(key)
        merged[key] = Tally(
            key,
            bool(row.anonymous),
            int(row.reports) + (seen.reports if seen else 0),
            int(row.confirmed_count),
            int(row.rejected_count),
            seen.reporters if seen else int(row.reporters),
        )
    named = sorted(c for c in FraudCategory if c and categories >> int(c) & 1)
    return list(merged.values()), named


_TALLIES = _tallies(
    sa.and_(
        t.report_indicators.c.indicator_id == sa.bindparam("b_indicator"),
        t.report_indicators.c.create_time
        >= sa.bindparam("b_since", type_=t.report_indicators.c.create_time.type),
    )
)


def _covering_query(reporter: Any, indicator_ids: Any, wanted: Any, since: Any) -> sa.Select[Any]:
    """The reporter's oldest open report since ``since`` naming every one of the
    ``wanted`` indicator ids (values or bound parameters)."""
    ri, r = t.report_indicators, t.reports
    still_open = [int(s) for s in (ReportStatus.RECEIVED, ReportStatus.UNDER_REVIEW)]
    return (
        sa.select(ri.c.report_id)
        .select_from(ri.join(r, r.c.id == ri.c.report_id))
        .where(
            ri.c.reporter == reporter,
            ri.c.indicator_id.in_(indicator_ids),
            ri.c.create_time >= since,
            r.c.status.in_(still_open),
        )
        .group_by(ri.c.report_id)
        .having(sa.func.count(sa.distinct(ri.c.indicator_id)) == wanted)
        .order_by(sa.func.min(ri.c.create_time), ri.c.report_id)
        .limit(1)
    )


def _build_intake_checks(rate: bool, covering: bool, tallied: int = 0) -> sa.Select[Any]:
    """The intake checks' one row (``recent``, ``covering``); with ``tallied`` indicators,
    joined to their tallies (``_tallies`` by indicator, the k-th since ``b_t_since_k``; none
    when nobody counts yet) and the reporter's own counts, so one read answers both."""
    r = t.reports
    reporter = sa.bindparam("b_reporter", type_=r.c.reporter.type)
    recent: Any = sa.literal(0)
    if rate:
        since = sa.bindparam("b_rate_since", type_=r.c.create_time.type)
        recent = (
            sa.select(sa.func.count())
            .where(r.c.reporter == reporter, r.c.create_time >= since)
            .scalar_subquery()
        )
    repeated: Any = sa.null()
    if covering:
        repeated = _covering_query(
            reporter,
            sa.bindparam("b_ids", expanding=True),
            sa.bindparam("b_wanted", type_=sa.Integer),
            sa.bindparam("b_since", type_=t.report_indicators.c.create_time.type),
        ).scalar_subquery()
    checks = sa.select(recent.label("recent"), repeated.label("covering"))
    if not tallied:
        return checks
    rep, ri = t.reporters, t.report_indicators

    def own(column: Any) -> Any:
        return sa.select(column).where(rep.c.reporter == reporter).scalar_subquery()

    checks = checks.add_columns(
        own(rep.c.anonymous).label("own_anonymous"),
        own(rep.c.confirmed_count).label("own_confirmed"),
        own(rep.c.rejected_count).label("own_rejected"),
    )
    head = checks.subquery("checks")
    created = ri.c.create_time.type
    counts = _tallies(
        sa.or_(
            *(
                sa.and_(
                    ri.c.indicator_id == sa.bindparam(f"b_t_id_{k}", type_=ri.c.indicator_id.type),
                    ri.c.create_time >= sa.bindparam(f"b_t_since_{k}", type_=created),
                )
                for k in range(tallied)
            )
        ),
        by_indicator=True,
        own=reporter,
    ).subquery("counts")
    return sa.select(head, counts).select_from(head.outerjoin(counts, sa.true()))


#: By whether the rate window and the duplicate check are read, and the number of
#: indicators whose tallies are read with them (built on first use).
_INTAKE_CHECKS: dict[tuple[bool, bool, int], sa.Select[Any]] = {}


def _intake_checks(rate: bool, covering: bool, tallied: int) -> sa.Select[Any]:
    key = (rate, covering, tallied)
    found = _INTAKE_CHECKS.get(key)
    if found is None:
        found = _INTAKE_CHECKS[key] = _build_intake_checks(rate, covering, tallied)
    return found


@dataclass(frozen=True, slots=True)
class TallyRow:
    """One row of ``_tallies``: a class of reporters' counted reports (``reporter`` '') or
    one reporter's (named), with the categories they name as a bit mask."""

    reporter: str
    categories: int
    anonymous: bool
    confirmed_count: int
    rejected_count: int
    reports: int
    reporters: int = 1


@dataclass(frozen=True, slots=True)
class IntakeRead:
    """What a report's intake reads before it is stored (``intake_checks``)."""

    count: int
    freeing: datetime | None
    duplicate_of: str | None
    #: With ``tallies``: per indicator id, the counted reports before this one; and the
    #: reporter's own row, to count this report in (``Tallied`` by ``tallied_with``).
    before: dict[int, list[TallyRow]] | None = None
    own: TallyRow | None = None


def tallied_with(before: Sequence[TallyRow], own: TallyRow | None) -> Tallied:
    """The tallies read before a report was stored, with that report counted in (``own``):
    what ``ReportRepository.tallies`` reads once it is stored."""
    return _tallied([*before, *([] if own is None else [own])])


def _locks(insert: Any) -> tuple[Any, Any]:
    """The upserts that create and lock reporters and indicators (``lock_reporters``,
    ``lock_indicators``), their rows given as parameters: one row a plain execute, more
    one multi-row INSERT (SQLAlchemy's "insertmanyvalues", in the order given), compiled
    once (a VALUES list built into the statement was compiled again on every call).

    ON CONFLICT DO UPDATE (of a column to its own value) takes the row lock that SELECT ...
    FOR UPDATE would, without a second round trip."""
    reporters = insert(t.reporters)
    lock_reporters = reporters.on_conflict_do_update(
        index_elements=["reporter"], set_={"anonymous": reporters.excluded.anonymous}
    )
    # (``key = key`` changes nothing.)
    lock_indicators = (
        insert(t.indicators)
        .on_conflict_do_update(index_elements=["key"], set_={"key": t.indicators.c.key})
        .returning(*t.indicators.c)
    )
    return lock_reporters, lock_indicators


#: By whether the database is PostgreSQL.
_LOCKS = {True: _locks(postgresql.insert), False: _locks(sqlite.insert)}


class ReportRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.postgres = conn.dialect.name == "postgresql"

    def _insert(self, table: sa.Table) -> Any:
        """An INSERT that can say ON CONFLICT DO NOTHING on either database."""
        return postgresql.insert(table) if self.postgres else sqlite.insert(table)

    # --- reporters ---------------------------------------------------------------------------

    async def lock_reporter(self, reporter: str, anonymous: bool, now: datetime) -> None:
        """Create the reporter if new and lock its row, in one statement.

        ON CONFLICT DO UPDATE (of a column to its own value) takes the row lock that
        SELECT ... FOR UPDATE would, without a second round trip.
        """
        await self.lock_reporters({reporter: anonymous}, now)

    async def lock_reporters(self, reporters: Mapping[str, bool], now: datetime) -> None:
        """``lock_reporter`` for many reporters (whether each is anonymous) in one statement,
        in the order of their names."""
        if not reporters:
            return
        rows = [
            {
                "reporter": reporter,
                "anonymous": reporters[reporter],
                "confirmed_count": 0,
                "rejected_count": 0,
                "create_time": now,
            }
            for reporter in sorted(reporters)
        ]
        await self.conn.execute(_LOCKS[self.postgres][0], rows[0] if len(rows) == 1 else rows)

    async def adjust_reporter(self, reporter: str, confirmed: int, rejected: int) -> None:
        r = t.reporters
        await self.conn.execute(
            sa.update(r)
            .where(r.c.reporter == reporter)
            .values(
                confirmed_count=r.c.confirmed_count + confirmed,
                rejected_count=r.c.rejected_count + rejected,
            )
        )

    async def window_count(
        self, table: sa.Table, owner: sa.Column[Any], who: str, since: datetime, limit: int
    ) -> tuple[int, datetime | None]:
        """Rows of ``who`` since ``since``, and when over ``limit`` the time of the row whose
        leaving the window makes room for one more."""
        created = table.c.create_time
        count = int(
            await self.conn.scalar(sa.select(sa.func.count()).where(owner == who, created >= since))
            or 0
        )
        return count, await self._freeing(table, owner, who, since, count, limit)

    async def _freeing(
        self,
        table: sa.Table,
        owner: sa.Column[Any],
        who: str,
        since: datetime,
        count: int,
        limit: int,
    ) -> datetime | None:
        """When ``count`` rows since ``since`` reach ``limit``: the time of the row whose leaving
        the window makes room for one more."""
        if count < limit:
            return None
        created = table.c.create_time
        freeing = await self.conn.scalar(
            sa.select(created)
            .where(owner == who, created >= since)
            .order_by(created)
            .offset(count - limit)
            .limit(1)
        )
        return utc_or_none(freeing)

    async def intake_checks(
        self,
        reporter: str,
        rate: tuple[datetime, int] | None,
        covering: tuple[Sequence[int], datetime] | None,
        tallies: Mapping[int, datetime] | None = None,
    ) -> IntakeRead:
        """The reads before a report is accepted, in one statement: with ``rate`` (since,
        limit), the reporter's reports in the rate window and when over the limit the time
        that frees one (``reports_since``); with ``covering`` (indicator ids, since), the
        open report the new one repeats (``open_report_covering``); with ``tallies``
        (indicator ids, each since its own time), their tallies as ``tallies`` reads them,
        without the report about to be stored, and the reporter's own counts."""
        r = t.reports
        params: dict[str, Any] = {"b_reporter": reporter}
        if rate is not None:
            params["b_rate_since"] = rate[0]
        if covering is not None:
            wanted = sorted(set(covering[0]))
            params |= {"b_ids": wanted, "b_wanted": len(wanted), "b_since": covering[1]}
        tallied = sorted((tallies or {}).items())
        for k, (indicator_id, since) in enumerate(tallied):
            params |= {f"b_t_id_{k}": indicator_id, f"b_t_since_{k}": since}
        rows = (
            await self.conn.execute(
                _intake_checks(rate is not None, covering is not None, len(tallied)), params
            )
        ).all()
        row = rows[0]
        count = int(row.recent or 0)
        freeing = (
            None
            if rate is None
            else await self._freeing(r, r.c.reporter, reporter, rate[0], count, rate[1])
        )
        duplicate_of = None if row.covering is None else str(row.covering)
        if not tallied:
            return IntakeRead(count, freeing, duplicate_of)
        before: dict[int, list[TallyRow]] = {indicator_id: [] for indicator_id, _ in tallied}
        for found in rows:
            if found.indicator_id is not None:
                before[int(found.indicator_id)].append(
                    TallyRow(
                        found.reporter,
                        int(found.categories or 0),
                        bool(found.anonymous),
                        int(found.confirmed_count),
                        int(found.rejected_count),
                        int(found.reports),
                        int(found.reporters),
                    )
                )
        own = TallyRow(
            reporter,
            0,
            bool(row.own_anonymous),
            int(row.own_confirmed or 0),
            int(row.own_rejected or 0),
            1,
        )
        return IntakeRead(count, freeing, duplicate_of, before, own)

    async def reports_since(
        self, reporter: str, since: datetime, limit: int
    ) -> tuple[int, datetime | None]:
        return await self.window_count(t.reports, t.reports.c.reporter, reporter, since, limit)

    async def cases_since(
        self, filer: str, since: datetime, limit: int
    ) -> tuple[int, datetime | None]:
        return await self.window_count(t.cases, t.cases.c.filer, filer, since, limit)

    # --- indicators --------------------------------------------------------------------------

    async def lock_indicators(
        self, indicators: Iterable[Indicator], now: datetime
    ) -> dict[str, IndicatorRow]:
        """Create the indicators not seen before and lock all of them, in key order, in one
        statement (ON CONFLICT DO UPDATE locks an existing row as SELECT ... FOR UPDATE would)."""
        by_key = {indicator_key(i): i for i in indicators}
        keys = sorted(by_key)
        if not keys:
            return {}
        rows: list[dict[str, Any]] = [
            {
                "key": key,
                "kind": int(by_key[key].kind),
                "value": by_key[key].value,
                "standing": int(Standing.UNLISTED),
                "reporter_count": 0,
                "score": 0.0,
                "categories": [],
                "reset_time": None,
                "version": 0,
                "synced_version": 0,
                "sync_lease_until": None,
                "update_time": now,
            }
            for key in keys
        ]
        found = await self.conn.execute(
            _LOCKS[self.postgres][1], rows[0] if len(rows) == 1 else rows
        )
        return {row.key: self._indicator_row(row) for row in found}

    @staticmethod
    def _indicator_row(row: Any) -> IndicatorRow:
        return IndicatorRow(
            id=int(row.id),
            key=row.key,
            indicator=Indicator(IndicatorKind(row.kind), row.value),
            standing=Standing(row.standing),
            reporter_count=int(row.reporter_count),
            score=float(row.score),
            categories=_categories(row.categories),
            reset_time=utc_or_none(row.reset_time),
            version=int(row.version),
            synced_version=int(row.synced_version),
        )

    async def find_indicator(self, indicator: Indicator) -> IndicatorRow | None:
        """An indicator ever reported, by value (read without locking)."""
        row = (
            await self.conn.execute(
                sa.select(t.indicators).where(t.indicators.c.key == indicator_key(indicator))
            )
        ).first()
        return None if row is None else self._indicator_row(row)

    async def indicator(self, indicator_id: int) -> IndicatorRow | None:
        row = (
            await self.conn.execute(
                sa.select(t.indicators).where(t.indicators.c.id == indicator_id)
            )
        ).first()
        return None if row is None else self._indicator_row(row)

    async def update_indicator(
        self,
        row: IndicatorRow,
        *,
        standing: Standing,
        reporter_count: int,
        score: float,
        categories: Sequence[FraudCategory],
        reset_time: datetime | None,
        new_version: bool,
        now: datetime,
    ) -> int:
        """Store the new standing; returns the version (bumped when the assertion changes)."""
        version = row.version + 1 if new_version else row.version
        await self.conn.execute(
            UPDATE_INDICATOR,
            indicator_update(
                row.id, standing, reporter_count, score, categories, reset_time, version, now
            ),
        )
        return version

    async def update_indicators(self, updates: Sequence[dict[str, Any]]) -> None:
        """Store many indicators' new standings (``indicator_update`` each) in one statement."""
        if updates:
            await self.conn.execute(UPDATE_INDICATOR, updates[0] if len(updates) == 1 else updates)

    async def tallies(self, indicator_id: int, since: datetime) -> Tallied:
        """Per reporter, their counted reports about the indicator since ``since`` (rejected
        reports do not count), and the fraud categories those reports name; one query."""
        rows = await self.conn.execute(_TALLIES, {"b_indicator": indicator_id, "b_since": since})
        return _tallied(rows)

    async def lease_sync(self, indicator_id: int, now: datetime, until: datetime) -> bool:
        """Take the right to talk to the risk service about this indicator, if nobody holds it."""
        i = t.indicators
        result = await self.conn.execute(
            sa.update(i)
            .where(
                i.c.id == indicator_id,
                sa.or_(i.c.sync_lease_until.is_(None), i.c.sync_lease_until < now),
            )
            .values(sync_lease_until=until)
        )
        return bool(result.rowcount)

    async def release_sync(self, indicator_id: int, synced_version: int | None) -> None:
        """Give the lease back, recording the version the risk service now has."""
        i = t.indicators
        values: dict[str, Any] = {"sync_lease_until": None}
        if synced_version is not None:
            values["synced_version"] = sa.case(
                (i.c.synced_version < synced_version, synced_version),
                else_=i.c.synced_version,
            )
        await self.conn.execute(sa.update(i).where(i.c.id == indicator_id).values(**values))

    async def count_standing(self, standing: Standing) -> int:
        return int(
            await self.conn.scalar(
                sa.select(sa.func.count()).where(t.indicators.c.standing == int(standing))
            )
            or 0
        )

    # --- reports -----------------------------------------------------------------------------

    def report_rows(
        self,
        *,
        report_id: str,
        reporter: str,
        anonymous: bool,
        kind: ReportKind,
        status: ReportStatus,
        category: FraudCategory,
        description: str,
        evidence: Evidence,
        incident_time: datetime | None,
        duplicate_of: str | None,
        case_id: str | None,
        indicator_ids: Sequence[int],
        now: datetime,
    ) -> ReportRows:
        """A new report's rows: its free text masked, the text as typed sealed."""
        vault = of_connection(self.conn)
        original = Original(description, evidence.sms_text)
        masked, masked_evidence = mask_text(description), mask_evidence(evidence)
        report = {
            "id": report_id,
            "reporter": reporter,
            "anonymous": anonymous,
            "kind": int(kind),
            "status": int(status),
            "category": int(category),
            "description": masked,
            "evidence": evidence_json(masked_evidence),
            "original_sealed": original.seal(vault, report_place(report_id)),
            "key_id": vault.current_key_id,
            "incident_time": incident_time,
            "duplicate_of": duplicate_of,
            "case_id": case_id,
            "create_time": now,
            "update_time": now,
        }
        links = [
            {
                "report_id": report_id,
                "position": position,
                "indicator_id": indicator_id,
                "reporter": reporter,
                "create_time": now,
            }
            for position, indicator_id in enumerate(indicator_ids)
        ]
        return ReportRows(report, links, masked, masked_evidence)

    async def insert_reports(self, rows: Sequence[ReportRows]) -> None:
        """Store new reports and their indicator links: one statement each (one row as a
        plain execute: executemany's batching costs more); on PostgreSQL one report with
        one link in one statement."""
        if self.postgres and len(rows) == 1 and len(rows[0].links) == 1:
            (one,) = rows
            both = {f"b_r_{k}": v for k, v in one.report.items()}
            both |= {f"b_l_{k}": v for k, v in one.links[0].items()}
            await self.conn.execute(_REPORT_WITH_LINK, both)
            return
        for statement, params in (
            (_INSERT_REPORT, [one.report for one in rows]),
            (_INSERT_LINKS, [link for one in rows for link in one.links]),
        ):
            if params:
                await self.conn.execute(statement, params[0] if len(params) == 1 else params)

    async def open_report_covering(
        self, reporter: str, indicator_ids: Sequence[int], since: datetime
    ) -> str | None:
        """The reporter's oldest open report since ``since`` that names every one of the
        indicators, if any: a new report about the same values repeats it."""
        row = (await self.conn.execute(self._covering(reporter, indicator_ids, since))).first()
        return None if row is None else str(row.report_id)

    @staticmethod
    def _covering(reporter: str, indicator_ids: Sequence[int], since: datetime) -> sa.Select[Any]:
        wanted = sorted(set(indicator_ids))
        return _covering_query(reporter, wanted, len(wanted), since)

    async def put_under_review(self, indicator_ids: Sequence[int], now: datetime) -> None:
        """RECEIVED reports naming a newly listed indicator go to the analysts' queue."""
        if not indicator_ids:
            return
        ri, r = t.report_indicators, t.reports
        naming = sa.select(ri.c.report_id).where(ri.c.indicator_id.in_(list(indicator_ids)))
        await self.conn.execute(
            sa.update(r)
            .where(r.c.status == int(ReportStatus.RECEIVED), r.c.id.in_(naming))
            .values(status=int(ReportStatus.UNDER_REVIEW), update_time=now)
        )

    async def lock_report(self, report_id: str) -> tuple[str, ReportStatus, list[int]] | None:
        """Lock a report for review: its reporter, status and indicator ids."""
        row = (
            await self.conn.execute(
                sa.select(t.reports.c.reporter, t.reports.c.status)
                .where(t.reports.c.id == report_id)
                .with_for_update()
            )
        ).first()
        if row is None:
            return None
        ids = await self.conn.scalars(
            sa.select(t.report_indicators.c.indicator_id)
            .where(t.report_indicators.c.report_id == report_id)
            .order_by(t.report_indicators.c.position)
        )
        return row.reporter, ReportStatus(row.status), [int(i) for i in ids]

    async def report_owner(self, report_id: str) -> tuple[str, list[Indicator]] | None:
        """A report's reporter and indicators, read without locking (to plan the lock order)."""
        reporter = await self.conn.scalar(
            sa.select(t.reports.c.reporter).where(t.reports.c.id == report_id)
        )
        if reporter is None:
            return None
        ri, i = t.report_indicators, t.indicators
        rows = await self.conn.execute(
            sa.select(i.c.kind, i.c.value)
            .select_from(ri.join(i, i.c.id == ri.c.indicator_id))
            .where(ri.c.report_id == report_id)
            .order_by(ri.c.position)
        )
        return str(reporter), [Indicator(IndicatorKind(r.kind), r.value) for r in rows]

    async def reports_naming(self, indicator_id: int) -> list[NamingReport]:
        """Every report naming an indicator, oldest first."""
        ri, r = t.report_indicators, t.reports
        rows = await self.conn.execute(
            sa.select(r.c.id, r.c.reporter, r.c.status)
            .select_from(ri.join(r, r.c.id == ri.c.report_id))
            .where(ri.c.indicator_id == indicator_id)
            .order_by(r.c.create_time, r.c.id)
        )
        return [NamingReport(row.id, row.reporter, ReportStatus(row.status)) for row in rows]

    async def lock_reports(self, report_ids: Sequence[str]) -> None:
        if report_ids:
            await self.conn.execute(
                sa.select(t.reports.c.id)
                .where(t.reports.c.id.in_(list(report_ids)))
                .order_by(t.reports.c.id)
                .with_for_update()
            )

    async def resolve_reports(
        self,
        report_ids: Sequence[str],
        decision: ReviewDecision,
        status: ReportStatus,
        reason: str,
        reviewer: str,
        now: datetime,
    ) -> None:
        """Many reports take one decision: a review each, and the outcome status."""
        if not report_ids:
            return
        await self.conn.execute(
            sa.insert(t.reviews),
            [
                {
                    "report_id": report_id,
                    "decision": int(decision),
                    "reason": mask_text(reason),
                    "reviewer": reviewer,
                    "create_time": now,
                }
                for report_id in report_ids
            ],
        )
        await self.conn.execute(
            sa.update(t.reports)
            .where(t.reports.c.id.in_(list(report_ids)))
            .values(status=int(status), update_time=now)
        )

    async def review_queue(
        self, where: ReviewQueueFilter, after: Position | None, size: int
    ) -> list[QueuedIndicator]:
        """Indicators with open reports, the one waiting longest first (keyset on the oldest
        open report's time and the indicator id)."""
        ri, r, i = t.report_indicators, t.reports, t.indicators
        oldest = sa.func.min(r.c.create_time)
        query = (
            sa.select(
                i.c.id,
                i.c.kind,
                i.c.value,
                i.c.standing,
                i.c.reporter_count,
                sa.func.count(r.c.id).label("open_reports"),
                sa.func.count(sa.distinct(r.c.reporter)).label("reporters"),
                oldest.label("oldest"),
                sa.func.max(r.c.create_time).label("newest"),
            )
            .select_from(ri.join(r, r.c.id == ri.c.report_id).join(i, i.c.id == ri.c.indicator_id))
            .where(r.c.status.in_([int(s) for s in OPEN_STATUSES]))
            .group_by(i.c.id, i.c.kind, i.c.value, i.c.standing, i.c.reporter_count)
        )
        if where.kind is not None:
            query = query.where(i.c.kind == int(where.kind))
        if where.standing is not None:
            query = query.where(i.c.standing == int(where.standing))
        if after is not None:
            mark = sa.tuple_(
                sa.literal(after.time, r.c.create_time.type), sa.literal(int(after.id))
            )
            query = query.having(sa.tuple_(oldest, i.c.id) > mark)
        query = query.order_by(oldest, i.c.id).limit(size)
        return [
            QueuedIndicator(
                id=int(row.id),
                finding=Finding(
                    Indicator(IndicatorKind(row.kind), row.value),
                    Standing(row.standing),
                    int(row.reporter_count),
                ),
                open_reports=int(row.open_reports),
                distinct_reporters=int(row.reporters),
                oldest=utc(row.oldest),
                newest=utc(row.newest),
            )
            for row in await self.conn.execute(query)
        ]

    async def set_status(self, report_id: str, status: ReportStatus, now: datetime) -> None:
        await self.conn.execute(
            sa.update(t.reports)
            .where(t.reports.c.id == report_id)
            .values(status=int(status), update_time=now)
        )

    async def insert_review(
        self, report_id: str, decision: ReviewDecision, reason: str, reviewer: str, now: datetime
    ) -> None:
        await self.conn.execute(
            sa.insert(t.reviews).values(
                report_id=report_id,
                decision=int(decision),
                # An analyst's words are shown to the reporter: identifiers masked.
                reason=mask_text(reason),
                reviewer=reviewer,
                create_time=now,
            )
        )

    async def get_report(self, report_id: str) -> Report | None:
        rows = (
            await self.conn.execute(sa.select(t.reports).where(t.reports.c.id == report_id))
        ).all()
        found = await self._assemble(rows)
        return found[0] if found else None

    async def list_reports(
        self, where: ReportFilter, after: Position | None, size: int
    ) -> list[Report]:
        r = t.reports
        query = sa.select(r)
        if where.statuses:
            query = query.where(r.c.status.in_([int(s) for s in where.statuses]))
        if where.kind is not None:
            query = query.where(r.c.kind == int(where.kind))
        if where.reporter is not None:
            query = query.where(r.c.reporter == where.reporter)
        if where.start is not None:
            query = query.where(r.c.create_time >= where.start)
        if where.end is not None:
            query = query.where(r.c.create_time < where.end)
        if where.indicator is not None:
            ri, i = t.report_indicators, t.indicators
            naming = (
                sa.select(ri.c.report_id)
                .select_from(ri.join(i, i.c.id == ri.c.indicator_id))
                .where(i.c.key == indicator_key(where.indicator))
            )
            query = query.where(r.c.id.in_(naming))
        key = sa.tuple_(r.c.create_time, r.c.id)
        if after is not None:
            mark = sa.tuple_(
                sa.literal(after.time, t.reports.c.create_time.type), sa.literal(after.id)
            )
            query = query.where(key > mark if where.oldest_first else key < mark)
        if where.oldest_first:
            query = query.order_by(r.c.create_time, r.c.id)
        else:
            query = query.order_by(r.c.create_time.desc(), r.c.id.desc())
        rows = (await self.conn.execute(query.limit(size))).all()
        return await self._assemble(rows)

    async def _assemble(self, rows: Sequence[Any]) -> list[Report]:
        """Reports with their findings and reviews, two queries for the whole page."""
        if not rows:
            return []
        ids = [row.id for row in rows]
        ri, i, rv = t.report_indicators, t.indicators, t.reviews
        findings: dict[str, list[Finding]] = {report_id: [] for report_id in ids}
        for f in await self.conn.execute(
            sa.select(ri.c.report_id, i.c.kind, i.c.value, i.c.standing, i.c.reporter_count)
            .select_from(ri.join(i, i.c.id == ri.c.indicator_id))
            .where(ri.c.report_id.in_(ids))
            .order_by(ri.c.report_id, ri.c.position)
        ):
            findings[f.report_id].append(
                Finding(
                    Indicator(IndicatorKind(f.kind), f.value),
                    Standing(f.standing),
                    int(f.reporter_count),
                )
            )
        reviews: dict[str, list[Review]] = {report_id: [] for report_id in ids}
        for v in await self.conn.execute(
            sa.select(rv).where(rv.c.report_id.in_(ids)).order_by(rv.c.report_id, rv.c.id)
        ):
            reviews[v.report_id].append(
                Review(ReviewDecision(v.decision), v.reason, v.reviewer, utc(v.create_time))
            )
        return [
            Report(
                id=row.id,
                reporter=row.reporter,
                anonymous=bool(row.anonymous),
                kind=ReportKind(row.kind),
                description=row.description,
                evidence=evidence_from(row.evidence),
                incident_time=utc_or_none(row.incident_time),
                category=FraudCategory(row.category),
                status=ReportStatus(row.status),
                duplicate_of=row.duplicate_of or "",
                case_id=row.case_id or "",
                create_time=utc(row.create_time),
                update_time=utc(row.update_time),
                findings=tuple(findings[row.id]),
                reviews=tuple(reviews[row.id]),
            )
            for row in rows
        ]

    async def stats(self, start: datetime | None, end: datetime | None) -> Stats:
        r = t.reports
        conditions = []
        if start is not None:
            conditions.append(r.c.create_time >= start)
        if end is not None:
            conditions.append(r.c.create_time < end)
        by_status: dict[ReportStatus, int] = {
            s: 0 for s in ReportStatus if s is not ReportStatus.UNSPECIFIED
        }
        by_kind: dict[ReportKind, int] = {
            k: 0 for k in ReportKind if k is not ReportKind.UNSPECIFIED
        }
        for row in await self.conn.execute(
            sa.select(r.c.status, r.c.kind, sa.func.count().label("n"))
            .where(*conditions)
            .group_by(r.c.status, r.c.kind)
        ):
            by_status[ReportStatus(row.status)] += int(row.n)
            by_kind[ReportKind(row.kind)] += int(row.n)
        return Stats(
            by_status,
            by_kind,
            await self.count_standing(Standing.CORROBORATED),
            await self.count_standing(Standing.CONFIRMED),
        )

    # --- cases -------------------------------------------------------------------------------

    async def insert_case(
        self,
        *,
        case_id: str,
        filer: str,
        description: str,
        category: FraudCategory,
        amount_lost: Money,
        incident_time: datetime,
        payees: Sequence[NewPayee],
        suspects: Sequence[Indicator],
        report_id: str | None,
        now: datetime,
    ) -> None:
        vault = of_connection(self.conn)
        await self.conn.execute(
            sa.insert(t.cases).values(
                id=case_id,
                filer=filer,
                description=mask_text(description),
                original_sealed=Original(description).seal(vault, case_place(case_id)),
                key_id=vault.current_key_id,
                category=int(category),
                amount_currency=amount_lost.currency,
                amount_units=amount_lost.units,
                amount_nanos=amount_lost.nanos,
                incident_time=incident_time,
                suspects=[[int(s.kind), s.value] for s in suspects],
                report_id=report_id,
                create_time=now,
                status=int(CaseStatus.FILED),
                officer=None,
                update_time=now,
            )
        )
        await self.add_case_event(case_id, CaseEventType.FILED, CaseStatus.FILED, "", "victim", now)
        if payees:
            await self.conn.execute(
                sa.insert(t.case_payees),
                [
                    {
                        "case_id": case_id,
                        "position": position,
                        "kind": int(payee.account.kind),
                        "value": payee.account.value,
                        "amount_currency": payee.amount.currency if payee.amount else None,
                        "amount_units": payee.amount.units if payee.amount else None,
                        "amount_nanos": payee.amount.nanos if payee.amount else None,
                        "bank_order": "",
                        "status": int(StopPaymentStatus.PENDING),
                        "status_time": now,
                        "status_detail": "",
                        "transaction_references": list(payee.transaction_references),
                    }
                    for position, payee in enumerate(payees)
                ],
            )

    async def get_case(self, case_id: str) -> Case | None:
        rows = (await self.conn.execute(sa.select(t.cases).where(t.cases.c.id == case_id))).all()
        found = await self._assemble_cases(rows)
        return found[0] if found else None

    async def list_cases(self, where: CaseFilter, after: Position | None, size: int) -> list[Case]:
        c = t.cases
        query = sa.select(c)
        if where.filer is not None:
            query = query.where(c.c.filer == where.filer)
        if where.category is not None:
            query = query.where(c.c.category == int(where.category))
        if where.start is not None:
            query = query.where(c.c.create_time >= where.start)
        if where.end is not None:
            query = query.where(c.c.create_time < where.end)
        if where.statuses:
            query = query.where(c.c.status.in_([int(s) for s in where.statuses]))
        if where.officer is not None:
            query = query.where(c.c.officer == where.officer)
        if after is not None:
            mark = sa.tuple_(sa.literal(after.time, c.c.create_time.type), sa.literal(after.id))
            query = query.where(sa.tuple_(c.c.create_time, c.c.id) < mark)
        query = query.order_by(c.c.create_time.desc(), c.c.id.desc()).limit(size)
        return await self._assemble_cases((await self.conn.execute(query)).all())

    async def _assemble_cases(self, rows: Sequence[Any]) -> list[Case]:
        if not rows:
            return []
        ids = [row.id for row in rows]
        payees: dict[str, list[Payee]] = {case_id: [] for case_id in ids}
        p = t.case_payees
        for row in await self.conn.execute(
            sa.select(p).where(p.c.case_id.in_(ids)).order_by(p.c.case_id, p.c.position)
        ):
            payees[row.case_id].append(self._payee(row))
        history: dict[str, list[CaseEvent]] = {case_id: [] for case_id in ids}
        e = t.case_events
        for row in await self.conn.execute(
            sa.select(e).where(e.c.case_id.in_(ids)).order_by(e.c.case_id, e.c.id)
        ):
            history[row.case_id].append(
                CaseEvent(
                    CaseEventType(row.type),
                    CaseStatus(row.status),
                    row.text,
                    row.actor,
                    utc(row.create_time),
                )
            )
        return [
            Case(
                id=row.id,
                filer=row.filer,
                description=row.description,
                category=FraudCategory(row.category),
                amount_lost=Money(
                    row.amount_currency, int(row.amount_units), int(row.amount_nanos)
                ),
                incident_time=utc(row.incident_time),
                payees=tuple(payees[row.id]),
                suspects=tuple(Indicator(IndicatorKind(k), v) for k, v in row.suspects),
                report_id=row.report_id or "",
                create_time=utc(row.create_time),
                status=CaseStatus(row.status),
                officer=row.officer or "",
                events=tuple(history[row.id]),
                update_time=utc_or_none(row.update_time),
            )
            for row in rows
        ]

    @staticmethod
    def _payee(row: Any) -> Payee:
        amount = held = None
        if row.amount_currency is not None:
            amount = Money(row.amount_currency, int(row.amount_units), int(row.amount_nanos))
        if row.held_currency is not None:
            held = Money(row.held_currency, int(row.held_units), int(row.held_nanos))
        return Payee(
            held_amount=held,
            hold_expire_time=utc_or_none(row.hold_expire_time),
            transaction_references=tuple(row.transaction_references or ()),
            position=int(row.position),
            account=Indicator(IndicatorKind(row.kind), row.value),
            amount=amount,
            bank_order=row.bank_order,
            status=StopPaymentStatus(row.status),
            status_time=utc_or_none(row.status_time),
            status_detail=row.status_detail,
        )

    async def update_payee(
        self,
        case_id: str,
        position: int,
        *,
        status: StopPaymentStatus,
        now: datetime,
        bank_order: str | None = None,
        detail: str = "",
        held: Money | None = None,
        hold_expire_time: datetime | None = None,
    ) -> bool:
        """Record an order's status if it moves the order forward (or tells more about the same
        status); returns whether anything changed."""
        p = t.case_payees
        detail = detail[:500]
        values: dict[str, Any] = {
            "status": int(status),
            "status_detail": detail,
            "status_time": now,
        }
        changed = sa.or_(p.c.status != int(status), p.c.status_detail != detail)
        if held is not None:
            values |= {
                "held_currency": held.currency,
                "held_units": held.units,
                "held_nanos": held.nanos,
            }
            changed = sa.or_(
                changed,
                p.c.held_units.is_(None),
                p.c.held_units != held.units,
                p.c.held_nanos != held.nanos,
            )
        if hold_expire_time is not None:
            values["hold_expire_time"] = hold_expire_time
            changed = sa.or_(
                changed,
                p.c.hold_expire_time.is_(None),
                p.c.hold_expire_time != hold_expire_time,
            )
        if bank_order:
            values["bank_order"] = bank_order
            changed = sa.or_(changed, p.c.bank_order != bank_order)
        result = await self.conn.execute(
            sa.update(p)
            .where(
                p.c.case_id == case_id,
                p.c.position == position,
                p.c.status.in_([int(s) for s in status.replaces()]),
                changed,
            )
            .values(**values)
        )
        return bool(result.rowcount)

    async def lock_case(self, case_id: str) -> Case | None:
        """A case, its row locked so status changes and officers' acts serialise on it."""
        found = await self.conn.scalar(
            sa.select(t.cases.c.id).where(t.cases.c.id == case_id).with_for_update()
        )
        return None if found is None else await self.get_case(case_id)

    async def update_case(
        self, case_id: str, now: datetime, *, status: CaseStatus | None = None, officer: str = ""
    ) -> None:
        values: dict[str, Any] = {"update_time": now}
        if status is not None:
            values["status"] = int(status)
        if officer:
            values["officer"] = officer
        await self.conn.execute(sa.update(t.cases).where(t.cases.c.id == case_id).values(**values))

    async def add_case_event(
        self,
        case_id: str,
        event_type: CaseEventType,
        status: CaseStatus,
        text: str,
        actor: str,
        now: datetime,
    ) -> None:
        await self.conn.execute(
            sa.insert(t.case_events).values(
                case_id=case_id,
                type=int(event_type),
                status=int(status),
                # Officers' words are shown to the victim: identifiers masked.
                text=mask_text(text),
                actor=actor,
                create_time=now,
            )
        )

    # --- personal data: texts as typed, re-sealing, erasure, retention -------------------------

    def _texts(self, kind: str) -> tuple[sa.Table, Any]:
        if kind == "reports":
            return t.reports, report_place
        return t.cases, case_place

    async def original(self, kind: str, row_id: str) -> Original | None:
        """The text of ``reports`` or ``cases`` row ``row_id`` as typed, None if no such row.
        A row whose original was dropped (erasure) has only its masked text to give."""
        table, place = self._texts(kind)
        columns = [table.c.description, table.c.original_sealed]
        if kind == "reports":
            columns.append(table.c.evidence)
        row = (await self.conn.execute(sa.select(*columns).where(table.c.id == row_id))).first()
        if row is None:
            return None
        if row.original_sealed is not None:
            return Original.open(
                of_connection(self.conn), bytes(row.original_sealed), place(row_id)
            )
        sms = evidence_from(row.evidence).sms_text if kind == "reports" else ""
        return Original(row.description, sms)

    async def reseal_batch(self, kind: str, limit: int) -> int:
        """Seal up to ``limit`` rows of ``kind`` that an older version left in clear, or that a
        retired data key sealed; returns how many were rewritten."""
        vault = of_connection(self.conn)
        table, place = self._texts(kind)
        columns = [table.c.id, table.c.description, table.c.original_sealed, table.c.key_id]
        if kind == "reports":
            columns.append(table.c.evidence)
        rows = (
            await self.conn.execute(
                sa.select(*columns)
                .where(
                    sa.or_(
                        table.c.key_id.is_(None),
                        sa.and_(table.c.key_id != DROPPED, table.c.key_id != vault.current_key_id),
                    )
                )
                .order_by(table.c.id)
                .limit(limit)
            )
        ).all()
        for row in rows:
            values: dict[str, Any] = {"key_id": vault.current_key_id}
            if row.original_sealed is None:  # written in clear before revision report_0003
                evidence = evidence_from(row.evidence) if kind == "reports" else Evidence()
                original = Original(row.description, evidence.sms_text)
                values["description"] = mask_text(row.description)
                if kind == "reports":
                    values["evidence"] = evidence_json(mask_evidence(evidence))
                values["original_sealed"] = original.seal(vault, place(row.id))
            else:
                values["original_sealed"] = vault.reseal(
                    bytes(row.original_sealed), place=place(row.id)
                )
            await self.conn.execute(sa.update(table).where(table.c.id == row.id).values(**values))
        return len(rows)

    async def reports_of(self, reporter: str) -> list[Report]:
        r = t.reports
        rows = (
            await self.conn.execute(
                sa.select(r).where(r.c.reporter == reporter).order_by(r.c.create_time, r.c.id)
            )
        ).all()
        return await self._assemble(rows)

    async def cases_of(self, filer: str) -> list[Case]:
        c = t.cases
        rows = (
            await self.conn.execute(
                sa.select(c).where(c.c.filer == filer).order_by(c.c.create_time, c.c.id)
            )
        ).all()
        return await self._assemble_cases(rows)

    async def _delete_reports(self, report_ids: Sequence[str]) -> int:
        if not report_ids:
            return 0
        ids = list(report_ids)
        await self.conn.execute(
            sa.delete(t.report_indicators).where(t.report_indicators.c.report_id.in_(ids))
        )
        await self.conn.execute(sa.delete(t.reviews).where(t.reviews.c.report_id.in_(ids)))
        result = await self.conn.execute(sa.delete(t.reports).where(t.reports.c.id.in_(ids)))
        return int(result.rowcount)

    async def erase_reporter(
        self, reporter: str, pseudonym: str, now: datetime
    ) -> tuple[int, int, int]:
        """Delete the reporter's reports that are no evidence; unlink the rest (and their cases)
        from them under ``pseudonym`` without their texts as typed. Returns (deleted,
        anonymised reports, anonymised cases)."""
        r, c = t.reports, t.cases
        evidence = sa.or_(r.c.status == int(ReportStatus.CONFIRMED), r.c.case_id.is_not(None))
        doomed = (
            await self.conn.scalars(sa.select(r.c.id).where(r.c.reporter == reporter, ~evidence))
        ).all()
        deleted = await self._delete_reports(doomed)
        counts = (
            await self.conn.execute(
                sa.select(t.reporters).where(t.reporters.c.reporter == reporter)
            )
        ).first()
        kept = 0
        if await self.conn.scalar(sa.select(sa.func.count()).where(r.c.reporter == reporter)):
            # The kept reports still count once each towards their indicators: under a
            # pseudonym of their own, with the weight the reporter had.
            await self.conn.execute(
                sa.insert(t.reporters).values(
                    reporter=pseudonym,
                    anonymous=False,
                    confirmed_count=counts.confirmed_count if counts else 0,
                    rejected_count=counts.rejected_count if counts else 0,
                    create_time=now,
                )
            )
            await self.conn.execute(
                sa.update(t.report_indicators)
                .where(t.report_indicators.c.reporter == reporter)
                .values(reporter=pseudonym)
            )
            result = await self.conn.execute(
                sa.update(r)
                .where(r.c.reporter == reporter)
                .values(reporter=pseudonym, original_sealed=None, key_id=DROPPED, update_time=now)
            )
            kept = int(result.rowcount)
        await self.conn.execute(sa.delete(t.reporters).where(t.reporters.c.reporter == reporter))
        result = await self.conn.execute(
            sa.update(c)
            .where(c.c.filer == reporter)
            .values(filer=pseudonym, original_sealed=None, key_id=DROPPED)
        )
        return deleted, kept, int(result.rowcount)

    async def prune_reports(self, cutoff: datetime, limit: int = 1000) -> int:
        """Delete reports that are no evidence and no longer count (rejected, duplicate, or
        never corroborated) last changed before ``cutoff``."""
        r = t.reports
        done = (
            await self.conn.scalars(
                sa.select(r.c.id)
                .where(
                    r.c.status.in_(
                        [
                            int(ReportStatus.REJECTED),
                            int(ReportStatus.DUPLICATE),
                            int(ReportStatus.RECEIVED),
                        ]
                    ),
                    r.c.case_id.is_(None),
                    r.c.update_time < cutoff,
                )
                .limit(limit)
            )
        ).all()
        return await self._delete_reports(done)
