"""Protobuf <-> domain for the WarningService: checks on the way in, masking on the way out."""

from __future__ import annotations

import enum
import re
from datetime import datetime, timedelta
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.warning.v1 import warning_pb2 as pb
from services.common import pagination, validation
from services.common.errors import InvalidArgument
from services.common.indicators import (
    Indicator,
    IndicatorKind,
    InvalidIndicator,
    display,
    normalize,
)
from services.common.validation import Violations
from services.warning.adapters.stats_repo import Stats
from services.warning.domain.contacts import ContactEvent
from services.warning.domain.model import (
    CARRIER_CHANNELS,
    TASK_CHANNELS,
    BankOrder,
    BankOrderState,
    BankOrderType,
    Channel,
    ContactKind,
    Delivery,
    DeliveryState,
    Fanout,
    FanoutState,
    FraudCategory,
    Money,
    NotificationPurpose,
    Reason,
    Recipient,
    RiskLevel,
    Task,
    TaskOutcome,
    TaskState,
    TaskType,
    Warning,
    WarningState,
)
from services.warning.service_layer.screening import Event as ScreeningEvent
from services.warning.service_layer.screening import Screened

MAX_USER_ID = 64
MAX_CASE_ID = 64
MAX_TEXT = 500
MAX_NOTES = 2000
MAX_REASON = 500
MAX_OPERATOR_ID = 64
MAX_CONTACT_EVENTS = 10_000
MAX_CONTACT_ERRORS = 100
#: Carriers' clocks may run a little ahead of ours.
CLOCK_SKEW = timedelta(minutes=5)
CURRENCY = "CNY"


# ---------------------------------------------------------------------------- in


def user_id(v: Violations, field: str, value: str, *, required: bool = True) -> str | None:
    found = validation.text(v, field, value, max_len=MAX_USER_ID, required=required)
    if found and any(c.isspace() for c in found):
        v.add(field, "must not contain spaces")
    return found or None


def phone_field(v: Violations, field: str, value: str) -> str | None:
    """A phone number given as a bare string field, in E.164; violations name the field."""
    if not value.strip():
        v.add(field, "is required")
        return None
    try:
        return normalize(IndicatorKind.PHONE_NUMBER, value).value
    except InvalidIndicator as exc:
        v.add(field, exc.reason)
        return None


def recipient_ref(
    v: Violations, field: str, ref: pb.RecipientRef, has: bool
) -> tuple[str, str] | None:
    """("user", id) or ("phone", e164)."""
    target = ref.WhichOneof("target") if has else None
    if target == "user_id":
        found = user_id(v, f"{field}.user_id", ref.user_id)
        return ("user", found) if found else None
    if target == "phone_number":
        number = phone_field(v, f"{field}.phone_number", ref.phone_number)
        return ("phone", number) if number else None
    v.add(field, "is required: a user_id or a phone_number")
    return None


def optional_indicator(
    v: Violations, field: str, given: common_pb2.Indicator, has: bool
) -> Indicator | None:
    if not has or (given.kind == 0 and not given.value):
        return None
    return validation.indicator(v, field, given.kind, given.value)


def reason(v: Violations, field: str, given: pb.WarningReason, has: bool) -> Reason | None:
    if not has:
        v.add(field, "is required")
        return None
    before = len(v.items)
    indicator = optional_indicator(
        v, f"{field}.indicator", given.indicator, given.HasField("indicator")
    )
    case = case_id(v, f"{field}.case_id", given.case_id, required=False)
    category = validation.enum_value(
        v, f"{field}.category", given.category, FraudCategory, required=False
    )
    if indicator is None and not case and len(v.items) == before:
        v.add(field, "needs an indicator or a case_id")
        return None
    return Reason(indicator, case, category)


def case_id(v: Violations, field: str, value: str, *, required: bool) -> str | None:
    found = validation.text(v, field, value, max_len=MAX_CASE_ID, required=required)
    return found or None


def name(v: Violations, field: str, value: str, collection: str) -> str:
    """The id in ``{collection}/{id}``."""
    prefix = f"{collection}/"
    if not value:
        v.add(field, f"is required ({prefix}{{id}})")
        return ""
    if not value.startswith(prefix) or not 1 <= len(value) - len(prefix) <= 64:
        v.add(field, f"must be {prefix}{{id}}")
        return ""
    found = value[len(prefix) :]
    if not found.isascii() or not all(c.isalnum() or c == "-" for c in found):
        v.add(field, f"must be {prefix}{{id}}")
        return ""
    return found


