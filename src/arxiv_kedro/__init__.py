"""arxiv-kedro: ingest, store, classify, summarize and serve new arXiv papers."""

__version__ = "0.1.0"
