"""SubmitReport in groups: the reports that arrive together are accepted in one transaction.

Each report is accepted exactly as alone (``reports.accept``: reporter locked, rate limit,
duplicate check, corroboration, the outbox event), one after the other on one connection,
so every rule sees the reports before it in the batch as it would see them committed; the
batch commits once (``services.common.group_commit``), and only then is each caller
answered. What a batch saves: the commit of every report but one, the waits for the write
lock (SQLite), and per report the claim of its request id, the locks of its reporter and
indicators and the storing of its answer, each done for the whole batch in one statement
(``LockedAhead``: in key order, the order every writer locks in); the indicators' new
standings are written once each, at the end of the batch.

The reports of a batch that share no reporter and no indicator with another report of it
(with many callers, most) read nothing the others write: they are checked one by one (the
checks read each one's tallies too, itself counted in), then stored together (one statement
for their reports, one for their links) (``Intake._accept_together``), each exactly as it
would be alone; the others follow, one after the other.

Request ids (AIP-155) hold across and within batches: the batch locks its reporters, then
claims its request ids (``idempotency.claim_many``), then locks its indicators; one claimed
before returns its first response (``idempotency.claim``), and a repeat of a request id
accepted earlier in the same batch gets that response (a repeat with another body is a
Conflict, as always). A request id is scoped to its caller, so twins share a reporter: the
second waits on the reporter's lock until the first commits, then finds its answer.

A batch of one (every report at 1 in flight) on PostgreSQL sends 5 statements: the
reporter's lock with the claim, the indicators' lock, the checks with the tallies, the
report with its link, the indicator's standing with the answer (each pair one statement, a
CTE); on SQLite, which has no CTE that writes, 8.

A report the domain or the database refuses (a rate limit, a request id reused with
another body, a constraint) fails the batch's transaction; the group commit then accepts
each report of the batch alone, so only that report fails, with its own status code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from google.protobuf.message import Message
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common import idempotency, tracing
from services.common.db import Database
from services.common.errors import Conflict
from services.common.group_commit import BatchSettings, GroupCommit
from services.common.indicators import Indicator
from services.common.principals import Principal
from services.report.adapters import tables
from services.report.adapters.repository import (
    UPDATE_INDICATOR,
    IndicatorRow,
    ReportRepository,
    bound_values,
    indicator_key,
    indicator_update,
)
from services.report.domain import access
from services.report.domain.corroboration import Rules
from services.report.domain.model import FraudCategory, NewReport, Report, Standing
from services.report.service_layer import events, reports
from services.report.service_layer.unit_of_work import again_on_deadlock

METHOD = "SubmitReport"


@dataclass(frozen=True, slots=True)
class Submission:
    """One SubmitReport call: who, what, its request id (already scoped to the caller) and
    the fingerprint of its request, and how its report is answered."""

    caller: Principal
    new: NewReport
    request_id: str
    fingerprint: str
    now: datetime
    respond: Callable[[Report], Message]
    response_type: type[Message]
    #: The call's trace context: the report's outbox event continues it.
    trace: str | None = None


@dataclass(frozen=True, slots=True)
class Accepted:
    """A submission's answer, committed; ``events`` when it wrote an outbox event."""

    response: Message
    events: bool


