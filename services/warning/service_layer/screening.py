"""Screening calls for carriers: look the callers up, decide, and for a risky caller record
the contact and warn the callee in the same transaction as the decision's record, before the
decision is answered.

Concurrent requests (every carrier's stream, on this replica) are committed together
(``GroupCommit``): one transaction, with one statement per table (multi-row or
executemany), for all screenings that arrive within a few milliseconds of each other or
while the previous transaction commits. Each request is answered once its own records are
committed; a request whose records the database refuses fails alone (the batch is tried
again write by write). A repeated event (same carrier and event id) finds its record and
adds nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from services.api.antifraud.risk.v1 import risk_pb2
from services.common.db import Database
from services.common.group_commit import GroupCommit
from services.common.indicators import Indicator, IndicatorKind
from services.warning.adapters import contacts_repo, recipients_repo, screenings_repo, warnings_repo
from services.warning.adapters.risk_checks import RiskChecks, RiskUnavailable
from services.warning.domain.contacts import ContactEvent, aggregate
from services.warning.domain.model import (
    CARRIER_CHANNELS,
    ContactKind,
    FraudCategory,
    Person,
    Reason,
    RiskLevel,
    Warning,
)
from services.warning.domain.rules import reason_key
from services.warning.domain.screening import CallerVerdict, Decision, ScreeningAction, decide
from services.warning.service_layer.push import PushHub
from services.warning.service_layer.warnings import Draft, build, create_built
from services.warning.settings import WarningSettings

_LEVELS = frozenset(int(level) for level in RiskLevel)
Category = FraudCategory | None


@dataclass(frozen=True)
class Event:
    """A valid screened event, numbers normalised."""

    event_id: str
    caller: str
    callee: str
    kind: ContactKind
    time: datetime


class RecordState:
    NOT_NEEDED = 1
    RECORDED = 2
    NOT_RECORDED = 3


@dataclass
class Screened:
    event: Event
    action: ScreeningAction = ScreeningAction.ALLOW
    label: str = ""
    verdict: risk_pb2.Verdict | None = None
    error: str = ""
    record_state: int = RecordState.NOT_NEEDED
    warning_id: str | None = None


@dataclass
class _Write:
    """The side effects of one request's risky events, filled in by the commit."""

    carrier: str
    items: list[tuple[Screened, Decision, RiskLevel, Category]]
    now: datetime
    #: The warnings this request's events created (each once, in one request's write).
    warned: list[Warning] = field(default_factory=list)


def _due_now(warning: Warning) -> bool:
    """Whether the warning has an SMS the relay should send now (not one that falls back from
    the push later: waking the relay for it would only run an empty claim)."""
    return any(
        d.channel in CARRIER_CHANNELS and d.fallback_seconds is None for d in warning.deliveries
    )


def _category(verdict: risk_pb2.Verdict) -> FraudCategory | None:
    if not verdict.categories:
        return None
    try:
        return FraudCategory(verdict.categories[0])
    except ValueError:
        return None


