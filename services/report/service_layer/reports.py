"""Handlers for reports: accept, read, list, review, count.

Acceptance, corroboration and the outgoing event are one transaction: either
the report is stored together with the event that promotes its indicators, or
neither is. Handlers do not commit; the caller (``run_once`` or the servicer)
commits once the response is ready.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime

from services.common.errors import NotFound, PermissionDenied, ResourceExhausted
from services.common.indicators import Indicator
from services.common.principals import Principal
from services.report.adapters.repository import (
    IndicatorRow,
    QueuedIndicator,
    ReportFilter,
    ReportRepository,
    ReportRows,
    ReviewQueueFilter,
    Stats,
    Tallied,
    indicator_key,
    mask_text,
    tallied_with,
)
from services.report.domain import access, limits
from services.report.domain.corroboration import Rules, corroborate, standing_after_reports
from services.report.domain.model import (
    Finding,
    NewReport,
    Report,
    ReportStatus,
    ReviewDecision,
    Standing,
)
from services.report.service_layer import events, paging
from services.report.service_layer.unit_of_work import ReportUnitOfWork


def new_id() -> str:
    return uuid.uuid4().hex


def not_found(name: str) -> NotFound:
    # The same answer whether the report does not exist or is someone else's.
    return NotFound(f"{name} not found")


# --- accepting a report -----------------------------------------------------------------------


def _check_rate(
    caller: Principal, rules: Rules, count: int, freeing: datetime | None, now: datetime
) -> None:
    limit = rules.anonymous_rate_limit if caller.anonymous else rules.rate_limit
    verdict = limits.check(count, freeing, limit, rules.rate_window, now)
    if not verdict.allowed:
        raise ResourceExhausted(
            f"too many reports: at most {limit} every "
            f"{int(rules.rate_window.total_seconds() // 60)} minutes",
            verdict.retry_after,
        )


def counted_since(reset_time: datetime | None, rules: Rules, now: datetime) -> datetime:
    """The start of an indicator's count: the window, or its reset if later."""
    since = now - rules.window
    return reset_time if reset_time is not None and reset_time > since else since


async def _recount(
    repo: ReportRepository,
    row: IndicatorRow,
    standing: Standing,
    reset_time: datetime | None,
    rules: Rules,
    now: datetime,
    tallied: Tallied | None = None,
) -> Finding:
    """Count the reports in the window (or take ``tallied``, their count read for several
    indicators at once) and store the new standing; enqueue a sync when what we assert at the
    risk service changes. Returns the indicator's standing after the count."""
    if tallied is None:
        tallied = await repo.tallies(row.id, counted_since(reset_time, rules, now))
    tallies, categories = tallied
    corroboration = corroborate(tallies, rules)
    if standing is Standing.UNSPECIFIED:  # after new reports: corroboration decides
        standing = standing_after_reports(row.standing, corroboration, rules)
    if standing.listed:
        changed = (
            standing is not row.standing
            or corroboration.named_reporters != row.reporter_count
            or set(categories) != set(row.categories)
        )
    else:
        # Withdrawn or never listed: a sync only when something was listed before.
        changed = row.standing.listed
    version = await repo.update_indicator(
        row,
        standing=standing,
        reporter_count=corroboration.named_reporters,
        score=corroboration.score,
        categories=categories,
        reset_time=reset_time,
        new_version=changed,
        now=now,
    )
    if changed:
        await events.sync_indicator(repo.conn, row.id, version)
    return Finding(row.indicator, standing, corroboration.named_reporters)


@dataclass(slots=True)
class Checked:
    """A report that passed the checks of its intake (``check``), not yet stored."""

    caller: Principal
    new: NewReport
    now: datetime
    rows: dict[str, IndicatorRow]
    status: ReportStatus
    duplicate_of: str | None
    case_id: str | None
    #: By indicator id, its tallies with this report counted in (none for a duplicate).
    tallied: dict[int, Tallied] = field(default_factory=dict)
    id: str = field(default_factory=new_id)
    #: Its indicators' standings after it was counted (``count``).
    findings: dict[str, Finding] = field(default_factory=dict)

    @property
    def ordered(self) -> list[IndicatorRow]:
        return [self.rows[indicator_key(i)] for i in self.new.indicators]


