"""Traces and service-level indicators: outbox events and fan-outs keep their trace; fan-outs
when the number became high risk and when their first warning was delivered; bank orders
when their case was filed.

Revision ID: warning_0004_observability
Revises: warning_0002_retention
Create Date: 2026-11-30 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "warning_0004_observability"
down_revision: str | None = "warning_0002_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("trace_context", sa.String(64), nullable=True))

    with op.batch_alter_table("fanouts") as batch:
        batch.add_column(sa.Column("high_time", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("first_delivery_time", sa.DateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("trace_context", sa.String(64), nullable=True))

    with op.batch_alter_table("bank_orders") as batch:
        batch.add_column(sa.Column("case_file_time", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bank_orders") as batch:
        batch.drop_column("case_file_time")

    with op.batch_alter_table("fanouts") as batch:
        batch.drop_column("trace_context")
        batch.drop_column("first_delivery_time")
        batch.drop_column("high_time")

    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("trace_context")
