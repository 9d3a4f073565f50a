"""Payee decisions: each pre-payment decision given to a bank and the bank's outcome, and
citizens' consent to their contacts counting in those decisions.

Revision ID: identity_0004_payee_decisions
Revises: (see down_revision)
Create Date: 2026-11-30 20:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "identity_0004_payee_decisions"
down_revision: str | None = "identity_0004_trace_context"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payee_check_consents",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("consent", sa.Boolean(), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_table(
        "payee_decisions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("bank", sa.String(length=128), nullable=False),
        sa.Column("action", sa.SmallInteger(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.SmallInteger(), nullable=True),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledge_time", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_payee_decisions_time", "payee_decisions", ["create_time"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_payee_decisions_time", table_name="payee_decisions")
    op.drop_table("payee_decisions")
    op.drop_table("payee_check_consents")
