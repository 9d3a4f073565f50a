"""Idempotency keys indexed by age, for the retention job that forgets them after a window.

Revision ID: report_0003_retention
Revises: report_0003
Create Date: 2026-11-30 17:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "report_0003_retention"
down_revision: str | None = "report_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_idempotency_keys_create_time", "idempotency_keys", ["create_time"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_create_time", table_name="idempotency_keys")
