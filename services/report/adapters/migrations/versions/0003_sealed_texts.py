"""Free text sealed: reports' and cases' texts as typed go sealed into ``original_sealed``
(the shown columns keep them masked); the audit log of reveals, exports and erasures.

Rows written before this revision still hold their texts in clear: the service's
background re-seal (``service_layer/privacy.py``) seals and masks them after start,
since sealing needs the service's keys, which migrations do not have.

Revision ID: report_0003
Revises: report_0002
Create Date: 2026-11-30 17:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "report_0003"
down_revision: str | None = "report_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("reports", "cases"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("original_sealed", sa.LargeBinary(), nullable=True))
            batch.add_column(sa.Column("key_id", sa.String(length=32), nullable=True))
    op.create_index("ix_reports_key_id", "reports", ["key_id"], unique=False)
    op.create_index("ix_cases_key_id", "cases", ["key_id"], unique=False)
    op.create_table(
        "audit_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
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
