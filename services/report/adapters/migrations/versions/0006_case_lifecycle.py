"""Case lifecycle: a case's status, officer and history; what each bank holds and until when,
and the victim's transaction references per payee.

Existing cases start FILED with no history; their next read of the orders moves them on.

Revision ID: report_0005_case_lifecycle
Revises: (see down_revision)
Create Date: 2026-11-30 20:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "report_0005_case_lifecycle"
down_revision: str | None = "report_0005_trace_context"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("status", sa.SmallInteger(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("officer", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("update_time", _TIME, nullable=True))
    op.create_index("ix_cases_status_time", "cases", ["status", "create_time"], unique=False)
    with op.batch_alter_table("case_payees") as batch:
        batch.add_column(sa.Column("held_currency", sa.String(length=3), nullable=True))
        batch.add_column(sa.Column("held_units", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("held_nanos", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("hold_expire_time", _TIME, nullable=True))
        batch.add_column(sa.Column("transaction_references", sa.JSON(), nullable=True))
    op.create_table(
        "case_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("type", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("create_time", _TIME, nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_case_events_case", "case_events", ["case_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_case_events_case", table_name="case_events")
    op.drop_table("case_events")
    with op.batch_alter_table("case_payees") as batch:
        for column in (
            "transaction_references",
            "hold_expire_time",
            "held_nanos",
            "held_units",
            "held_currency",
        ):
            batch.drop_column(column)
    op.drop_index("ix_cases_status_time", table_name="cases")
    with op.batch_alter_table("cases") as batch:
        for column in ("update_time", "officer", "status"):
            batch.drop_column(column)
