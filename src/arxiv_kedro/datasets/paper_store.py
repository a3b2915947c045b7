"""`PaperStoreDataset`: hands nodes the relational store client, migrated and ready."""

from __future__ import annotations

from typing import Any, NoReturn

from kedro.io import AbstractDataset, DatasetError

from arxiv_kedro.stores import masked
from arxiv_kedro.stores.relational import PaperStore


class PaperStoreDataset(AbstractDataset[None, PaperStore]):
    """Loads a `PaperStore` (SQLite or PostgreSQL through SQLAlchemy); the schema is migrated
    to the latest Alembic revision on first load. Writes go through the store's methods, so the
    dataset itself cannot be saved.

    Example catalog entry::

        paper_store:
          type: arxiv_kedro.datasets.PaperStoreDataset
          url: ${env:DATABASE_URL,sqlite:///data/03_primary/arxiv.db}
    """

    def __init__(self, url: str, metadata: dict[str, Any] | None = None):
        self.url = url
        self.metadata = metadata
        self._store: PaperStore | None = None

    def load(self) -> PaperStore:
        if self._store is None:  # one engine (and connection pool) per process
            self._store = PaperStore.open(self.url)
        return self._store

    def save(self, data: None) -> NoReturn:
        raise DatasetError("PaperStoreDataset is read-only: nodes write through PaperStore")

    def _describe(self) -> dict[str, Any]:
        return {"url": masked(self.url)}