async def check(
    repo: ReportRepository,
    caller: Principal,
    new: NewReport,
    rules: Rules,
    now: datetime,
    *,
    case_id: str | None = None,
    rate_limited: bool = True,
) -> Checked:
    """Lock the report's reporter and indicators and run its checks (rate limit, duplicate).

    The reporter's row is locked first, so the rate limit and the duplicate check
    hold when replicas accept reports of one reporter at once; then the indicators'
    rows, so that their counts are exact; then both checks and the indicators' tallies
    are read at once (the tallies as they will be once this report is stored: it is
    counted in here, so ``count`` reads nothing).
    """
    reporter = access.reporter(caller)
    await repo.lock_reporter(reporter, caller.anonymous, now)
    rows = await repo.lock_indicators(new.indicators, now)
    ordered = [rows[indicator_key(i)] for i in new.indicators]
    limited = rate_limited and access.rate_limited(caller)
    limit = rules.anonymous_rate_limit if caller.anonymous else rules.rate_limit
    since = {row.id: counted_since(row.reset_time, rules, now) for row in rows.values()}
    # The rate window, the duplicate check and the tallies in one read. Anonymous reports
    # cannot be told apart, so none of them is anyone's duplicate.
    read = await repo.intake_checks(
        reporter,
        rate=(now - rules.rate_window, limit) if limited else None,
        covering=None if caller.anonymous else ([row.id for row in ordered], now - rules.window),
        tallies=since,
    )
    if limited:
        _check_rate(caller, rules, read.count, read.freeing, now)
    if read.duplicate_of is not None:
        status = ReportStatus.DUPLICATE
    elif any(row.standing.listed for row in ordered):
        # Reports never unlist an indicator: this one goes straight to the analysts' queue.
        status = ReportStatus.UNDER_REVIEW
    else:
        status = ReportStatus.RECEIVED
    tallied: dict[int, Tallied] = {}
    if read.duplicate_of is None and read.before is not None and read.own is not None:
        own = replace(read.own, categories=1 << int(new.category))
        tallied = {
            indicator_id: tallied_with(before, own if now >= since[indicator_id] else None)
            for indicator_id, before in read.before.items()
        }
    return Checked(caller, new, now, rows, status, read.duplicate_of, case_id, tallied)


async def store(repo: ReportRepository, checked: Sequence[Checked]) -> list[ReportRows]:
    """Store checked reports (one statement for the reports, one for their links)."""
    rows = [
        repo.report_rows(
            report_id=one.id,
            reporter=access.reporter(one.caller),
            anonymous=one.caller.anonymous,
            kind=one.new.kind,
            status=one.status,
            category=one.new.category,
            description=one.new.description,
            evidence=one.new.evidence,
            incident_time=one.new.incident_time,
            duplicate_of=one.duplicate_of,
            case_id=one.case_id,
            indicator_ids=[row.id for row in one.ordered],
            now=one.now,
        )
        for one in checked
    ]
    await repo.insert_reports(rows)
    return rows


async def count(repo: ReportRepository, one: Checked, rules: Rules) -> list[int]:
    """Count a stored report towards its indicators (their tallies as read with its checks,
    itself counted in) and list those that reach the threshold; returns the ids of those
    newly listed: the reports naming them go to the analysts' queue (``put_under_review``)."""
    one.findings = {
        row.key: Finding(row.indicator, row.standing, row.reporter_count) for row in one.ordered
    }
    newly_listed: list[int] = []
    if one.duplicate_of is None:
        for row in _by_key(one.rows.values()):
            found = one.findings[row.key] = await _recount(
                repo,
                row,
                Standing.UNSPECIFIED,
                row.reset_time,
                rules,
                one.now,
                one.tallied[row.id],
            )
            if found.standing.listed and not row.standing.listed:
                newly_listed.append(row.id)
    if newly_listed:
        one.status = ReportStatus.UNDER_REVIEW  # this one too
    return newly_listed


def as_stored(one: Checked, stored: ReportRows) -> Report:
    """The report as stored and shown: identifiers masked (the text as typed is sealed)."""
    return Report(
        id=one.id,
        reporter=access.reporter(one.caller),
        anonymous=one.caller.anonymous,
        kind=one.new.kind,
        description=stored.description,
        evidence=stored.evidence,
        incident_time=one.new.incident_time,
        category=one.new.category,
        status=one.status,
        duplicate_of=one.duplicate_of or "",
        case_id=one.case_id or "",
        create_time=one.now,
        update_time=one.now,
        findings=tuple(one.findings[row.key] for row in one.ordered),
    )


