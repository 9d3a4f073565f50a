"""Bank holds: what a bank holds for an order and until when, the legal instrument and the
victim's transaction references it carries, and the victim told when funds are held.

Revision ID: warning_0004_bank_holds
Revises: (see down_revision)
Create Date: 2026-11-30 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "warning_0004_bank_holds"
down_revision: str | None = "warning_0004_screenings"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    "victim_user_id",
    "legal_instrument_id",
    "transaction_references",
    "hold_expire_time",
    "held_nanos",
    "held_units",
    "held_currency",
)


def upgrade() -> None:
    with op.batch_alter_table("bank_orders") as batch:
        batch.add_column(sa.Column("held_currency", sa.String(length=3), nullable=True))
        batch.add_column(sa.Column("held_units", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("held_nanos", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("hold_expire_time", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("transaction_references", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("legal_instrument_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("victim_user_id", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bank_orders") as batch:
        for column in _COLUMNS:
            batch.drop_column(column)
