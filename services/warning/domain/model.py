"""The warning service's vocabulary: warnings, deliveries, tasks, bank orders, fan-outs.

Pure Python. Enum numbers match the proto enums of antifraud.warning.v1 (and
antifraud.common.v1 for levels and categories), so conversion at the edge is a
cast; the database stores enum names, and levels as numbers because they are
compared.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

# Re-exported: the domain speaks this shared vocabulary.
from services.common.fraud_types import FraudCategory as FraudCategory
from services.common.fraud_types import RiskLevel as RiskLevel
from services.common.indicators import Indicator


class Channel(enum.IntEnum):
    APP_PUSH = 1
    SMS = 2
    FLASH_SMS = 3
    CALL_TASK = 4
    HOME_VISIT_TASK = 5


#: Channels sent through a carrier (the outbox topics ``warnings_repo.SMS_TOPICS``).
CARRIER_CHANNELS = frozenset({Channel.SMS, Channel.FLASH_SMS})
#: Channels worked by operators (a row in the task queue).
TASK_CHANNELS = frozenset({Channel.CALL_TASK, Channel.HOME_VISIT_TASK})


class DeliveryState(enum.IntEnum):
    QUEUED = 1
    SENT = 2
    DELIVERED = 3
    ACKNOWLEDGED = 4
    FAILED = 5
    #: A fallback (an SMS behind the app push) not sent: the push reached the person first.
    NOT_NEEDED = 6


class WarningState(enum.IntEnum):
    PENDING = 1
    DELIVERED = 2
    ACKNOWLEDGED = 3
    FAILED = 4


class NotificationPurpose(enum.IntEnum):
    VERIFICATION_REQUEST = 1
    VERIFICATION_RESULT = 2
    OTHER = 3
    CASE_UPDATE = 4


class ContactKind(enum.IntEnum):
    CALL = 1
    SMS = 2


class TaskType(enum.IntEnum):
    CALL = 1
    HOME_VISIT = 2


TASK_TYPE_OF_CHANNEL = {
    Channel.CALL_TASK: TaskType.CALL,
    Channel.HOME_VISIT_TASK: TaskType.HOME_VISIT,
}


class TaskState(enum.IntEnum):
    OPEN = 1
    CLAIMED = 2
    COMPLETED = 3


class TaskOutcome(enum.IntEnum):
    DISSUADED = 1
    UNREACHABLE = 2
    ALREADY_PAID = 3
    FALSE_ALARM = 4


class BankOrderType(enum.IntEnum):
    STOP_PAYMENT = 1
    FREEZE = 2


class BankOrderState(enum.IntEnum):
    QUEUED = 1
    SENT = 2
    ACKNOWLEDGED = 3  # the bank holds the funds
    REJECTED = 4
    FAILED = 5
    RELEASED = 6  # the hold was lifted
    RETURNED = 7  # the held funds went back to the victim
    EXPIRED = 8  # the hold lapsed


#: The bank answered (or we gave up): the order is not sent again.
FINAL_BANK_ORDER_STATES = frozenset(
    {
        BankOrderState.ACKNOWLEDGED,
        BankOrderState.REJECTED,
        BankOrderState.FAILED,
        BankOrderState.RELEASED,
        BankOrderState.RETURNED,
        BankOrderState.EXPIRED,
    }
)


class HoldDisposition(enum.IntEnum):
    """How a hold ends; numbers match antifraud.warning.v1.HoldDisposition."""

    RELEASE = 1
    RETURN_TO_VICTIM = 2


class FanoutState(enum.IntEnum):
    RUNNING = 1
    DONE = 2


@dataclass(frozen=True)
class Recipient:
    """The warning profile of an app user."""

    user_id: str
    phone_number: str
    protected: bool
    guardians: tuple[str, ...]
    create_time: datetime
    update_time: datetime
    #: Where the user lives (GB/T 2260); '' when unknown.
    region: str = ""


@dataclass(frozen=True)
class Person:
    """Who a warning is for, resolved: always a phone number, a user when registered."""

    phone_number: str
    user_id: str | None = None
    protected: bool = False
    guardians: tuple[str, ...] = ()
    #: Where the person lives, when a registered user says so: their tasks' region.
    region: str = ""

    @classmethod
    def of(cls, recipient: Recipient) -> Person:
        return cls(
            recipient.phone_number,
            recipient.user_id,
            recipient.protected,
            recipient.guardians,
            recipient.region,
        )


@dataclass(frozen=True)
class Reason:
    """Why a person is warned: an indicator, a case, or both."""

    indicator: Indicator | None
    case_id: str | None
    category: FraudCategory | None = None


@dataclass(frozen=True)
class Delivery:
    id: str
    channel: Channel
    state: DeliveryState
    warning_id: str | None
    user_id: str | None
    phone_number: str | None
    guardian: bool
    carrier: str | None
    carrier_message_id: str | None
    attempts: int
    last_error: str | None
    create_time: datetime
    update_time: datetime
    # Notifications only: their own text and purpose (a warning's deliveries derive theirs).
    text: str | None = None
    purpose: NotificationPurpose | None = None
    #: A fallback to the app push: sent this many seconds after the warning was created unless
    #: the push reached the person (or they acknowledged) first. Not stored on the row: the
    #: outbox event carries it (``warnings_repo.SMS_FALLBACK_TOPIC``, due later).
    fallback_seconds: float | None = None


@dataclass(frozen=True)
class Warning:
    id: str
    user_id: str | None
    phone_number: str
    level: RiskLevel
    reason: Reason
    text: str
    state: WarningState
    fanout_id: str | None
    contact_count: int | None
    last_contact_time: datetime | None
    create_time: datetime
    acknowledge_time: datetime | None
    deliveries: tuple[Delivery, ...] = ()
    #: The person's region when the warning was made, given to its call and visit tasks
    #: (not stored with the warning itself).
    region: str = ""


@dataclass(frozen=True)
class Task:
    id: str
    type: TaskType
    state: TaskState
    warning_id: str
    level: RiskLevel
    phone_number: str
    user_id: str | None
    text: str
    operator_id: str | None
    lease_until: datetime | None
    outcome: TaskOutcome | None
    notes: str | None
    claim_count: int
    create_time: datetime
    complete_time: datetime | None
    #: The person's region (GB/T 2260); '' when unknown.
    region: str = ""


@dataclass(frozen=True)
class Money:
    currency_code: str
    units: int
    nanos: int


@dataclass(frozen=True)
class BankOrder:
    id: str
    order_type: BankOrderType
    account: Indicator
    bank: str | None
    case_id: str
    amount: Money | None
    reason: str
    state: BankOrderState
    bank_reference: str | None
    failure_reason: str | None
    attempts: int
    create_time: datetime
    send_time: datetime | None
    answer_time: datetime | None
    update_time: datetime
    #: When the case was filed (the caller says so): the stop-payment delay starts there.
    case_file_time: datetime | None = None
    held_amount: Money | None = None
    hold_expire_time: datetime | None = None
    transaction_references: tuple[str, ...] = ()
    legal_instrument_id: str = ""
    #: The app user told when the funds are held (the victim); empty for none.
    victim_user_id: str = ""


@dataclass(frozen=True)
class Hold:
    """What a bank says of a hold: its state, the amount held, until when, under what."""

    state: BankOrderState
    held_amount: Money | None
    expire_time: datetime | None
    legal_instrument_id: str


@dataclass(frozen=True)
class Fanout:
    id: str
    indicator: Indicator
    category: FraudCategory | None
    state: FanoutState
    contact_count: int
    processed_count: int
    warned_count: int
    suppressed_count: int
    change_cursor: str
    create_time: datetime
    done_time: datetime | None
    #: When the number became high risk (the change's time in the risk feed).
    high_time: datetime | None = None
    #: The trace the fan-out continues (a W3C traceparent), when the change was traced.
    trace_context: str | None = None
    #: Caps on the tasks it creates (None: no cap); overflow goes to SMS.
    call_task_cap: int | None = None
    home_visit_task_cap: int | None = None
    call_tasks: int = 0
    home_visit_tasks: int = 0
    #: Task deliveries turned into SMS by a cap.
    capped: int = 0