def money(
    v: Violations, field: str, given: common_pb2.Money, has: bool, *, required: bool
) -> Money | None:
    if not has or (given.units == 0 and given.nanos == 0 and not given.currency_code):
        if required:
            v.add(field, "is required")
        return None
    currency = given.currency_code or CURRENCY
    if len(currency) != 3 or not currency.isascii() or not currency.isupper():
        v.add(f"{field}.currency_code", "must be an ISO 4217 code such as CNY")
    if not 0 <= given.nanos <= 999_999_999 or given.units < 0 or given.units == given.nanos == 0:
        v.add(field, "must be positive")
    elif given.units > validation.MAX_MONEY_UNITS:
        v.add(field, f"must be at most {validation.MAX_MONEY_UNITS} units")
    return Money(currency, given.units, given.nanos)


_LEVELS = frozenset(int(level) for level in RiskLevel)


def contact_events(
    given: Any, start_index: int, now: datetime, errors: list[pb.ContactEventError]
) -> tuple[list[ContactEvent], int]:
    """The valid events of a batch and how many were rejected; the first rejections are added
    to ``errors`` (their index counts from ``start_index``)."""
    valid: list[ContactEvent] = []
    rejected = 0
    latest = now + CLOCK_SKEW
    for offset, event in enumerate(given):
        index = start_index + offset
        v = Violations()
        field = f"events[{offset}]"
        caller = phone_field(v, f"{field}.caller", event.caller)
        callee = phone_field(v, f"{field}.callee", event.callee)
        kind = validation.enum_value(v, f"{field}.kind", event.kind, ContactKind)
        time = None
        if not event.HasField("time"):
            v.add(f"{field}.time", "is required")
        else:
            time = validation.time_of(v, f"{field}.time", event.time)
            if time is not None and time > latest:
                v.add(f"{field}.time", "is in the future")
        if caller is not None and caller == callee:
            v.add(f"{field}.callee", "is the same number as the caller")
        if v.items or caller is None or callee is None or kind is None or time is None:
            rejected += 1
            if len(errors) < MAX_CONTACT_ERRORS and v.items:
                first = v.items[0]
                errors.append(
                    pb.ContactEventError(index=index, field=first.field, reason=first.description)
                )
            continue
        level = RiskLevel(event.caller_level) if event.caller_level in _LEVELS else RiskLevel.NONE
        valid.append(ContactEvent(caller, callee, time, kind, level))
    return valid, rejected


def check_batch_size(count: int, field: str = "events") -> None:
    if not 1 <= count <= MAX_CONTACT_EVENTS:
        raise InvalidArgument.field(
            field, f"must hold 1 to {MAX_CONTACT_EVENTS} events, got {count}"
        )


def page_after_time(v: Violations, token: str) -> tuple[datetime, str] | None:
    try:
        position = pagination.decode(token)
    except InvalidArgument as exc:
        v.items.extend(exc.violations)
        return None
    if position is None:
        return None
    try:
        return datetime.fromisoformat(position["t"]), str(position["id"])
    except (KeyError, TypeError, ValueError):
        v.add("page_token", "is not a page token from this API")
        return None


def page_after_task(v: Violations, token: str) -> tuple[int, datetime, str] | None:
    try:
        position = pagination.decode(token)
    except InvalidArgument as exc:
        v.items.extend(exc.violations)
        return None
    if position is None:
        return None
    try:
        return int(position["l"]), datetime.fromisoformat(position["t"]), str(position["id"])
    except (KeyError, TypeError, ValueError):
        v.add("page_token", "is not a page token from this API")
        return None


def token_after(time: datetime, item_id: str) -> str:
    return pagination.encode({"t": time.isoformat(), "id": item_id})


def token_after_task(task: Task) -> str:
    return pagination.encode(
        {"l": int(task.level), "t": task.create_time.isoformat(), "id": task.id}
    )


# ---------------------------------------------------------------------------- out


def _prefix(enum_type: type[enum.Enum]) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", enum_type.__name__).upper()


def enum_pb(member: enum.Enum | None, enum_type: type[enum.Enum]) -> str:
    """A domain enum member as the proto enum's value name (``Channel.SMS`` -> ``CHANNEL_SMS``),
    which the generated constructors take as they are typed; None is UNSPECIFIED."""
    return f"{_prefix(enum_type)}_{member.name if member is not None else 'UNSPECIFIED'}"


def ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def masked_phone(value: str | None) -> str:
    return display(Indicator(IndicatorKind.PHONE_NUMBER, value)) if value else ""


def indicator_pb(value: Indicator) -> common_pb2.Indicator:
    return common_pb2.Indicator(kind=enum_pb(value.kind, IndicatorKind), value=value.value)


def delivery_pb(d: Delivery) -> pb.Delivery:
    return pb.Delivery(
        name=f"deliveries/{d.id}",
        channel=enum_pb(d.channel, Channel),
        state=enum_pb(d.state, DeliveryState),
        guardian=d.guardian,
        masked_phone_number=masked_phone(d.phone_number)
        if d.channel in CARRIER_CHANNELS or d.channel in TASK_CHANNELS
        else "",
        carrier=d.carrier or "",
        carrier_message_id=d.carrier_message_id or "",
        task=f"tasks/{d.id}" if d.channel in TASK_CHANNELS else "",
        attempt_count=d.attempts,
        last_error=d.last_error or "",
        create_time=ts(d.create_time),
        update_time=ts(d.update_time),
    )


def reason_pb(r: Reason) -> pb.WarningReason:
    return pb.WarningReason(
        indicator=indicator_pb(r.indicator) if r.indicator is not None else None,
        case_id=r.case_id or "",
        category=enum_pb(r.category, FraudCategory),
    )


def warning_pb(w: Warning, *, unmasked: bool = False) -> pb.Warning:
    """A warning as shown; ``unmasked`` (the person's own export only) gives the number."""
    return pb.Warning(
        name=f"warnings/{w.id}",
        user_id=w.user_id or "",
        masked_phone_number=w.phone_number if unmasked else masked_phone(w.phone_number),
        level=enum_pb(w.level, RiskLevel),
        reason=reason_pb(w.reason),
        text=w.text,
        state=enum_pb(w.state, WarningState),
        deliveries=[delivery_pb(d) for d in w.deliveries],
        fanout=f"fanouts/{w.fanout_id}" if w.fanout_id else "",
        contact_count=w.contact_count or 0,
        last_contact_time=ts(w.last_contact_time),
        create_time=ts(w.create_time),
        acknowledge_time=ts(w.acknowledge_time),
    )


def notification_pb(d: Delivery) -> pb.Notification:
    return pb.Notification(
        name=f"notifications/{d.id}",
        user_id=d.user_id or "",
        masked_phone_number=masked_phone(d.phone_number),
        text=d.text or "",
        purpose=enum_pb(d.purpose, NotificationPurpose),
        delivery=delivery_pb(d),
        create_time=ts(d.create_time),
    )


def recipient_pb(r: Recipient) -> pb.Recipient:
    return pb.Recipient(
        user_id=r.user_id,
        phone_number=r.phone_number,
        protected=r.protected,
        guardian_phone_numbers=list(r.guardians),
        create_time=ts(r.create_time),
        update_time=ts(r.update_time),
        region=r.region,
    )


def task_pb(t: Task) -> pb.Task:
    return pb.Task(
        name=f"tasks/{t.id}",
        type=enum_pb(t.type, TaskType),
        state=enum_pb(t.state, TaskState),
        warning=f"warnings/{t.warning_id}",
        level=enum_pb(t.level, RiskLevel),
        phone_number=t.phone_number,
        user_id=t.user_id or "",
        text=t.text,
        operator_id=t.operator_id or "",
        lease_expire_time=ts(t.lease_until),
        outcome=enum_pb(t.outcome, TaskOutcome),
        notes=t.notes or "",
        claim_count=t.claim_count,
        create_time=ts(t.create_time),
        complete_time=ts(t.complete_time),
        region=t.region,
    )


