"""Changes keep the trace they were made in (W3C traceparent), passed on to feed followers.

Revision ID: risk_0004_trace_context
Revises: risk_0002_retention
Create Date: 2026-11-30 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "risk_0004_trace_context"
down_revision: str | None = "risk_0002_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("changes") as batch:
        batch.add_column(sa.Column("trace_context", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("changes") as batch:
        batch.drop_column("trace_context")
