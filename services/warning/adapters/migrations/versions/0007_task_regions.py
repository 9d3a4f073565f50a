"""Regions (GB/T 2260) on users' warning profiles and on call and home-visit tasks: an
officer whose key serves a region works that region's tasks.

Revision ID: warning_0007_task_regions
Revises: warning_0004_bank_holds
Create Date: 2026-12-01 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "warning_0007_task_regions"
down_revision: str | None = "warning_0004_bank_holds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("recipients", "tasks"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("region", sa.String(length=6), nullable=True))


def downgrade() -> None:
    for table in ("recipients", "tasks"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("region")
