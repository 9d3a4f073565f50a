"""The review queue grouped by indicator: what the reports on one value add up to."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from services.api.antifraud.common.v1 import common_pb2 as c
from services.api.antifraud.report.v1 import report_pb2 as rp


@dataclass
class QueueRow:
    kind: int
    value: str
    reports: list[rp.Report] = field(default_factory=list)
    #: The report service's standing of the value, from the newest report naming it.
    standing: int = rp.INDICATOR_STANDING_UNSPECIFIED

    @property
    def indicator(self) -> c.Indicator:
        return c.Indicator(kind=self.kind, value=self.value)  # type: ignore[arg-type]

    @property
    def report_count(self) -> int:
        return len(self.reports)

    @property
    def reporter_count(self) -> int:
        """Distinct reporters among the open reports (anonymous ones count once each)."""
        named = {r.reporter for r in self.reports if not r.anonymous}
        return len(named) + sum(1 for r in self.reports if r.anonymous)

    @property
    def categories(self) -> list[int]:
        return sorted({r.category for r in self.reports if r.category})

    @property
    def oldest(self) -> rp.Report:
        return min(self.reports, key=lambda r: (r.create_time.seconds, r.create_time.nanos))


def group_by_indicator(reports: Iterable[rp.Report]) -> list[QueueRow]:
    """One row per value named by the reports; most reported first, then oldest first."""
    rows: dict[tuple[int, str], QueueRow] = {}
    for report in reports:
        standing = {
            (int(f.indicator.kind), f.indicator.value): int(f.standing) for f in report.findings
        }
        for indicator in report.indicators:
            key = (int(indicator.kind), indicator.value)
            row = rows.setdefault(key, QueueRow(*key))
            row.reports.append(report)
            row.standing = standing.get(key, row.standing)
    return sorted(
        rows.values(),
        key=lambda r: (-r.report_count, r.oldest.create_time.seconds, r.kind, r.value),
    )
