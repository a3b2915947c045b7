"""`DocumentStoreDataset`: hands nodes the document store (MongoDB, or embedded SQLite JSON)."""

from __future__ import annotations

from typing import Any, NoReturn

from kedro.io import AbstractDataset, DatasetError

from arxiv_kedro.stores import masked
from arxiv_kedro.stores.documents import DocumentStore, open_document_store


class DocumentStoreDataset(AbstractDataset[None, DocumentStore]):
    """Loads a `DocumentStore`: MongoDB for a ``mongodb://`` URL (collections in `database`),
    otherwise the embedded JSON table at that SQLAlchemy URL. Unique indexes are ensured on
    load. Writes go through the store's methods, so the dataset cannot be saved.

    Example catalog entries::

        document_store:                      # conf/base
          type: arxiv_kedro.datasets.DocumentStoreDataset
          url: sqlite:///data/03_primary/documents.db

        document_store:                      # conf/prod
          type: arxiv_kedro.datasets.DocumentStoreDataset
          url: ${env:MONGO_URI,mongodb://mongo:27017}
          database: ${env:MONGO_DB,arxiv}
    """

    def __init__(self, url: str, database: str = "arxiv", metadata: dict[str, Any] | None = None):
        self.url = url
        self.database = database
        self.metadata = metadata
        self._store: DocumentStore | None = None

    def load(self) -> DocumentStore:
        if self._store is None:  # one client (and connection pool) per process
            self._store = open_document_store(self.url, self.database)
        return self._store

    def save(self, data: None) -> NoReturn:
        raise DatasetError("DocumentStoreDataset is read-only: nodes write through DocumentStore")

    def _describe(self) -> dict[str, Any]:
        return {"url": masked(self.url), "database": self.database}
