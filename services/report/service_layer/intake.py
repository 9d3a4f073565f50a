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
(with many callers, most) read nothing the others write: they are checked one by one, then
stored together (one statement for their reports, one for their links) and counted in one
read (``Intake._accept_together``), each exactly as it would be alone; the others follow,
one after the other.

Request ids (AIP-155) hold across and within batches: the batch claims its request ids
first (``idempotency.claim_many``); one claimed before returns its first response
(``idempotency.claim``), and a repeat of a request id accepted earlier in the same batch gets
that response (a repeat with another body is a Conflict, as always).

A report the domain or the database refuses (a rate limit, a request id reused with
another body, a constraint) fails the batch's transaction; the group commit then accepts
each report of the batch alone, so only that report fails, with its own status code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common import idempotency, tracing
from services.common.db import Database
from services.common.errors import Conflict
from services.common.group_commit import BatchSettings, GroupCommit
from services.common.indicators import Indicator
from services.common.principals import Principal
from services.report.adapters import tables
from services.report.adapters.repository import (
    IndicatorRow,
    ReportRepository,
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
        claimed = await idempotency.claim_many(
            conn, tables.idempotency, METHOD, [(one.request_id, one.fingerprint) for one in batch]
        )
        await repo.lock_ahead(batch)
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
        await repo.store_indicators()
        await idempotency.remember_many(
            conn,
            tables.idempotency,
            METHOD,
            [(request_id, print_, response) for request_id, (print_, response) in answered.items()],
        )
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
        #: The indicators' new standings, by id, not yet written (``store_indicators``).
        self._updates: dict[int, dict[str, Any]] = {}

    async def lock_ahead(self, batch: Sequence[Submission]) -> None:
        reporters = {access.reporter(one.caller): one.caller.anonymous for one in batch}
        now = batch[0].now
        await self.lock_reporters(reporters, now)
        self._reporters = set(reporters)
        self._rows = await super().lock_indicators(
            [indicator for one in batch for indicator in one.new.indicators], now
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
        # Kept until ``store_indicators``: nothing of the batch reads the indicators' rows
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

    async def store_indicators(self) -> None:
        """Write the indicators' new standings (one executemany for the batch)."""
        await super().update_indicators([self._updates[i] for i in sorted(self._updates)])
        self._updates.clear()
