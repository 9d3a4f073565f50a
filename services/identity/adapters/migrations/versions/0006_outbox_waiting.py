"""Indexes of the outbox events still waiting, in id order and by topic: the relay's claim
(oldest due first, urgent topics first, a probe of one topic) reads these instead of
walking past every event already delivered (the events to the partners, kept a day). The warning
service's outbox has had them since its migration 0008.

Revision ID: identity_0006_outbox_waiting
Revises: identity_0004_payee_decisions
Create Date: 2026-12-01 14:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "identity_0006_outbox_waiting"
down_revision: str | None = "identity_0004_payee_decisions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WAITING = sa.text("deliver_time IS NULL AND fail_time IS NULL")


def upgrade() -> None:
    for name, columns in (
        ("ix_outbox_waiting", ["id"]),
        ("ix_outbox_waiting_topic", ["topic", "id"]),
    ):
        op.create_index(name, "outbox", columns, postgresql_where=WAITING, sqlite_where=WAITING)


def downgrade() -> None:
    op.drop_index("ix_outbox_waiting_topic", table_name="outbox")
    op.drop_index("ix_outbox_waiting", table_name="outbox")
