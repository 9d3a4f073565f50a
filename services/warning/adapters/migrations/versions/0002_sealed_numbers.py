"""Phone numbers sealed: every column that held an E.164 number in clear now holds its
fixed (AES-SIV) seal, ``s1.<base64>``, up to 64 characters; and the audit log.

Only PostgreSQL needs the columns widened (SQLite does not enforce lengths). Rows written
before this revision keep their clear numbers until the service, which has the keys,
re-seals them at start (``service_layer/privacy.py``), before it serves.

Revision ID: warning_0002
Revises: 0001_warning
Create Date: 2026-11-30 17:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "warning_0002"
down_revision: str | None = "0001_warning"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (table, column, nullable) of every phone number column.
SEALED = (
    ("recipients", "phone_number", False),
    ("guardians", "phone_number", False),
    ("warnings", "phone_number", False),
    ("warning_dedup", "phone_number", False),
    ("deliveries", "phone_number", True),
    ("tasks", "phone_number", False),
    ("contact_pairs", "number_a", False),
    ("contact_pairs", "number_b", False),
    ("followed_numbers", "phone_number", False),
    ("fanouts", "progress", True),
    ("fanout_targets", "phone_number", False),
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, column, nullable in SEALED:
            op.alter_column(
                table,
                column,
                type_=sa.String(length=64),
                existing_type=sa.String(length=20),
                existing_nullable=nullable,
            )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=160), nullable=False),
        sa.Column("record", sa.String(length=160), nullable=False),
        sa.Column("fields", sa.String(length=200), nullable=False),
        sa.Column("purpose", sa.String(length=200), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_events_record", "audit_events", ["record", "id"], unique=False)
    op.create_index("ix_audit_events_actor", "audit_events", ["actor", "id"], unique=False)


def downgrade() -> None:
    raise NotImplementedError("forward only")
