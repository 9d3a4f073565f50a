"""Reports, cases and their parts, as the report service reasons about them.

Enum numbers match the protos (antifraud.report.v1 and antifraud.common.v1), so
the edge converts by number; nothing here knows about protobuf or the database.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

# Re-exported: the domain speaks this shared vocabulary.
from services.common.fraud_types import FraudCategory as FraudCategory
from services.common.indicators import Indicator


class ReportKind(enum.IntEnum):
    UNSPECIFIED = 0
    FRAUD_CALL = 1
    FRAUD_SMS = 2
    URL = 3
    APP = 4
    FINANCIAL_ACCOUNT = 5
    SOCIAL_ACCOUNT = 6
    OTHER = 7


class ReportStatus(enum.IntEnum):
    UNSPECIFIED = 0
    RECEIVED = 1
    UNDER_REVIEW = 2
    CONFIRMED = 3
    REJECTED = 4
    DUPLICATE = 5


#: Reports an analyst still has to look at.
OPEN_STATUSES = (ReportStatus.RECEIVED, ReportStatus.UNDER_REVIEW)


class ReviewDecision(enum.IntEnum):
    UNSPECIFIED = 0
    CONFIRM = 1
    REJECT = 2


class Standing(enum.IntEnum):
    """What the reports have made of an indicator on the risk list."""

    UNSPECIFIED = 0
    UNLISTED = 1
    CORROBORATED = 2  # listed at MEDIUM
    CONFIRMED = 3  # listed at HIGH
    REJECTED = 4  # withdrawn

    @property
    def listed(self) -> bool:
        return self in (Standing.CORROBORATED, Standing.CONFIRMED)


class StopPaymentStatus(enum.IntEnum):
    UNSPECIFIED = 0
    PENDING = 1
    QUEUED = 2
    SENT = 3
    ACKNOWLEDGED = 4  # the bank holds the funds
    REJECTED = 5
    FAILED = 6
    RELEASED = 7  # the hold was lifted
    RETURNED = 8  # the held funds went back to the victim
    EXPIRED = 9  # the hold lapsed

    @property
    def rank(self) -> int:
        """Orders only move forward: pending, queued, sent, the bank's answer, the hold's end."""
        if self in _HOLD_ENDS:
            return 5
        return min(int(self), 4)

    @property
    def final(self) -> bool:
        """Nothing more will happen to the order: refused, undeliverable, or its hold ended."""
        return self.rank == 5 or self in (StopPaymentStatus.REJECTED, StopPaymentStatus.FAILED)

    def replaces(self) -> tuple[StopPaymentStatus, ...]:
        """The statuses this one may overwrite (a late, older read never moves an order back)."""
        return tuple(s for s in StopPaymentStatus if s.rank < self.rank or s is self)


_HOLD_ENDS = frozenset(
    {StopPaymentStatus.RELEASED, StopPaymentStatus.RETURNED, StopPaymentStatus.EXPIRED}
)


class CaseStatus(enum.IntEnum):
    UNSPECIFIED = 0
    FILED = 1
    ORDERS_SENT = 2
    HELD = 3
    RELEASED = 4
    TRANSFERRED = 5
    CLOSED = 6


class CaseEventType(enum.IntEnum):
    UNSPECIFIED = 0
    FILED = 1
    STATUS_CHANGED = 2
    ASSIGNED = 3
    REPLY = 4
    CLOSED = 5


@dataclass(frozen=True, slots=True)
class Money:
    """An amount as google.type.Money: whole units and nanos with the same sign."""

    currency: str
    units: int
    nanos: int = 0


@dataclass(frozen=True, slots=True)
class Attachment:
    sha256: str
    size_bytes: int
    media_type: str = ""


@dataclass(frozen=True, slots=True)
class Evidence:
    sms_text: str = ""
    call_time: datetime | None = None
    amount_requested: Money | None = None
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True, slots=True)
class NewReport:
    """A validated submission."""

    kind: ReportKind
    indicators: tuple[Indicator, ...]
    description: str = ""
    evidence: Evidence = field(default_factory=Evidence)
    incident_time: datetime | None = None
    category: FraudCategory = FraudCategory.UNSPECIFIED


@dataclass(frozen=True, slots=True)
class Review:
    decision: ReviewDecision
    reason: str
    reviewer: str
    time: datetime


@dataclass(frozen=True, slots=True)
class Finding:
    """One indicator of a report with its current standing."""

    indicator: Indicator
    standing: Standing
    reporter_count: int


@dataclass(frozen=True, slots=True)
class Report:
    id: str
    reporter: str
    anonymous: bool
    kind: ReportKind
    description: str
    evidence: Evidence
    incident_time: datetime | None
    category: FraudCategory
    status: ReportStatus
    duplicate_of: str
    case_id: str
    create_time: datetime
    update_time: datetime
    findings: tuple[Finding, ...] = ()
    reviews: tuple[Review, ...] = ()

    @property
    def indicators(self) -> tuple[Indicator, ...]:
        return tuple(f.indicator for f in self.findings)

    @property
    def resolution(self) -> Review | None:
        return self.reviews[-1] if self.reviews else None


@dataclass(frozen=True, slots=True)
class NewPayee:
    account: Indicator
    amount: Money | None = None
    transaction_references: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NewCase:
    """A validated filing."""

    description: str
    category: FraudCategory
    amount_lost: Money
    incident_time: datetime
    payees: tuple[NewPayee, ...] = ()
    suspects: tuple[Indicator, ...] = ()


@dataclass(frozen=True, slots=True)
class Payee:
    position: int
    account: Indicator
    amount: Money | None
    bank_order: str
    status: StopPaymentStatus
    status_time: datetime | None
    status_detail: str
    held_amount: Money | None = None
    hold_expire_time: datetime | None = None
    transaction_references: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CaseEvent:
    type: CaseEventType
    status: CaseStatus
    text: str
    actor: str
    time: datetime


@dataclass(frozen=True, slots=True)
class Case:
    id: str
    filer: str
    description: str
    category: FraudCategory
    amount_lost: Money
    incident_time: datetime
    payees: tuple[Payee, ...]
    suspects: tuple[Indicator, ...]
    report_id: str
    create_time: datetime
    status: CaseStatus = CaseStatus.FILED
    officer: str = ""
    events: tuple[CaseEvent, ...] = ()
    update_time: datetime | None = None


def report_name(report_id: str) -> str:
    return f"reports/{report_id}"


def case_name(case_id: str) -> str:
    return f"cases/{case_id}"
