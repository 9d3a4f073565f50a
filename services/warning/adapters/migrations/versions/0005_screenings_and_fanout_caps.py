"""Screenings recorded by the warning service (the decision's record, for repeats), and caps
on the call and home-visit tasks of a fan-out with the counts of what it created.

Revision ID: warning_0004_screenings
Revises: (see down_revision)
Create Date: 2026-11-30 20:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "warning_0004_screenings"
down_revision: str | None = "warning_0004_observability"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "screenings",
        sa.Column("carrier", sa.String(64), primary_key=True),
        sa.Column("event_id", sa.String(128), primary_key=True),
        sa.Column("action", sa.SmallInteger, nullable=False),
        sa.Column("level", sa.SmallInteger, nullable=False),
        sa.Column("warning_id", sa.String(36)),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_screenings_create", "screenings", ["create_time"])
    with op.batch_alter_table("fanouts") as batch:
        batch.add_column(sa.Column("call_task_cap", sa.Integer))
        batch.add_column(sa.Column("home_visit_task_cap", sa.Integer))
        batch.add_column(sa.Column("call_tasks", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("home_visit_tasks", sa.Integer, nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("capped", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("fanouts") as batch:
        for column in ("capped", "home_visit_tasks", "call_tasks"):
            batch.drop_column(column)
        batch.drop_column("home_visit_task_cap")
        batch.drop_column("call_task_cap")
    op.drop_index("ix_screenings_create", table_name="screenings")
    op.drop_table("screenings")
