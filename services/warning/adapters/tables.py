"""The warning service's tables (SQLAlchemy Core), the same on SQLite and PostgreSQL.

Enums are stored by name (readable in the database), levels as numbers (they are
compared). Phone numbers are E.164, never logged, and never stored in clear: every
phone column is ``SealedPhone``, the number's fixed AES-SIV seal under the warning
service's keys (``services.common.sealed``), so look-ups, joins and uniqueness work on
it and the number comes back only to be dialled. Times are UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from services.common.audit import audit_table
from services.common.idempotency import idempotency_table
from services.common.outbox import outbox_table
from services.common.sealed import FixedSealed


class UtcDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on both backends (SQLite hands back naive values)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData()

PHONE = 20  # E.164 is at most 16 characters


def SealedPhone() -> FixedSealed:
    """A phone number column: its fixed seal, one purpose for every table so they join."""
    return FixedSealed("warning.phone")


ID = 36  # UUIDs
USER_ID = 64
VALUE = 2048  # the longest indicator value (a URL)

outbox = outbox_table(metadata)
idempotency = idempotency_table(metadata)
audit_events = audit_table(metadata)

recipients = sa.Table(
    "recipients",
    metadata,
    sa.Column("user_id", sa.String(USER_ID), primary_key=True),
    sa.Column("phone_number", SealedPhone(), nullable=False, unique=True),
    sa.Column("protected", sa.Boolean, nullable=False),
    sa.Column("create_time", UtcDateTime, nullable=False),
    sa.Column("update_time", UtcDateTime, nullable=False),
    # Where the user lives (GB/T 2260): their tasks go to that region's officers.
    sa.Column("region", sa.String(6)),
)

guardians = sa.Table(
    "guardians",
    metadata,
    sa.Column(
        "user_id",
        sa.String(USER_ID),
        sa.ForeignKey("recipients.user_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("phone_number", SealedPhone(), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
)

warnings = sa.Table(
    "warnings",
    metadata,
    sa.Column("id", sa.String(ID), primary_key=True),
    sa.Column("user_id", sa.String(USER_ID)),
    sa.Column("phone_number", SealedPhone(), nullable=False),
    sa.Column("level", sa.SmallInteger, nullable=False),
    sa.Column("indicator_kind", sa.SmallInteger),
    sa.Column("indicator_value", sa.String(VALUE)),
    sa.Column("case_id", sa.String(64)),
    sa.Column("category", sa.SmallInteger),
    sa.Column("text", sa.String(1000), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("fanout_id", sa.String(ID)),
    sa.Column("contact_count", sa.Integer),
    sa.Column("last_contact_time", UtcDateTime),
    sa.Column("create_time", UtcDateTime, nullable=False),
    sa.Column("update_time", UtcDateTime, nullable=False),
    sa.Column("acknowledge_time", UtcDateTime),
    sa.Index("ix_warnings_user", "user_id", "create_time"),
    sa.Index("ix_warnings_phone", "phone_number", "create_time"),
    sa.Index("ix_warnings_fanout", "fanout_id"),
    sa.Index("ix_warnings_case", "case_id"),
    sa.Index("ix_warnings_create", "create_time"),
)

#: The once-per-window rule: the latest warning of a person about one thing.
warning_dedup = sa.Table(
    "warning_dedup",
    metadata,
    sa.Column("phone_number", SealedPhone(), primary_key=True),
    sa.Column("reason_key", sa.String(64), primary_key=True),
    sa.Column("warning_id", sa.String(ID), nullable=False),
    sa.Column("level", sa.SmallInteger, nullable=False),
    sa.Column("create_time", UtcDateTime, nullable=False),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.String(ID), primary_key=True),
    sa.Column("warning_id", sa.String(ID), sa.ForeignKey("warnings.id")),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("guardian", sa.Boolean, nullable=False),
    sa.Column("user_id", sa.String(USER_ID)),
    sa.Column("phone_number", SealedPhone()),
    # Notifications only; a warning's deliveries derive their text from the warning.
    sa.Column("text", sa.String(1000)),
    sa.Column("purpose", sa.String(32)),
    sa.Column("carrier", sa.String(32)),
    sa.Column("carrier_message_id", sa.String(128)),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.String(500)),
    sa.Column("next_poll_time", UtcDateTime),
    sa.Column("create_time", UtcDateTime, nullable=False),
    sa.Column("update_time", UtcDateTime, nullable=False),
    sa.Index("ix_deliveries_warning", "warning_id"),
    sa.Index("ix_deliveries_push", "user_id", "channel", "state"),
    sa.Index("ix_deliveries_message", "carrier", "carrier_message_id"),
    sa.Index("ix_deliveries_poll", "state", "next_poll_time"),
)

tasks = sa.Table(
    "tasks",
    metadata,
    # The task's id is its delivery's id.
    sa.Column("id", sa.String(ID), sa.ForeignKey("deliveries.id"), primary_key=True),
    sa.Column("warning_id", sa.String(ID), nullable=False),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("level", sa.SmallInteger, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("phone_number", SealedPhone(), nullable=False),
    sa.Column("user_id", sa.String(USER_ID)),
    sa.Column("operator_id", sa.String(USER_ID)),
    sa.Column("lease_until", UtcDateTime),
    sa.Column("outcome", sa.String(16)),
    sa.Column("notes", sa.String(2000)),
    sa.Column("claim_count", sa.Integer, nullable=False),
    sa.Column("create_time", UtcDateTime, nullable=False),
    sa.Column("update_time", UtcDateTime, nullable=False),
    sa.Column("complete_time", UtcDateTime),
    # The person's region (GB/T 2260), NULL when unknown: officers see their region's tasks.
    sa.Column("region", sa.String(6)),
    sa.Index("ix_tasks_queue", "type", "state", "level", "create_time"),
)

bank_orders = sa.Table(
    "bank_orders",
    metadata,
    sa.Column("id", sa.String(ID), primary_key=True),
    sa.Column("order_type", sa.String(16), nullable=False),
    sa.Column("account_kind", sa.SmallInteger, nullable=False),
    sa.Column("account_value", sa.String(256), nullable=False),
    sa.Column("bank", sa.String(32)),
    sa.Column("case_id", sa.String(64), nullable=False),
    sa.Column("currency_code", sa.String(3)),
    sa.Column("amount_units", sa.BigInteger),
    sa.Column("amount_nanos", sa.Integer),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("bank_reference", sa.String(128)),
    sa.Column("failure_reason", sa.String(500)),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("create_time", UtcDateTime, nullable=False),
    sa.Column("send_time", UtcDateTime),
    sa.Column("answer_time", UtcDateTime),
    sa.Column("update_time", UtcDateTime, nullable=False),
    # When the case was filed: the stop-payment delay is measured from it.
    sa.Column("case_file_time", UtcDateTime),
    # What the bank holds once it acknowledged, until when, and under which instrument.
    sa.Column("held_currency", sa.String(3)),
    sa.Column("held_units", sa.BigInteger),
    sa.Column("held_nanos", sa.Integer),
    sa.Column("hold_expire_time", UtcDateTime),
    sa.Column("transaction_references", sa.JSON),
    sa.Column("legal_instrument_id", sa.String(64)),
    # The victim's app user id, told when the bank holds the funds.
    sa.Column("victim_user_id", sa.String(100)),
    sa.Index("ix_bank_orders_case", "case_id", "create_time"),
    sa.Index("ix_bank_orders_create", "create_time"),
)

#: Contacts as counts per unordered pair of numbers (number_a < number_b) and UTC day.
contact_pairs = sa.Table(
    "contact_pairs",
    metadata,
    sa.Column("number_a", SealedPhone(), primary_key=True),
    sa.Column("number_b", SealedPhone(), primary_key=True),
    sa.Column("day", sa.Integer, primary_key=True),
    sa.Column("calls", sa.Integer, nullable=False),
    sa.Column("sms", sa.Integer, nullable=False),
    sa.Column("last_time", UtcDateTime, nullable=False),
    sa.Index("ix_contact_pairs_b", "number_b", "day"),
    sa.Index("ix_contact_pairs_last", "last_time"),
)

#: Leased singletons: the change-feed follower's cursor and who may follow.
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("holder", sa.String(64)),
    sa.Column("lease_until", UtcDateTime),
    sa.Column("cursor", sa.String(512)),
    sa.Column("update_time", UtcDateTime, nullable=False),
)

#: The last level the feed showed for each number, so a fan-out starts on the rise to HIGH only.
followed_numbers = sa.Table(
    "followed_numbers",
    metadata,
    sa.Column("phone_number", SealedPhone(), primary_key=True),
    sa.Column("level", sa.SmallInteger, nullable=False),
    sa.Column("update_time", UtcDateTime, nullable=False),
)

fanouts = sa.Table(
    "fanouts",
    metadata,
    sa.Column("id", sa.String(ID), primary_key=True),
    sa.Column("indicator_kind", sa.SmallInteger, nullable=False),
    sa.Column("indicator_value", sa.String(PHONE), nullable=False),
    sa.Column("category", sa.SmallInteger),
    sa.Column("change_cursor", sa.String(512), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    # False until the contacts were copied into fanout_targets (one set-based statement).
    sa.Column("snapshot_taken", sa.Boolean, nullable=False),
    sa.Column("contact_count", sa.Integer, nullable=False),
    sa.Column("processed_count", sa.Integer, nullable=False),
    sa.Column("warned_count", sa.Integer, nullable=False),
    sa.Column("suppressed_count", sa.Integer, nullable=False),
    # The last target processed: chunks go in number order and resume after it.
    sa.Column("progress", SealedPhone()),
    sa.Column("holder", sa.String(64)),
    sa.Column("lease_until", UtcDateTime),
    sa.Column("create_time", UtcDateTime, nullable=False),
    sa.Column("update_time", UtcDateTime, nullable=False),
    sa.Column("done_time", UtcDateTime),
    # When the number became high risk (its change in the feed), when the fan-out's first
    # warning was delivered (the indicator between them), and the trace it continues.
    sa.Column("high_time", UtcDateTime),
    sa.Column("first_delivery_time", UtcDateTime),
    sa.Column("trace_context", sa.String(64)),
    # Caps on the tasks the fan-out creates (NULL: none); overflow goes to SMS.
    sa.Column("call_task_cap", sa.Integer),
    sa.Column("home_visit_task_cap", sa.Integer),
    sa.Column("call_tasks", sa.Integer, nullable=False, server_default="0"),
    sa.Column("home_visit_tasks", sa.Integer, nullable=False, server_default="0"),
    sa.Column("capped", sa.Integer, nullable=False, server_default="0"),
    sa.Index("ix_fanouts_state", "state"),
    sa.Index("ix_fanouts_indicator", "indicator_value"),
)

#: A fan-out's contacts, copied when it starts so that chunks read an index, not an aggregate.
fanout_targets = sa.Table(
    "fanout_targets",
    metadata,
    sa.Column("fanout_id", sa.String(ID), primary_key=True),
    sa.Column("phone_number", SealedPhone(), primary_key=True),
    sa.Column("contact_count", sa.Integer, nullable=False),
    sa.Column("last_time", UtcDateTime, nullable=False),
)

#: Screened events with side effects (a risky caller): the decision's record, written with the
#: contact and the callee's warning, so a repeated event answers the same and counts once.
#: No number is kept here: the contact and the warning hold them, sealed.
screenings = sa.Table(
    "screenings",
    metadata,
    sa.Column("carrier", sa.String(64), primary_key=True),
    sa.Column("event_id", sa.String(128), primary_key=True),
    sa.Column("action", sa.SmallInteger, nullable=False),
    sa.Column("level", sa.SmallInteger, nullable=False),
    sa.Column("warning_id", sa.String(ID)),
    sa.Column("create_time", UtcDateTime, nullable=False),
    sa.Index("ix_screenings_create", "create_time"),
)
