"""The relational system of record (SQLite or PostgreSQL through SQLAlchemy), by concern: `engine`
(connections, migrations, bulk statements), `ingestion` (paper batches, runs, quarantine,
watermarks), `ml` (what the training, inference and summarization pipelines read and write) and
`read_model` (the REST API's reads and full-text search)."""
