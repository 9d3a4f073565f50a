"""SubmitReport in groups: the reports that arrive together are accepted in one transaction.

Each report is accepted exactly as alone (``reports.accept``: reporter locked, rate limit,
duplicate check, corroboration, the outbox event), one after the other on one connection,
so every rule sees the reports before it in the batch as it would see them committed; the
batch commits once (``services.common.group_commit``), and only then is each caller
answered. What a batch saves is the commit of every report but one, the waits for the write
lock (SQLite) and the storing of every response in one statement.

Request ids (AIP-155) hold across and within batches: each report claims its request id
first (``idempotency.claim``: a request id answered before returns its first response), and
a repeat of a request id already accepted earlier in the same batch gets that response
(a repeat with another body is a Conflict, as always).

A report the domain or the database refuses (a rate limit, a request id reused with
another body, a constraint) fails the batch's transaction; the group commit then accepts
each report of the batch alone, so only that report fails, with its own status code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common import idempotency
from services.common.db import Database
from services.common.errors import Conflict
from services.common.group_commit import BatchSettings, GroupCommit
from services.common.principals import Principal
from services.report.adapters import tables
from services.report.adapters.repository import ReportRepository
from services.report.domain.corroboration import Rules
from services.report.domain.model import NewReport, Report
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
        repo = ReportRepository(conn)
        answered: dict[str, tuple[str, Message]] = {}
        answers: list[Accepted] = []
        for one in batch:
            earlier = answered.get(one.request_id)
            if earlier is not None:  # a repeat within the batch: the first one's answer
                print_, response = earlier
                if print_ != one.fingerprint:
                    raise Conflict("request_id was already used with a different request")
                answers.append(Accepted(response, events=False))
                continue
            prior = await idempotency.claim(
                conn, tables.idempotency, METHOD, one.request_id, one.fingerprint
            )
            if prior is not None:
                answers.append(Accepted(one.response_type.FromString(prior), events=False))
                continue
            events.forget()
            report = await reports.accept(repo, one.caller, one.new, self.rules, one.now)
            response = one.respond(report)
            answered[one.request_id] = (one.fingerprint, response)
            answers.append(Accepted(response, events=events.written()))
        await idempotency.remember_many(
            conn,
            tables.idempotency,
            METHOD,
            [(request_id, print_, response) for request_id, (print_, response) in answered.items()],
        )
        return answers
