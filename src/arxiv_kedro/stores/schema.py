"""Tables of the relational system of record. Alembic migrations create them; keep both in step."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass timezone-aware UTC datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

papers = Table(
    "papers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("arxiv_id", String(64), nullable=False, unique=True),
    Column("version", Integer, nullable=False),
    Column("title", Text, nullable=False),
    Column("abstract", Text, nullable=False),
    Column("primary_category", String(64), nullable=False, index=True),
    Column("published", UTCDateTime, nullable=False, index=True),
    Column("updated", UTCDateTime, nullable=False),
    Column("doi", Text),
    Column("journal_ref", Text),
    Column("comments", Text),
    Column("abs_url", Text, nullable=False),
    Column("pdf_url", Text, nullable=False),
    Column("source", String(16), nullable=False),
    Column("content_hash", String(32), nullable=False),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("last_changed_at", UTCDateTime, nullable=False),
)

# Full-text search lives outside the metadata (migration 0003): a generated tsvector column on
# PostgreSQL, an FTS5 table with its shadow tables on SQLite. Schema comparisons skip them.
SEARCH_OBJECTS = ("search_vector", "ix_papers_search_vector", "papers_fts")


def include_object(_object: Any, name: str | None, *_: Any) -> bool:
    """Alembic's filter: everything but the full-text search objects."""
    return not (name and name.startswith(SEARCH_OBJECTS))


# An author's id is a 64-bit hash of the name (`stores.relational.author_id`), so linking a
# batch of papers to its authors needs no lookup round trip.
authors = Table(
    "authors",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("name", String(300), nullable=False),
)

# The link tables carry no foreign keys: PostgreSQL checks them row by row, which cost 2/3 of
# the backfill's database time. `PaperStore` writes links only in the transaction that writes
# their papers and authors, and the tests check that no link is orphaned.
paper_authors = Table(
    "paper_authors",
    metadata,
    Column("paper_id", Integer, primary_key=True, autoincrement=False),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("author_id", BigInteger, nullable=False, index=True),
)

paper_categories = Table(
    "paper_categories",
    metadata,
    Column("paper_id", Integer, primary_key=True, autoincrement=False),
    Column("category", String(64), primary_key=True),
    Column("is_primary", Boolean, nullable=False),
    Index("ix_paper_categories_category", "category"),
)

ingestion_runs = Table(
    "ingestion_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source", String(16), nullable=False),
    Column("detail", Text, nullable=False),  # the windows queried, or the snapshot file read
    Column("window_start", UTCDateTime),
    Column("window_end", UTCDateTime),
    Column("status", String(16), nullable=False),  # running | succeeded | failed | interrupted
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("duration_seconds", Float),
    Column("fetched", Integer, nullable=False, default=0),
    Column("new", Integer, nullable=False, default=0),
    Column("updated", Integer, nullable=False, default=0),
    Column("unchanged", Integer, nullable=False, default=0),
    Column("filtered", Integer, nullable=False, default=0),
    Column("quarantined", Integer, nullable=False, default=0),
    Column("error", Text),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("fingerprint", String(32), nullable=False, unique=True),
    Column("source", String(16), nullable=False),
    Column("record_key", Text),
    Column("reason", Text, nullable=False),
    Column("raw", JSON, nullable=False),
    Column("run_id", ForeignKey("ingestion_runs.id", ondelete="SET NULL")),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("times_seen", Integer, nullable=False),
)

watermarks = Table(
    "watermarks",
    metadata,
    Column("source", String(16), primary_key=True),
    Column("category", String(64), primary_key=True),
    Column("through", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# The classifier's answer for each paper, one row per (paper, registered model name): a new
# champion version or a changed paper (content_hash) makes the row pending again.
predictions = Table(
    "predictions",
    metadata,
    Column("paper_id", Integer, primary_key=True, autoincrement=False),
    Column("model_name", String(128), primary_key=True),
    Column("model_version", String(32), nullable=False),
    Column("content_hash", String(32), nullable=False),
    Column("label", String(64), nullable=False, index=True),
    Column("probability", Float, nullable=False),
    Column("label_2", String(64), nullable=False),
    Column("probability_2", Float, nullable=False),
    Column("label_3", String(64), nullable=False),
    Column("probability_3", Float, nullable=False),
    Column("predicted_at", UTCDateTime, nullable=False),
)

# One row per monitoring run (pipelines/monitoring): the time series of live quality and drift.
# The full report is a document (`reports`) and an HTML/JSON file per run.
monitoring_runs = Table(
    "monitoring_runs",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("run_at", UTCDateTime, nullable=False, index=True),
    Column("model_version", String(32)),
    Column("current_from", UTCDateTime, nullable=False),
    Column("current_to", UTCDateTime, nullable=False),
    Column("current_papers", Integer, nullable=False),
    Column("reference_from", UTCDateTime, nullable=False),
    Column("reference_to", UTCDateTime, nullable=False),
    Column("reference_papers", Integer, nullable=False),
    Column("accuracy", Float),
    Column("macro_f1", Float),
    Column("champion_macro_f1", Float),
    Column("drift_detected", Boolean, nullable=False),
    Column("drift_share", Float, nullable=False),
    Column("text_drift", Boolean, nullable=False),
    Column("feed_alarms", Integer, nullable=False),
    Column("checks_failed", Integer, nullable=False),
    Column("retrain_recommended", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
)

# Each API key's user (a hash of the key, never the key) tags papers; no foreign key, as for the
# link tables: a paper is never deleted, and `Library` tags only papers it found.
library_tags = Table(
    "library_tags",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("tag", String(64), primary_key=True),
    Column("paper_id", Integer, primary_key=True, autoincrement=False),
    Column("tagged_at", UTCDateTime, nullable=False),
)