class Intake:
    """Accepts reports in groups (``ANTIFRAUD_REPORT_GROUP_COMMIT*``)."""

    def __init__(self, db: Database, rules: Rules, settings: BatchSettings | None = None) -> None:
        self.rules = rules
        self.commits: GroupCommit[Submission, Accepted] = GroupCommit(
            db, self._apply, settings, name="report-intake", again=again_on_deadlock
        )

    async def submit(self, submission: Submission) -> Accepted:
        """Accept the report (or find the first answer to its request id); return once
        committed."""
        return await self.commits.write(submission)

    async def stop(self) -> None:
        await self.commits.stop()

    async def _apply(self, conn: AsyncConnection, batch: list[Submission]) -> list[Accepted]:
        repo = LockedAhead(conn)
        claims = [(one.request_id, one.fingerprint) for one in batch]
        if repo.postgres and len(batch) == 1:
            # A batch of one: its reporter locked and its request id claimed in one statement.
            claimed = await repo.lock_reporter_and_claim(batch[0], claims)
        else:
            await repo.lock_reporters_of(batch)
            claimed = await idempotency.claim_many(conn, tables.idempotency, METHOD, claims)
        await repo.lock_indicators_of(batch)
        answered: dict[str, tuple[str, Message]] = {}
        together = _independent(batch, claimed)
        done = await self._accept_together(repo, [batch[i] for i in together])
        for i, accepted in zip(together, done, strict=True):
            answered[batch[i].request_id] = (batch[i].fingerprint, accepted.response)
        early = dict(zip(together, done, strict=True))
        answers: list[Accepted] = []
        for i, one in enumerate(batch):
            if i in early:
                answers.append(early[i])
                continue
            earlier = answered.get(one.request_id)
            if earlier is not None:  # a repeat within the batch: the first one's answer
                print_, response = earlier
                if print_ != one.fingerprint:
                    raise Conflict("request_id was already used with a different request")
                answers.append(Accepted(response, events=False))
                continue
            if one.request_id not in claimed:
                # Claimed before this batch: its first response, a Conflict, InProgress, or
                # (a claim abandoned by a dead process) ours to do after all.
                prior = await idempotency.claim(
                    conn, tables.idempotency, METHOD, one.request_id, one.fingerprint
                )
                if prior is not None:
                    answers.append(Accepted(one.response_type.FromString(prior), events=False))
                    continue
            events.forget()
            with tracing.continued(one.trace):  # its risk sync continues its own trace
                report = await reports.accept(repo, one.caller, one.new, self.rules, one.now)
            response = one.respond(report)
            answered[one.request_id] = (one.fingerprint, response)
            answers.append(Accepted(response, events=events.written()))
        remembered = [(request_id, *answer) for request_id, answer in answered.items()]
        updates = repo.take_updates()
        if repo.postgres and len(updates) == 1 and len(remembered) == 1:
            # A batch of one: its indicator's standing and its answer in one statement.
            await conn.execute(
                _standing_and_answer(),
                updates[0] | idempotency.remember_params(METHOD, remembered)[0],
            )
        else:
            await repo.update_indicators(updates)
            await idempotency.remember_many(conn, tables.idempotency, METHOD, remembered)
        return answers

    async def _accept_together(
        self, repo: ReportRepository, group: Sequence[Submission]
    ) -> list[Accepted]:
        """Accept reports that share no reporter and no indicator with any other report of
        the batch (``_independent``): none reads what another writes, so each is accepted
        exactly as alone, but their rows are stored in one statement per table and their
        indicators' counts read in one query (``reports.check``, ``store``, ``count``)."""
        if not group:
            return []
        checked = [
            await reports.check(repo, one.caller, one.new, self.rules, one.now) for one in group
        ]
        stored = await reports.store(repo, checked)
        answers: list[Accepted] = []
        for one, report, rows in zip(group, checked, stored, strict=True):
            events.forget()
            with tracing.continued(one.trace):  # its risk sync continues its own trace
                # Its tallies as read with its checks, itself counted in: no other report
                # of the group names its indicators.
                newly_listed = await reports.count(repo, report, self.rules)
            # Reports naming a newly listed indicator go to the analysts' queue, this one too.
            await repo.put_under_review(newly_listed, one.now)
            answers.append(Accepted(one.respond(reports.as_stored(report, rows)), events.written()))
        return answers


def _independent(batch: Sequence[Submission], claimed: set[str]) -> list[int]:
    """The positions of the batch's reports (two or more) claimed now whose request id,
    reporter and indicators no other report of the batch shares: they can be accepted
    together (``Intake._accept_together``). Every other is accepted one after the other."""
    reporters = Counter(access.reporter(one.caller) for one in batch)
    keys = Counter(indicator_key(i) for one in batch for i in one.new.indicators)
    requests = Counter(one.request_id for one in batch)
    found = [
        position
        for position, one in enumerate(batch)
        if one.request_id in claimed
        and requests[one.request_id] == 1
        and reporters[access.reporter(one.caller)] == 1
        and all(keys[indicator_key(i)] == 1 for i in one.new.indicators)
    ]
    return found if len(found) > 1 else []


