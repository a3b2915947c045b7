"""Full-text search over titles and abstracts: a weighted tsvector column with a GIN index on
PostgreSQL, an external-content FTS5 table kept in step by triggers on SQLite.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SQLITE_UP = (
    "CREATE VIRTUAL TABLE papers_fts USING fts5(title, abstract, content='papers', "
    "content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER papers_fts_insert AFTER INSERT ON papers BEGIN "
    "INSERT INTO papers_fts(rowid, title, abstract) VALUES (new.id, new.title, new.abstract); "
    "END",
    "CREATE TRIGGER papers_fts_delete AFTER DELETE ON papers BEGIN "
    "INSERT INTO papers_fts(papers_fts, rowid, title, abstract) "
    "VALUES ('delete', old.id, old.title, old.abstract); END",
    "CREATE TRIGGER papers_fts_update AFTER UPDATE OF title, abstract ON papers BEGIN "
    "INSERT INTO papers_fts(papers_fts, rowid, title, abstract) "
    "VALUES ('delete', old.id, old.title, old.abstract); "
    "INSERT INTO papers_fts(rowid, title, abstract) VALUES (new.id, new.title, new.abstract); "
    "END",
    "INSERT INTO papers_fts(papers_fts) VALUES ('rebuild')",
)
POSTGRESQL_UP = (
    "ALTER TABLE papers ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
    "setweight(to_tsvector('english'::regconfig, title), 'A') || "
    "setweight(to_tsvector('english'::regconfig, abstract), 'B')) STORED",
    "CREATE INDEX ix_papers_search_vector ON papers USING gin (search_vector)",
)


def upgrade() -> None:
    for statement in SQLITE_UP if op.get_bind().dialect.name == "sqlite" else POSTGRESQL_UP:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER papers_fts_{trigger}")
        op.execute("DROP TABLE papers_fts")
    else:
        op.execute("DROP INDEX ix_papers_search_vector")
        op.execute("ALTER TABLE papers DROP COLUMN search_vector")
