"""The region an officer's key serves (GB/T 2260), set by the administrator who issues it.

Revision ID: gateway_0003_key_regions
Revises: gateway_0002_retention
Create Date: 2026-12-01 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "gateway_0003_key_regions"
down_revision: str | None = "gateway_0002_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("region", sa.String(length=6), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("region")
