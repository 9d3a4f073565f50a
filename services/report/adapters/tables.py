"""The report service's tables (SQLAlchemy Core); made by the migrations in migrations/."""

from __future__ import annotations

import sqlalchemy as sa

from services.common.audit import audit_table
from services.common.idempotency import idempotency_table
from services.common.outbox import outbox_table

metadata = sa.MetaData()

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_TIME = sa.DateTime(timezone=True)

# One row per reporter: locked while a report is accepted (so the rate limit and
# duplicate check hold with replicas) and carrying the review counts its weight uses.
reporters = sa.Table(
    "reporters",
    metadata,
    sa.Column("reporter", sa.String(128), primary_key=True),
    sa.Column("anonymous", sa.Boolean, nullable=False),
    sa.Column("confirmed_count", sa.Integer, nullable=False),
    sa.Column("rejected_count", sa.Integer, nullable=False),
    sa.Column("create_time", _TIME, nullable=False),
)

reports = sa.Table(
    "reports",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("reporter", sa.String(128), nullable=False),
    sa.Column("anonymous", sa.Boolean, nullable=False),
    sa.Column("kind", sa.SmallInteger, nullable=False),
    sa.Column("status", sa.SmallInteger, nullable=False),
    sa.Column("category", sa.SmallInteger, nullable=False),
    # Identifiers masked (services.common.redaction.mask_identifiers): what is shown.
    sa.Column("description", sa.Text, nullable=False),
    # The SMS text masked likewise; attachments are hashes.
    sa.Column("evidence", sa.JSON, nullable=False),
    # The description and SMS text as typed, sealed (AES-GCM, services.common.vault) for
    # analysts' audited reveals and the reporter's export; NULL once erased, or for rows
    # of an older version not yet sealed by the background re-seal.
    sa.Column("original_sealed", sa.LargeBinary, nullable=True),
    sa.Column("key_id", sa.String(32), nullable=True),
    sa.Column("incident_time", _TIME, nullable=True),
    sa.Column("duplicate_of", sa.String(32), nullable=True),
    sa.Column("case_id", sa.String(32), nullable=True),
    sa.Column("create_time", _TIME, nullable=False),
    sa.Column("update_time", _TIME, nullable=False),
    sa.Index("ix_reports_reporter_time", "reporter", "create_time"),
    sa.Index("ix_reports_time", "create_time", "id"),
    sa.Index("ix_reports_status_time", "status", "create_time"),
    sa.Index("ix_reports_key_id", "key_id"),
)

# One row per normalised (kind, value) ever reported: its corroboration standing and
# the state of its assertion at the risk service. ``key`` is a hash of kind and value,
# because canonical URLs can be longer than an index entry may be.
indicators = sa.Table(
    "indicators",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(64), nullable=False, unique=True),
    sa.Column("kind", sa.SmallInteger, nullable=False),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("standing", sa.SmallInteger, nullable=False),
    sa.Column("reporter_count", sa.Integer, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("categories", sa.JSON, nullable=False),
    # Reports before this time no longer count (an analyst rejected the indicator then).
    sa.Column("reset_time", _TIME, nullable=True),
    # Bumped on every change of what we assert; the relay sends the newest version once.
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("synced_version", sa.Integer, nullable=False),
    # One relay at a time talks to the risk service about one indicator, so an older
    # assertion can never land after a newer one.
    sa.Column("sync_lease_until", _TIME, nullable=True),
    sa.Column("update_time", _TIME, nullable=False),
    sa.Index("ix_indicators_standing", "standing"),
)

report_indicators = sa.Table(
    "report_indicators",
    metadata,
    sa.Column("report_id", sa.String(32), sa.ForeignKey("reports.id"), primary_key=True),
    sa.Column("position", sa.SmallInteger, primary_key=True),
    sa.Column("indicator_id", _ID, sa.ForeignKey("indicators.id"), nullable=False),
    # Copied from the report (never change) so corroboration reads one index range.
    sa.Column("reporter", sa.String(128), nullable=False),
    sa.Column("create_time", _TIME, nullable=False),
    sa.Index("ix_report_indicators_indicator_time", "indicator_id", "create_time"),
    sa.Index("ix_report_indicators_reporter", "reporter", "indicator_id", "create_time"),
)