class Screener:
    def __init__(
        self,
        db: Database,
        settings: WarningSettings,
        risk: RiskChecks,
        hub: PushHub,
        wake_relay: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.risk = risk
        self.hub = hub
        self.wake_relay = wake_relay
        self.commits: GroupCommit[_Write, None] = GroupCommit.of_writes(
            db, self._apply, settings.group_commit, name="warning-screening-commit"
        )

    async def stop(self) -> None:
        await self.commits.stop()
        await self.risk.close()

    async def screen(self, carrier: str, events: Sequence[Event], now: datetime) -> list[Screened]:
        screened = [Screened(e) for e in events]
        if not screened:
            return screened
        try:
            verdicts = await self.risk.phone_verdicts([e.caller for e in events])
        except RiskUnavailable as exc:
            # Fail open: an outage of ours must not stop people's calls. The carrier is told
            # nothing was recorded, and sends the event again later.
            for s in screened:
                s.error = f"risk look-up unavailable ({exc.code}); allowed"
                s.record_state = RecordState.NOT_RECORDED
            return screened
        return await self.record(carrier, screened, verdicts, now)

    async def record(
        self,
        carrier: str,
        screened: list[Screened],
        verdicts: Sequence[risk_pb2.Verdict],
        now: datetime,
    ) -> list[Screened]:
        """Decide each event by its caller's verdict and, for risky callers, commit the
        records (with the other requests pending now) before returning."""
        write = _Write(carrier, [], now)
        for s, verdict in zip(screened, verdicts, strict=True):
            level = RiskLevel(verdict.level) if verdict.level in _LEVELS else RiskLevel.NONE
            decision = decide(CallerVerdict(level, verdict.verified, verdict.verified_label))
            s.verdict, s.action, s.label = verdict, decision.action, decision.label
            if decision.records:
                write.items.append((s, decision, level, _category(verdict)))
        if write.items:
            try:
                await self.commits.write(write)
            except Exception as exc:  # the database: say so, the call goes on
                for s, *_ in write.items:
                    s.error = f"not recorded ({type(exc).__name__}); send the event again"
                    s.record_state = RecordState.NOT_RECORDED
                return screened
            for s, *_ in write.items:
                s.record_state = RecordState.RECORDED
            self.hub.publish(write.warned)
            if any(_due_now(w) for w in write.warned):
                self.wake_relay()
        return screened

    async def _apply(self, conn: AsyncConnection, writes: list[_Write]) -> None:
        """Every pending request's records, contacts and warnings, in one transaction.

        Applied again write by write when the transaction fails: what it fills in is reset
        first."""
        for w in writes:
            w.warned.clear()
        now = max(w.now for w in writes)
        rows: dict[tuple[str, str], tuple[_Write, Screened, Decision, RiskLevel, Category]] = {}
        for w in writes:
            for s, decision, level, category in w.items:
                rows.setdefault((w.carrier, s.event.event_id), (w, s, decision, level, category))
        # Each pair's warning is built before the records are written, so a record carries
        # its warning id from its insert; only a pair whose warning the once-per-window claim
        # holds (already warned) is corrected afterwards.
        persons = await recipients_repo.persons(
            conn, {s.event.callee for _, s, *_ in rows.values()}
        )
        built: dict[tuple[str, str], Warning] = {}
        for _, s, decision, _, category in rows.values():
            assert decision.callee_level is not None
            pair = (s.event.callee, s.event.caller)
            if pair not in built:
                built[pair] = build(
                    self.settings,
                    Draft(
                        person=persons.get(s.event.callee) or Person(s.event.callee),
                        level=decision.callee_level,
                        reason=Reason(
                            Indicator(IndicatorKind.PHONE_NUMBER, s.event.caller), None, category
                        ),
                        text=decision.callee_text,
                    ),
                    now,
                    self.settings.screening_policy,
                )
        won = await screenings_repo.claim(
            conn,
            [
                screenings_repo.ScreeningRow(
                    key[0],
                    key[1],
                    int(d.action),
                    int(level),
                    built[(s.event.callee, s.event.caller)].id,
                )
                for key, (_, s, d, level, _) in rows.items()
            ],
            now,
        )
        new = [(key, row) for key, row in rows.items() if key in won]
        await contacts_repo.add(
            conn,
            aggregate(
                ContactEvent(s.event.caller, s.event.callee, s.event.time, s.event.kind, level)
                for _, (_, s, _, level, _) in new
            ),
        )
        pairs = list(dict.fromkeys((s.event.callee, s.event.caller) for _, (_, s, *_) in new))
        created = await create_built(conn, self.settings, [built[p] for p in pairs], now)
        warning_of: dict[tuple[str, str], str | None] = {}
        held: list[tuple[tuple[str, str], tuple[str, str]]] = []
        for pair, warning in zip(pairs, created, strict=True):
            if warning is not None:
                warning_of[pair] = warning.id
            else:  # already warned about this caller within the window
                held.append((pair, (built[pair].phone_number, reason_key(built[pair].reason))))
        if held:
            current = await warnings_repo.current_for_many(conn, [key for _, key in held])
            for pair, key in held:
                warning_of[pair] = current.get(key)
        unclaimed = {w.id: w for w in created if w is not None}
        corrected: dict[tuple[str, str], str | None] = {}
        for key, (w, s, *_) in new:
            pair = (s.event.callee, s.event.caller)
            s.warning_id = warning_of.get(pair)
            if s.warning_id != built[pair].id:
                corrected[key] = s.warning_id
            if s.warning_id in unclaimed:
                w.warned.append(unclaimed.pop(s.warning_id))
        await screenings_repo.set_warnings(conn, corrected)
        # Repeats: the warning their first screening led to (a query per carrier).
        repeats: dict[str, list[Screened]] = {}
        for w in writes:
            for s, *_ in w.items:
                if (w.carrier, s.event.event_id) not in won:
                    repeats.setdefault(w.carrier, []).append(s)
        for carrier, repeated in repeats.items():
            first = await screenings_repo.warnings_of(
                conn, carrier, [s.event.event_id for s in repeated]
            )
            for s in repeated:
                s.warning_id = first.get(s.event.event_id)