async def accept(
    repo: ReportRepository,
    caller: Principal,
    new: NewReport,
    rules: Rules,
    now: datetime,
    *,
    case_id: str | None = None,
    rate_limited: bool = True,
) -> Report:
    """Store a report, count it towards its indicators and list those that reach the threshold
    (``check``, ``store``, ``count``). Returns the report as stored."""
    one = await check(repo, caller, new, rules, now, case_id=case_id, rate_limited=rate_limited)
    (stored,) = await store(repo, [one])
    newly_listed = await count(repo, one, rules)
    # Reports naming a newly listed indicator go to the analysts' queue, this one too.
    await repo.put_under_review(newly_listed, now)
    return as_stored(one, stored)


async def submit(
    uow: ReportUnitOfWork, caller: Principal, new: NewReport, rules: Rules, now: datetime
) -> Report:
    return await accept(uow.repo, caller, new, rules, now)


# --- reading ----------------------------------------------------------------------------------


async def get(repo: ReportRepository, caller: Principal, report_id: str) -> Report:
    report = await repo.get_report(report_id)
    if report is None or not access.may_see(caller, report.reporter):
        raise not_found(f"reports/{report_id}")
    return report


@dataclass(frozen=True, slots=True)
class Page:
    reports: list[Report]
    next_page_token: str


def _query(where: ReportFilter) -> dict[str, object]:
    raw = asdict(where)
    raw["indicator"] = (
        None if where.indicator is None else [int(where.indicator.kind), where.indicator.value]
    )
    return raw


def scoped_filter(caller: Principal, where: ReportFilter) -> ReportFilter:
    """A citizen (or partner) lists only their own reports; staff list everyone's."""
    if caller.staff:
        return where
    if caller.anonymous:
        raise PermissionDenied("anonymous reporters cannot list reports")
    if where.reporter is not None and where.reporter != access.reporter(caller):
        raise PermissionDenied("only analysts may list other reporters' reports")
    return replace(where, reporter=access.reporter(caller))


async def list_page(
    repo: ReportRepository, caller: Principal, where: ReportFilter, size: int, token: str
) -> Page:
    where = scoped_filter(caller, where)
    digest = paging.digest(_query(where))
    reports = await repo.list_reports(where, paging.position(token, digest), size + 1)
    next_token = ""
    if len(reports) > size:
        reports = reports[:size]
        next_token = paging.token(reports[-1].create_time, reports[-1].id, digest)
    return Page(reports, next_token)


async def stats(
    repo: ReportRepository, caller: Principal, start: datetime | None, end: datetime | None
) -> Stats:
    if not caller.staff:
        raise PermissionDenied("report statistics are for analysts")
    return await repo.stats(start, end)


# --- review -----------------------------------------------------------------------------------


def _count_change(before: ReportStatus, after: ReportStatus) -> tuple[int, int]:
    """How the reporter's (confirmed, rejected) counts move when a report changes status."""
    confirmed = (after is ReportStatus.CONFIRMED) - (before is ReportStatus.CONFIRMED)
    rejected = (after is ReportStatus.REJECTED) - (before is ReportStatus.REJECTED)
    return int(confirmed), int(rejected)


