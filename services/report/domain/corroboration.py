"""Corroboration: when do reports about one indicator put it on the risk list, and at what weight.

Reports count per distinct reporter, so one person reporting a number a hundred
times counts once. A reporter whose reports are rejected again and again weighs
less. Anonymous reports cannot be told apart (they may all be one person), so
each weighs little and all of them together count at most as one reporter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from services.report.domain.model import Standing


@dataclass(frozen=True, slots=True)
class Rules:
    """Tunable policy; the defaults are the issue's (3 distinct reporters in 7 days)."""

    threshold: float = 3.0
    window: timedelta = timedelta(days=7)
    #: Weight of each anonymous report, and the most all of them count for together.
    anonymous_weight: float = 0.25
    anonymous_cap: float = 1.0
    #: Rejections beyond confirmations that are forgiven before a reporter weighs less.
    forgiven_rejections: int = 1
    #: The least a reporter can weigh.
    min_weight: float = 0.1
    #: Reports one reporter may submit per ``rate_window``. Anonymous reports cannot be told
    #: apart, so they share one budget (the gateway should limit them per device as well).
    rate_limit: int = 20
    anonymous_rate_limit: int = 1000
    rate_window: timedelta = timedelta(minutes=10)
    #: Cases one filer may file per ``case_rate_window`` (each sends stop-payment orders).
    case_rate_limit: int = 5
    case_rate_window: timedelta = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Tally:
    """One reporter's reports about an indicator within the window (rejected ones left out);
    or, with ``reporters`` over 1, the reports of that many distinct reporters who all weigh
    the same (the same confirmed and rejected counts), counted together."""

    reporter: str
    anonymous: bool
    reports: int
    confirmed: int  # the reporter's confirmed reports, about anything
    rejected: int  # the reporter's rejected reports, about anything
    reporters: int = 1


@dataclass(frozen=True, slots=True)
class Corroboration:
    """How strongly the reports in the window stand behind an indicator."""

    named_reporters: int  # distinct real-name reporters
    score: float  # weighted distinct reporters, compared with the threshold

    def reaches(self, rules: Rules) -> bool:
        # A small epsilon so that 3 x 1.0 is not missed by float rounding of weights.
        return self.score + 1e-9 >= rules.threshold


def reporter_weight(confirmed: int, rejected: int, rules: Rules) -> float:
    """1.0 for a reporter in good standing, halved for each rejection beyond the forgiven ones.

    Confirmations offset rejections, so a diligent reporter with one mistake keeps full weight.
    """
    strikes = rejected - confirmed - rules.forgiven_rejections
    if strikes <= 0:
        return 1.0
    return max(rules.min_weight, 0.5**strikes)


def corroborate(tallies: Iterable[Tally], rules: Rules) -> Corroboration:
    named = 0
    score = 0.0
    anonymous = 0.0
    for tally in tallies:
        if tally.reports <= 0:
            continue
        if tally.anonymous:
            anonymous += rules.anonymous_weight * tally.reports
            continue
        named += tally.reporters
        score += reporter_weight(tally.confirmed, tally.rejected, rules) * tally.reporters
    return Corroboration(named, score + min(anonymous, rules.anonymous_cap))


def standing_after_reports(
    current: Standing, corroboration: Corroboration, rules: Rules
) -> Standing:
    """The standing once new reports are counted: corroboration lists an unlisted indicator.

    An analyst's decision is never undone by reports: a confirmed indicator stays
    confirmed; a rejected one is listed again only when the reports after the
    rejection (the caller counts only those) reach the threshold on their own.
    """
    if current.listed:
        return current
    if corroboration.reaches(rules):
        return Standing.CORROBORATED
    return current if current is Standing.REJECTED else Standing.UNLISTED