def bank_order_pb(o: BankOrder) -> pb.BankOrder:
    amount = (
        common_pb2.Money(
            currency_code=o.amount.currency_code, units=o.amount.units, nanos=o.amount.nanos
        )
        if o.amount is not None
        else None
    )
    return pb.BankOrder(
        name=f"bankOrders/{o.id}",
        order_type=enum_pb(o.order_type, BankOrderType),
        account=indicator_pb(o.account),
        bank=o.bank or "",
        case_id=o.case_id,
        amount=amount,
        reason=o.reason,
        state=enum_pb(o.state, BankOrderState),
        bank_reference=o.bank_reference or "",
        failure_reason=o.failure_reason or "",
        attempt_count=o.attempts,
        create_time=ts(o.create_time),
        send_time=ts(o.send_time),
        answer_time=ts(o.answer_time),
        update_time=ts(o.update_time),
        held_amount=(
            common_pb2.Money(
                currency_code=o.held_amount.currency_code,
                units=o.held_amount.units,
                nanos=o.held_amount.nanos,
            )
            if o.held_amount is not None
            else None
        ),
        hold_expire_time=ts(o.hold_expire_time),
        transaction_references=list(o.transaction_references),
        legal_instrument_id=o.legal_instrument_id,
    )


def fanout_pb(
    f: Fanout, progress: dict[tuple[Channel, DeliveryState], int] | None = None
) -> pb.Fanout:
    found = pb.Fanout(
        name=f"fanouts/{f.id}",
        indicator=indicator_pb(f.indicator),
        state=enum_pb(f.state, FanoutState),
        contact_count=f.contact_count,
        processed_count=f.processed_count,
        warned_count=f.warned_count,
        suppressed_count=f.suppressed_count,
        change_cursor=f.change_cursor,
        create_time=ts(f.create_time),
        done_time=ts(f.done_time),
        deliveries=delivery_counts_pb(progress or {}),
        call_task_count=f.call_tasks,
        home_visit_task_count=f.home_visit_tasks,
        capped_count=f.capped,
    )
    if f.call_task_cap is not None:
        found.call_task_cap = f.call_task_cap
    if f.home_visit_task_cap is not None:
        found.home_visit_task_cap = f.home_visit_task_cap
    return found


def delivery_counts_pb(
    counts: dict[tuple[Channel, DeliveryState], int],
) -> list[pb.DeliveryStateCount]:
    return [
        pb.DeliveryStateCount(
            channel=enum_pb(channel, Channel), state=enum_pb(state, DeliveryState), count=n
        )
        for (channel, state), n in sorted(counts.items())
    ]


def stats_pb(stats: Stats) -> pb.GetWarningStatsResponse:
    return pb.GetWarningStatsResponse(
        warnings=[
            pb.WarningStateCount(state=enum_pb(state, WarningState), count=n)
            for state, n in sorted(stats.warnings.items())
        ],
        deliveries=delivery_counts_pb(stats.deliveries),
        bank_orders=[
            pb.BankOrderStateCount(state=enum_pb(state, BankOrderState), count=n)
            for state, n in sorted(stats.bank_orders.items())
        ],
    )


#: A valid event, or why it is not.
ScreeningInput = ScreeningEvent | str
MAX_SCREENING_EVENTS = 1000
MAX_EVENT_ID = 128


def screening_events(given: Any, now: datetime) -> list[tuple[int, ScreeningInput]]:
    """Each event of a screening request: its position and either the valid event or why not."""
    found: list[tuple[int, ScreeningInput]] = []
    latest = now + CLOCK_SKEW
    for index, event in enumerate(given):
        v = Violations()
        field = f"events[{index}]"
        event_id = validation.text(
            v, f"{field}.event_id", event.event_id, max_len=MAX_EVENT_ID, required=True
        )
        caller = phone_field(v, f"{field}.caller", event.caller)
        callee = phone_field(v, f"{field}.callee", event.callee)
        kind = validation.enum_value(v, f"{field}.kind", event.kind, ContactKind)
        time = now
        if event.HasField("time"):
            time = validation.time_of(v, f"{field}.time", event.time) or now
            if time > latest:
                v.add(f"{field}.time", "is in the future")
        if v.items or caller is None or callee is None or kind is None:
            first = v.items[0] if v.items else None
            found.append((index, f"{first.field}: {first.description}" if first else "invalid"))
            continue
        found.append((index, ScreeningEvent(event_id, caller, callee, kind, time)))
    return found


def screening_decision_pb(s: Screened) -> pb.ScreeningDecision:
    decision = pb.ScreeningDecision(
        event_id=s.event.event_id,
        action=int(s.action),  # type: ignore[arg-type]
        label=s.label,
        error=s.error,
        record_state=s.record_state,  # type: ignore[arg-type]
        warning=f"warnings/{s.warning_id}" if s.warning_id else "",
    )
    if s.verdict is not None:
        decision.verdict.CopyFrom(s.verdict)
    return decision
