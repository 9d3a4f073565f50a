"""The figures: the platform's own numbers, read through the gateway, shaped for the plots."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from services.api.antifraud.common.v1 import common_pb2 as c
from services.api.antifraud.gateway.v1 import gateway_pb2 as gw
from services.api.antifraud.report.v1 import report_pb2 as rp
from services.api.antifraud.risk.v1 import risk_pb2 as rk
from services.api.antifraud.warning.v1 import warning_pb2 as wn
from services.console.backend import Backend
from services.console.board import case_id
from services.console.i18n import SHANGHAI, to_datetime

#: Days of reports plotted.
DAYS = 14
#: Fan-outs whose timing is measured (each costs two calls).
FANOUTS = 30
#: Minutes: the edges of the duration bins.
BIN_EDGES = (1, 5, 15, 60, 240)


@dataclass
class FigureData:
    dashboard: gw.GetDashboardResponse
    days: list[date]
    #: (day, category) -> reports received that day (Asia/Shanghai).
    per_day: Counter[tuple[date, int]]
    high_to_warning: list[float] = field(default_factory=list)
    case_to_ack: list[float] = field(default_factory=list)
    #: (task type, outcome) -> completed tasks.
    outcomes: Counter[tuple[int, int]] = field(default_factory=Counter)
    fanouts: list[wn.Fanout] = field(default_factory=list)

    @property
    def categories(self) -> list[int]:
        return sorted({category for _, category in self.per_day})

    @property
    def warning_total(self) -> int:
        return sum(int(s.count) for s in self.dashboard.warnings.warnings)

    @property
    def dissuaded(self) -> int:
        return sum(
            n for (_, outcome), n in self.outcomes.items() if outcome == wn.TASK_OUTCOME_DISSUADED
        )


def per_day(reports: Iterable[rp.Report]) -> Counter[tuple[date, int]]:
    counts: Counter[tuple[date, int]] = Counter()
    for report in reports:
        when = to_datetime(report.create_time)
        if when is not None:
            counts[(when.astimezone(SHANGHAI).date(), int(report.category))] += 1
    return counts


def last_days(now: datetime, count: int = DAYS) -> list[date]:
    today = now.astimezone(SHANGHAI).date()
    return [today - timedelta(days=count - 1 - i) for i in range(count)]


def bins(minutes: Sequence[float]) -> list[tuple[str, int]]:
    """Counts per bin: ``<1``, ``1-5``, ..., ``>=240``."""
    labels = [f"<{BIN_EDGES[0]}"]
    labels += [f"{a}-{b}" for a, b in itertools.pairwise(BIN_EDGES)]
    labels.append(f"≥{BIN_EDGES[-1]}")
    counts = [0] * len(labels)
    for value in minutes:
        index = sum(1 for edge in BIN_EDGES if value >= edge)
        counts[index] += 1
    return list(zip(labels, counts, strict=True))


def delivery_rows(stats: wn.GetWarningStatsResponse) -> list[tuple[int, int, int]]:
    """(channel, state, count), ordered by channel then state."""
    return sorted((int(d.channel), int(d.state), int(d.count)) for d in stats.deliveries)


def high_time(history: rk.GetIndicatorResponse | None, before: datetime) -> datetime | None:
    """When the value last became HIGH at or before ``before``."""
    if history is None:
        return None
    times = [
        t
        for change in history.history
        if change.verdict.level == c.RISK_LEVEL_HIGH
        and (t := to_datetime(change.change_time)) is not None
        and t <= before
    ]
    # The history is newest first; a run of HIGH changes began at the oldest of the run.
    return min(times) if times else None


def minutes_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None or end < start:
        return None
    return (end - start).total_seconds() / 60


async def _high_to_first_warning(backend: Backend, fanout: wn.Fanout) -> float | None:
    created = to_datetime(fanout.create_time)
    if created is None:
        return None
    history, warnings = await asyncio.gather(
        backend.indicator(fanout.indicator), backend.warnings_of_fanout(fanout.name, 500)
    )
    first = min((t for w in warnings if (t := to_datetime(w.create_time))), default=None)
    return minutes_between(high_time(history, created), first)


async def gather(backend: Backend, now: datetime, report_limit: int) -> FigureData:
    days = last_days(now)
    start = datetime.combine(days[0], datetime.min.time(), SHANGHAI)
    dashboard, reports, cases, orders, fanouts, completed = await asyncio.gather(
        backend.dashboard(),
        backend.reports_since(start, report_limit),
        backend.cases(500),
        backend.bank_orders(500),
        backend.fanouts(None, 100),
        backend.tasks([wn.TASK_STATE_COMPLETED], 500),
    )
    filed = {case_id(k.name): to_datetime(k.create_time) for k in cases}
    case_to_ack = [
        m
        for o in orders
        if o.state == wn.BANK_ORDER_STATE_ACKNOWLEDGED
        and (m := minutes_between(filed.get(case_id(o.case_id)), to_datetime(o.answer_time)))
        is not None
    ]
    timed = await asyncio.gather(*(_high_to_first_warning(backend, f) for f in fanouts[:FANOUTS]))
    return FigureData(
        dashboard=dashboard,
        days=days,
        per_day=per_day(reports),
        high_to_warning=[m for m in timed if m is not None],
        case_to_ack=case_to_ack,
        outcomes=Counter((int(t.type), int(t.outcome)) for t in completed),
        fanouts=fanouts,
    )
