"""identity: users, verification requests, blocks, bound accounts, audit log, idempotency, outbox

Revision ID: 0001_identity_initial
Revises:
Create Date: 2026-11-23 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_identity_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.String(36)
_HMAC = sa.String(64)


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("id_number_hmac", _HMAC, nullable=False, unique=True),
        sa.Column("phone_hmac", _HMAC, nullable=False, unique=True),
        sa.Column("name_sealed", sa.LargeBinary, nullable=False),
        sa.Column("id_number_sealed", sa.LargeBinary, nullable=False),
        sa.Column("phone_sealed", sa.LargeBinary, nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("masked_name", sa.String(80), nullable=False),
        sa.Column("masked_id_number", sa.String(18), nullable=False),
        sa.Column("masked_phone", sa.String(32), nullable=False),
        sa.Column("face_subject_ref", sa.String(64), nullable=False),
        sa.Column("verify_time", _time(), nullable=False),
        sa.Column("create_time", _time(), nullable=False),
    )
    op.create_table(
        "verification_requests",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("requester_id", _ID, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("target_phone_hmac", _HMAC, nullable=False),
        sa.Column("target_phone_sealed", sa.LargeBinary, nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("masked_target_phone", sa.String(32), nullable=False),
        sa.Column("purpose", sa.SmallInteger, nullable=False),
        sa.Column("state", sa.SmallInteger, nullable=False),
        sa.Column("create_time", _time(), nullable=False),
        sa.Column("expire_time", _time(), nullable=False),
        sa.Column("respond_time", _time(), nullable=True),
        sa.Column("responder_id", _ID, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("face_attempts", sa.Integer, nullable=False),
        sa.Column("face_result", sa.SmallInteger, nullable=True),
        sa.Column("face_reference", sa.String(128), nullable=True),
    )
    op.create_index(
        "ix_verification_requests_requester",
        "verification_requests",
        ["requester_id", "create_time"],
    )
    op.create_index(
        "ix_verification_requests_target",
        "verification_requests",
        ["target_phone_hmac", "create_time"],
    )
    op.create_index(
        "ix_verification_requests_due", "verification_requests", ["state", "expire_time"]
    )
    op.create_table(
        "blocks",
        sa.Column("blocker_id", _ID, sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("requester_id", _ID, sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("create_time", _time(), nullable=False),
    )
    op.create_table(
        "bound_accounts",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("user_id", _ID, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("kind", sa.SmallInteger, nullable=False),
        sa.Column("account_hmac", _HMAC, nullable=False, unique=True),
        sa.Column("account_sealed", sa.LargeBinary, nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("masked_account", sa.String(80), nullable=False),
        sa.Column("confirmation", sa.SmallInteger, nullable=False),
        sa.Column("create_time", _time(), nullable=False),
    )
    op.create_index("ix_bound_accounts_user_id", "bound_accounts", ["user_id"])
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("event_time", _time(), nullable=False),
        sa.Column("actor", sa.String(160), nullable=False),
        sa.Column("record", sa.String(160), nullable=False),
        sa.Column("fields", sa.String(200), nullable=False),
        sa.Column("purpose", sa.String(200), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_events_record", "audit_events", ["record", "id"])
    op.create_index("ix_audit_events_actor", "audit_events", ["actor", "id"])
    op.create_table(
        "idempotency_keys",
        sa.Column("method", sa.String(64), primary_key=True),
        sa.Column("request_id", sa.String(36), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("response", sa.LargeBinary, nullable=False),
        sa.Column("create_time", _time(), nullable=False),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("key", sa.String(128), nullable=False, unique=True),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("create_time", _time(), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_time", _time(), nullable=False),
        sa.Column("lease_until", _time(), nullable=True),
        sa.Column("deliver_time", _time(), nullable=True),
        sa.Column("fail_time", _time(), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
    )
    op.create_index("ix_outbox_due", "outbox", ["deliver_time", "fail_time", "next_attempt_time"])


def downgrade() -> None:
    raise NotImplementedError("forward only")
