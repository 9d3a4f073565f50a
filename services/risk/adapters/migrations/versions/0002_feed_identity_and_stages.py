"""the change feed's identity (one random id per database, carried in every cursor), and the
stages of a verdict as its assertions lapse (read time never lets a lapsed assertion decide)

Revision ID: 6c1f0e9a2b7d
Revises: afb7de42b528
Create Date: 2026-11-30 17:10:00
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6c1f0e9a2b7d"
down_revision: str | None = "afb7de42b528"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    feed = op.create_table(
        "feed",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("feed_id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(feed, [{"id": 1, "feed_id": uuid.uuid4().hex[:16]}])
    for table in ("indicators", "changes"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("stages", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    for table in ("indicators", "changes"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("stages")
    op.drop_table("feed")
