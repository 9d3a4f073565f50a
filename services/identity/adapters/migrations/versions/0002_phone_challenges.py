"""identity: phone challenges (one-time codes sent by the number's carrier), face checks,
"is this <name>?" on verification requests, look-up snapshots (stable paging)

Revision ID: 0002_phone_challenges
Revises: 0001_identity_initial
Create Date: 2026-11-30 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_phone_challenges"
down_revision: str | None = "0001_identity_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "phone_challenges",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("purpose", sa.SmallInteger, nullable=False),
        sa.Column("phone_hmac", sa.String(64), nullable=False),
        sa.Column("masked_phone", sa.String(32), nullable=False),
        sa.Column("carrier_id", sa.String(32), nullable=False),
        sa.Column("authentication_id", sa.String(64), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expire_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("proof_hmac", sa.String(64), nullable=True),
        sa.Column("use_time", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_phone_challenges_phone_hmac", "phone_challenges", ["phone_hmac"])
    op.create_table(
        "face_checks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("result", sa.SmallInteger, nullable=False),
        sa.Column("provider_reference", sa.String(128), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_face_checks_user", "face_checks", ["user_id", "create_time"])
    op.create_table(
        "lookup_snapshots",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("expire_time", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_lookup_snapshots_expire_time", "lookup_snapshots", ["expire_time"])
    op.add_column(
        "verification_requests", sa.Column("expected_name_sealed", sa.LargeBinary, nullable=True)
    )
    op.add_column("verification_requests", sa.Column("name_matches", sa.Boolean, nullable=True))


def downgrade() -> None:
    raise NotImplementedError("forward only")
