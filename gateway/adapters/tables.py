"""The gateway's tables: API keys, stored as hashes."""

from __future__ import annotations

import sqlalchemy as sa

from services.common.idempotency import idempotency_table

metadata = sa.MetaData()

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(16), primary_key=True),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("subject", sa.String(128), nullable=False),
    sa.Column("description", sa.String(200), nullable=False),
    sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoke_time", sa.DateTime(timezone=True), nullable=True),
    # The region an officer's key serves (GB/T 2260); NULL for every region.
    sa.Column("region", sa.String(6), nullable=True),
)

idempotency_keys = idempotency_table(metadata)
