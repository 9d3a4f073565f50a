"""What the report service asserts on the risk list for an indicator, given its standing.

The report service holds one assertion per indicator (source: citizen reports,
``report-service``) and one per case payee (source: the case). The relay sends
the assertion for an indicator's *current* standing, so a retry of an old event
never puts back what a later decision took away.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

# Re-exported: the domain speaks this shared vocabulary.
from services.common.fraud_types import RiskLevel as RiskLevel
from services.report.domain.model import FraudCategory, Standing, case_name

#: Our source id at the risk service for citizen-report assertions.
SOURCE_ID = "report-service"

# Stable namespace for request ids derived from our own keys (uuid5), so a
# redelivery after a crash sends the very same request id and the peer ignores it.
_NAMESPACE = uuid.UUID("6f1c1a52-2b8e-4c57-9d0e-3c1f0a7e5b21")


@dataclass(frozen=True, slots=True)
class Upsert:
    level: RiskLevel
    categories: tuple[FraudCategory, ...]
    reason: str
    reporter_count: int


@dataclass(frozen=True, slots=True)
class Retire:
    reason: str


Listing = Upsert | Retire | None


def _days(window: timedelta) -> str:
    days = window.total_seconds() / 86400
    return f"{days:g} day" + ("" if days == 1 else "s")


def listing_for(
    standing: Standing,
    reporter_count: int,
    categories: Sequence[FraudCategory],
    window: timedelta,
) -> Listing:
    """The assertion that matches a standing; None when there is nothing to assert or withdraw."""
    cats = tuple(sorted(set(categories)))
    if standing is Standing.CONFIRMED:
        return Upsert(
            RiskLevel.HIGH,
            cats,
            "confirmed as fraud by an analyst's review of citizen reports",
            reporter_count,
        )
    if standing is Standing.CORROBORATED:
        return Upsert(
            RiskLevel.MEDIUM,
            cats,
            f"reported as fraud by {reporter_count} independent citizens within {_days(window)}",
            reporter_count,
        )
    if standing is Standing.REJECTED:
        return Retire("citizen reports rejected by an analyst's review")
    return None


def sync_request_id(indicator_row: int, version: int) -> str:
    """The request id (and outbox key) of one version of an indicator's assertion."""
    return str(uuid.uuid5(_NAMESPACE, f"indicator:{indicator_row}:{version}"))


def payee_listing_request_id(case_id: str, position: int) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"case:{case_id}:payee:{position}:listing"))


def stop_payment_request_id(case_id: str, position: int) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"case:{case_id}:payee:{position}:stop-payment"))


def payee_reason(case_id: str) -> str:
    return f"named as payee in case {case_name(case_id)} (pending review)"