reviews = sa.Table(
    "reviews",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("report_id", sa.String(32), sa.ForeignKey("reports.id"), nullable=False),
    sa.Column("decision", sa.SmallInteger, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("reviewer", sa.String(128), nullable=False),
    sa.Column("create_time", _TIME, nullable=False),
    sa.Index("ix_reviews_report", "report_id", "id"),
)

cases = sa.Table(
    "cases",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("filer", sa.String(128), nullable=False),
    # Masked, and sealed as typed, as reports.description.
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("original_sealed", sa.LargeBinary, nullable=True),
    sa.Column("key_id", sa.String(32), nullable=True),
    sa.Column("category", sa.SmallInteger, nullable=False),
    sa.Column("amount_currency", sa.String(3), nullable=False),
    sa.Column("amount_units", sa.BigInteger, nullable=False),
    sa.Column("amount_nanos", sa.Integer, nullable=False),
    sa.Column("incident_time", _TIME, nullable=False),
    sa.Column("suspects", sa.JSON, nullable=False),
    sa.Column("report_id", sa.String(32), nullable=True),
    sa.Column("create_time", _TIME, nullable=False),
    # The lifecycle (services.report.domain.case_lifecycle): stored for the case board's
    # filters, moved with every order answer and officer act.
    sa.Column("status", sa.SmallInteger, nullable=False, server_default="1"),
    sa.Column("officer", sa.String(128), nullable=True),
    sa.Column("update_time", _TIME, nullable=True),
    sa.Index("ix_cases_filer_time", "filer", "create_time"),
    sa.Index("ix_cases_status_time", "status", "create_time"),
    sa.Index("ix_cases_time", "create_time", "id"),
    sa.Index("ix_cases_key_id", "key_id"),
)

case_payees = sa.Table(
    "case_payees",
    metadata,
    sa.Column("case_id", sa.String(32), sa.ForeignKey("cases.id"), primary_key=True),
    sa.Column("position", sa.SmallInteger, primary_key=True),
    sa.Column("kind", sa.SmallInteger, nullable=False),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("amount_currency", sa.String(3), nullable=True),
    sa.Column("amount_units", sa.BigInteger, nullable=True),
    sa.Column("amount_nanos", sa.Integer, nullable=True),
    sa.Column("bank_order", sa.String(200), nullable=False),
    sa.Column("status", sa.SmallInteger, nullable=False),
    sa.Column("status_time", _TIME, nullable=True),
    sa.Column("status_detail", sa.String(500), nullable=False),
    # What the bank holds once it acknowledged, and until when.
    sa.Column("held_currency", sa.String(3), nullable=True),
    sa.Column("held_units", sa.BigInteger, nullable=True),
    sa.Column("held_nanos", sa.Integer, nullable=True),
    sa.Column("hold_expire_time", _TIME, nullable=True),
    sa.Column("transaction_references", sa.JSON, nullable=True),
)

# A case's history: filing, status changes, assignment, officers' replies, closing. The
# victim reads it; reply texts are masked as descriptions are.
case_events = sa.Table(
    "case_events",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.String(32), sa.ForeignKey("cases.id"), nullable=False),
    sa.Column("type", sa.SmallInteger, nullable=False),
    sa.Column("status", sa.SmallInteger, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("create_time", _TIME, nullable=False),
    sa.Index("ix_case_events_case", "case_id", "id"),
)

# --- fraud knowledge (services/report/knowledge): its own tables, prefixed knowledge_ ---------

knowledge_articles = sa.Table(
    "knowledge_articles",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.SmallInteger, nullable=False),
    sa.Column("state", sa.SmallInteger, nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("categories", sa.JSON, nullable=False),
    # A GB/T 2260 code; empty for the whole country.
    sa.Column("region", sa.String(6), nullable=False),
    # Title, summary and body normalised (NFKC, case folded): search confirms its terms here.
    sa.Column("search_text", sa.Text, nullable=False),
    sa.Column("source_case", sa.String(32), nullable=True),
    sa.Column("author", sa.String(128), nullable=False),
    sa.Column("create_time", _TIME, nullable=False),
    sa.Column("update_time", _TIME, nullable=False),
    sa.Column("publish_time", _TIME, nullable=True),
    # Lists are newest first: the publish time once published, else the create time.
    sa.Column("sort_time", _TIME, nullable=False),
    sa.Index("ix_knowledge_articles_state_sort", "state", "sort_time", "id"),
)

# One row per (category, article), so a list by category reads an index range.
knowledge_article_categories = sa.Table(
    "knowledge_article_categories",
    metadata,
    sa.Column(
        "article_id", sa.String(32), sa.ForeignKey("knowledge_articles.id"), primary_key=True
    ),
    sa.Column("category", sa.SmallInteger, primary_key=True),
    sa.Index("ix_knowledge_article_categories_category", "category", "article_id"),
)

# The search index: every distinct bigram of an article's text (see knowledge/domain/ngrams.py).
knowledge_article_grams = sa.Table(
    "knowledge_article_grams",
    metadata,
    sa.Column("gram", sa.String(4), primary_key=True),
    sa.Column(
        "article_id", sa.String(32), sa.ForeignKey("knowledge_articles.id"), primary_key=True
    ),
    sa.Index("ix_knowledge_article_grams_article", "article_id"),
)

knowledge_notices = sa.Table(
    "knowledge_notices",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("issuer", sa.String(100), nullable=False),
    sa.Column("region", sa.String(6), nullable=False),
    sa.Column("start_time", _TIME, nullable=False),
    sa.Column("end_time", _TIME, nullable=False),
    sa.Column("author", sa.String(128), nullable=False),
    sa.Column("create_time", _TIME, nullable=False),
    sa.Index("ix_knowledge_notices_region_end", "region", "end_time"),
)

# Outbound warning calls announced before they are made. The callee is kept as the user id
# it belongs to (NULL when the number is not registered) and masked; never as a number.
knowledge_announced_calls = sa.Table(
    "knowledge_announced_calls",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("caller_number", sa.String(32), nullable=False),
    sa.Column("callee_user_id", sa.String(100), nullable=True),
    sa.Column("masked_callee", sa.String(32), nullable=False),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("station_name", sa.String(100), nullable=False),
    sa.Column("announcer", sa.String(128), nullable=False),
    sa.Column("create_time", _TIME, nullable=False),
    sa.Column("expire_time", _TIME, nullable=False),
    sa.Index(
        "ix_knowledge_announced_calls_lookup", "callee_user_id", "caller_number", "expire_time"
    ),
)

outbox = outbox_table(metadata)
idempotency = idempotency_table(metadata)
audit_events = audit_table(metadata)
