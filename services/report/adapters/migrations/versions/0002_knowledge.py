"""Fraud knowledge: articles with their categories and bigram index, notices, announced calls.

Revision ID: report_0002
Revises: report_0001
Create Date: 2026-11-23 19:18:48
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "report_0002"
down_revision: str | None = "report_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "knowledge_announced_calls",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("caller_number", sa.String(length=32), nullable=False),
        sa.Column("callee_user_id", sa.String(length=100), nullable=True),
        sa.Column("masked_callee", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("station_name", sa.String(length=100), nullable=False),
        sa.Column("announcer", sa.String(length=128), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expire_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_knowledge_announced_calls_lookup",
        "knowledge_announced_calls",
        ["callee_user_id", "caller_number", "expire_time"],
        unique=False,
    )
    op.create_table(
        "knowledge_articles",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("state", sa.SmallInteger(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("region", sa.String(length=6), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("source_case", sa.String(length=32), nullable=True),
        sa.Column("author", sa.String(length=128), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("publish_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sort_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_knowledge_articles_state_sort",
        "knowledge_articles",
        ["state", "sort_time", "id"],
        unique=False,
    )
    op.create_table(
        "knowledge_notices",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("issuer", sa.String(length=100), nullable=False),
        sa.Column("region", sa.String(length=6), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("author", sa.String(length=128), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_knowledge_notices_region_end",
        "knowledge_notices",
        ["region", "end_time"],
        unique=False,
    )
    op.create_table(
        "knowledge_article_categories",
        sa.Column("article_id", sa.String(length=32), nullable=False),
        sa.Column("category", sa.SmallInteger(), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["knowledge_articles.id"]),
        sa.PrimaryKeyConstraint("article_id", "category"),
    )
    op.create_index(
        "ix_knowledge_article_categories_category",
        "knowledge_article_categories",
        ["category", "article_id"],
        unique=False,
    )
    op.create_table(
        "knowledge_article_grams",
        sa.Column("gram", sa.String(length=4), nullable=False),
        sa.Column("article_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["knowledge_articles.id"]),
        sa.PrimaryKeyConstraint("gram", "article_id"),
    )
    op.create_index(
        "ix_knowledge_article_grams_article",
        "knowledge_article_grams",
        ["article_id"],
        unique=False,
    )


def downgrade() -> None:
    raise NotImplementedError("forward only")