async def review(
    uow: ReportUnitOfWork,
    caller: Principal,
    report_id: str,
    decision: ReviewDecision,
    reason: str,
    rules: Rules,
    now: datetime,
) -> Report:
    """Record an analyst's decision and apply it to every indicator the report names.

    A confirmation lists them at HIGH. A rejection withdraws our assertion and
    restarts their corroboration: reports before it no longer count, so the
    indicator is listed again only if new reports reach the threshold. The most
    recent decision on any report naming an indicator is the one that stands.
    """
    if not caller.staff:
        raise PermissionDenied("only analysts review reports")
    repo = uow.repo
    found = await repo.report_owner(report_id)
    if found is None:
        raise not_found(f"reports/{report_id}")
    reporter, indicators = found
    # Lock order as in accept(): reporter, indicators by key, then the report.
    await repo.lock_reporter(reporter, reporter == access.ANONYMOUS, now)
    rows = await repo.lock_indicators(indicators, now)
    locked = await repo.lock_report(report_id)
    assert locked is not None
    _, before, _ = locked
    after = ReportStatus.CONFIRMED if decision is ReviewDecision.CONFIRM else ReportStatus.REJECTED
    await repo.insert_review(report_id, decision, reason, access.reporter(caller), now)
    await repo.set_status(report_id, after, now)
    confirmed, rejected = _count_change(before, after)
    if confirmed or rejected:
        await repo.adjust_reporter(reporter, confirmed, rejected)
    newly_listed: list[int] = []
    for row in _by_key(rows.values()):
        if decision is ReviewDecision.CONFIRM:
            await _recount(repo, row, Standing.CONFIRMED, row.reset_time, rules, now)
            if not row.standing.listed:
                newly_listed.append(row.id)
        else:
            await _recount(repo, row, Standing.REJECTED, now, rules, now)
    await repo.put_under_review(newly_listed, now)
    report = await repo.get_report(report_id)
    assert report is not None
    return report


def _by_key(rows: Iterable[IndicatorRow]) -> Sequence[IndicatorRow]:
    return sorted(rows, key=lambda r: r.key)


# --- review per indicator ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IndicatorReview:
    finding: Finding
    resolved_reports: int
    reporters: int


async def review_indicator(
    uow: ReportUnitOfWork,
    caller: Principal,
    indicator: Indicator,
    decision: ReviewDecision,
    reason: str,
    rules: Rules,
    now: datetime,
) -> IndicatorReview:
    """Resolve every report naming one value at once.

    Each report of the value not already in the outcome takes the decision (its status and
    a review record), every one of their reporters' records counts it once per report (a
    duplicate report counts nowhere, as in corroboration), and the indicator is listed at
    HIGH or withdrawn. The other indicators those reports name keep their own standing.
    Lock order as everywhere: reporters, the indicator, then the reports.
    """
    if not caller.staff:
        raise PermissionDenied("only analysts review reports")
    repo = uow.repo
    row = await repo.find_indicator(indicator)
    if row is None:
        raise NotFound(f"no report names {indicator.kind.name} {mask_text(indicator.value)}")
    naming = await repo.reports_naming(row.id)
    outcome = (
        ReportStatus.CONFIRMED if decision is ReviewDecision.CONFIRM else ReportStatus.REJECTED
    )
    moving = [r for r in naming if r.status is not outcome]
    reporters = sorted({r.reporter for r in moving})
    for reporter in reporters:
        await repo.lock_reporter(reporter, reporter == access.ANONYMOUS, now)
    locked = (await repo.lock_indicators([indicator], now))[row.key]
    await repo.lock_reports([r.id for r in moving])
    await repo.resolve_reports(
        [r.id for r in moving], decision, outcome, reason, access.reporter(caller), now
    )
    counted: dict[str, tuple[int, int]] = {}
    for found in moving:
        if found.status is ReportStatus.DUPLICATE:
            continue  # its reporter counts once, through the report it repeats
        confirmed, rejected = _count_change(found.status, outcome)
        before = counted.get(found.reporter, (0, 0))
        counted[found.reporter] = (before[0] + confirmed, before[1] + rejected)
    for reporter, (confirmed, rejected) in counted.items():
        if confirmed or rejected:
            await repo.adjust_reporter(reporter, confirmed, rejected)
    if decision is ReviewDecision.CONFIRM:
        finding = await _recount(repo, locked, Standing.CONFIRMED, locked.reset_time, rules, now)
    else:
        finding = await _recount(repo, locked, Standing.REJECTED, now, rules, now)
    return IndicatorReview(finding, len(moving), len(counted))


@dataclass(frozen=True, slots=True)
class QueuePage:
    entries: list[QueuedIndicator]
    next_page_token: str


async def review_queue(
    repo: ReportRepository, caller: Principal, where: ReviewQueueFilter, size: int, token: str
) -> QueuePage:
    if not caller.staff:
        raise PermissionDenied("the review queue is for analysts")
    digest = paging.digest({"kind": where.kind, "standing": where.standing, "q": "indicators"})
    found = await repo.review_queue(where, paging.position(token, digest), size + 1)
    entries, next_token = paging.trim(found, size, digest, lambda e: (e.oldest, str(e.id)))
    return QueuePage(entries, next_token)
