"""The risk service's tables (SQLAlchemy Core)."""

from __future__ import annotations

import sqlalchemy as sa

from services.common.idempotency import idempotency_table

metadata = sa.MetaData()
_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_TS = sa.DateTime(timezone=True)

#: One row per listed value: the current verdict snapshot, as the index holds it.
indicators = sa.Table(
    "indicators",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("kind", sa.SmallInteger, nullable=False),
    sa.Column("value", sa.String(2100), nullable=False),
    sa.Column("level", sa.SmallInteger, nullable=False),
    sa.Column("categories", sa.Integer, nullable=False),
    sa.Column("flags", sa.Integer, nullable=False),
    sa.Column("reporters", sa.Integer, nullable=False),
    sa.Column("first_seen", sa.BigInteger, nullable=False),
    sa.Column("last_seen", sa.BigInteger, nullable=False),
    sa.Column("expire", sa.BigInteger, nullable=False),
    sa.Column("verified", sa.Boolean, nullable=False),
    sa.Column("label", sa.String(200), nullable=False),
    sa.Column("update_time", _TS, nullable=False),
    # The verdict's later stages as its assertions lapse (model.stages_text), "" when none.
    sa.Column("stages", sa.Text, nullable=False, server_default=""),
    sa.UniqueConstraint("kind", "value", name="uq_indicators_kind_value"),
    sa.Index("ix_indicators_level", "level"),
)

#: What each source asserts about an indicator.
assertions = sa.Table(
    "assertions",
    metadata,
    sa.Column("indicator_id", _ID, sa.ForeignKey("indicators.id"), primary_key=True),
    sa.Column("source_type", sa.SmallInteger, primary_key=True),
    sa.Column("source_id", sa.String(128), primary_key=True),
    sa.Column("level", sa.SmallInteger, nullable=False),
    sa.Column("categories", sa.Integer, nullable=False),
    sa.Column("reason", sa.String(1000), nullable=False),
    sa.Column("reporter_count", sa.Integer, nullable=False),
    sa.Column("label", sa.String(200), nullable=False),
    sa.Column("expire_time", _TS, nullable=False),
    sa.Column("create_time", _TS, nullable=False),
    sa.Column("update_time", _TS, nullable=False),
    sa.Column("lapsed", sa.Boolean, nullable=False),
    sa.Index("ix_assertions_due", "lapsed", "expire_time"),
)

#: Distinct reporters who saw a value used for fraud (a reporter counts once).
sightings = sa.Table(
    "sightings",
    metadata,
    sa.Column("indicator_id", _ID, sa.ForeignKey("indicators.id"), primary_key=True),
    sa.Column("source_type", sa.SmallInteger, primary_key=True),
    sa.Column("reporter_ref", sa.String(128), primary_key=True),
    sa.Column("category", sa.SmallInteger, nullable=False),
    sa.Column("time", _TS, nullable=False),
)

#: The change feed: every change with the verdict after it. The id is the cursor;
#: ids are assigned under a lock so they become visible in order.
changes = sa.Table(
    "changes",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("kind", sa.SmallInteger, nullable=False),
    sa.Column("value", sa.String(2100), nullable=False),
    sa.Column("change_type", sa.SmallInteger, nullable=False),
    sa.Column("source_type", sa.SmallInteger, nullable=False),
    sa.Column("source_id", sa.String(128), nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("reason", sa.String(1000), nullable=False),
    sa.Column("time", _TS, nullable=False),
    sa.Column("level", sa.SmallInteger, nullable=False),
    sa.Column("categories", sa.Integer, nullable=False),
    sa.Column("flags", sa.Integer, nullable=False),
    sa.Column("reporters", sa.Integer, nullable=False),
    sa.Column("first_seen", sa.BigInteger, nullable=False),
    sa.Column("last_seen", sa.BigInteger, nullable=False),
    sa.Column("expire", sa.BigInteger, nullable=False),
    sa.Column("verified", sa.Boolean, nullable=False),
    sa.Column("label", sa.String(200), nullable=False),
    sa.Column("stages", sa.Text, nullable=False, server_default=""),
    # The trace the change was made in (a W3C traceparent), passed on to feed followers.
    sa.Column("trace_context", sa.String(64)),
    sa.Index("ix_changes_kind_value", "kind", "value"),
)

#: The feed's identity: one random id per database, made when the schema is, carried in every
#: cursor so that a cursor from another database is refused rather than misread.
feed = sa.Table(
    "feed",
    metadata,
    sa.Column("id", sa.SmallInteger, primary_key=True),
    sa.Column("feed_id", sa.String(32), nullable=False),
)

idempotency_keys = idempotency_table(metadata)