class LockedAhead(ReportRepository):
    """The repository of one batch: its reporters' and indicators' rows are locked first,
    one statement each, in the order of their keys (the order every writer takes them in);
    the locks ``reports.accept`` asks for are then answered from what the transaction holds,
    indicators as the reports before in the batch left them."""

    def __init__(self, conn: AsyncConnection) -> None:
        super().__init__(conn)
        self._reporters: set[str] = set()
        self._rows: dict[str, IndicatorRow] = {}
        #: The indicators' new standings, by id, not yet written (``take_updates``).
        self._updates: dict[int, dict[str, Any]] = {}

    async def lock_reporters_of(self, batch: Sequence[Submission]) -> None:
        """Lock the batch's reporters (first, as everywhere: then its request ids are
        claimed, then its indicators locked)."""
        reporters = {access.reporter(one.caller): one.caller.anonymous for one in batch}
        await self.lock_reporters(reporters, batch[0].now)
        self._reporters = set(reporters)

    async def lock_reporter_and_claim(
        self, one: Submission, claims: Sequence[tuple[str, str]]
    ) -> set[str]:
        """PostgreSQL: ``lock_reporters_of`` and ``idempotency.claim_many`` for a batch of
        one, in one statement; returns the request ids claimed now (its own, or none)."""
        reporter = access.reporter(one.caller)
        params = {f"b_c_{k}": v for k, v in idempotency.claim_rows(METHOD, claims)[0].items()}
        params |= {
            "b_p_reporter": reporter,
            "b_p_anonymous": one.caller.anonymous,
            "b_p_confirmed_count": 0,
            "b_p_rejected_count": 0,
            "b_p_create_time": one.now,
        }
        claimed = await self.conn.scalar(_reporter_and_claim(), params)
        self._reporters = {reporter}
        return {one.request_id} if claimed else set()

    async def lock_indicators_of(self, batch: Sequence[Submission]) -> None:
        """Lock the batch's indicators, in the order of their keys."""
        self._rows = await super().lock_indicators(
            [indicator for one in batch for indicator in one.new.indicators], batch[0].now
        )

    async def lock_reporter(self, reporter: str, anonymous: bool, now: datetime) -> None:
        if reporter not in self._reporters:
            await super().lock_reporter(reporter, anonymous, now)
            self._reporters.add(reporter)

    async def lock_indicators(
        self, indicators: Iterable[Indicator], now: datetime
    ) -> dict[str, IndicatorRow]:
        wanted = {indicator_key(i): i for i in indicators}
        missing = [i for key, i in wanted.items() if key not in self._rows]
        if missing:
            self._rows |= await super().lock_indicators(missing, now)
        return {key: self._rows[key] for key in wanted}

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
        # Kept until ``take_updates``: nothing of the batch reads the indicators' rows
        # back from the database (the reports after read them from ``_rows``), so each
        # indicator is written once, with its last state, in one statement for the batch.
        version = row.version + 1 if new_version else row.version
        self._updates[row.id] = indicator_update(
            row.id, standing, reporter_count, score, categories, reset_time, version, now
        )
        self._rows[row.key] = replace(
            row,
            standing=standing,
            reporter_count=reporter_count,
            score=score,
            categories=tuple(FraudCategory(c) for c in sorted({int(c) for c in categories})),
            reset_time=reset_time,
            version=version,
        )
        return version

    def take_updates(self) -> list[dict[str, Any]]:
        """The indicators' new standings to write (``UPDATE_INDICATOR``'s parameters, by
        id), once, at the end of the batch."""
        updates = [self._updates[i] for i in sorted(self._updates)]
        self._updates.clear()
        return updates


@cache
def _reporter_and_claim() -> Any:
    """PostgreSQL: a reporter created if new and locked (``lock_reporters``), and a request
    id claimed (``idempotency.claim_many``), in one statement (the claim a CTE); returns
    how many request ids it claimed. The reporter's lock serialises twins as the claim
    does: a request id is scoped to its caller, so twins share a reporter, and the second
    waits for the first's commit before it claims. Parameters ``b_p_<column>`` (the
    reporter) and ``b_c_<column>`` (the claim)."""
    idem = tables.idempotency
    claim = (
        postgresql.insert(idem)
        .values(bound_values(idem, "b_c_"))
        .on_conflict_do_nothing()
        .returning(idem.c.request_id)
        .cte("claimed")
    )
    lock = postgresql.insert(tables.reporters).values(bound_values(tables.reporters, "b_p_"))
    return lock.on_conflict_do_update(
        index_elements=["reporter"], set_={"anonymous": lock.excluded.anonymous}
    ).returning(sa.select(sa.func.count()).select_from(claim).scalar_subquery())


@cache
def _standing_and_answer() -> Any:
    """PostgreSQL: an indicator's new standing and a request id's answer in one statement
    (the indicator's UPDATE a CTE); parameters those of ``UPDATE_INDICATOR`` and of
    ``idempotency.remember_statement``."""
    return idempotency.remember_statement(tables.idempotency).add_cte(
        UPDATE_INDICATOR.cte("standing")
    )
