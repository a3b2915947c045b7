"""Datasets over the document store (MongoDB, or the embedded SQLite JSON table): one collection
each — saving upserts documents, loading gives a lookup by key."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from arxiv_kedro.stores import masked
from arxiv_kedro.stores.documents import DocumentStore, open_document_store

_SHARED: dict[tuple[str, str], DocumentStore] = {}
_SHARED_LOCK = threading.Lock()


def shared_document_store(url: str, database: str) -> DocumentStore:
    """One client (and connection pool) per store and process; unique indexes ensured once."""
    with _SHARED_LOCK:
        if (url, database) not in _SHARED:
            _SHARED[url, database] = open_document_store(url, database)
        return _SHARED[url, database]


class DocumentLookup:
    """Reads of one collection by key, for a node that must know what is stored already."""

    def __init__(self, store: DocumentStore, collection: str):
        self.store, self.collection = store, collection

    def get_many(self, keys: Sequence[tuple]) -> dict[tuple, dict[str, Any]]:
        """The stored documents among `keys` (tuples of the collection's key fields)."""
        return self.store.get_many(self.collection, keys)


class DocumentCollectionDataset(AbstractDataset[Sequence[dict[str, Any]], DocumentLookup]):
    """One collection of the document store (`articles`, `summaries`, `llm_cache`, `reports`).

    `save(documents)` upserts them by the collection's key: unchanged documents are not
    rewritten. `load()` returns a `DocumentLookup` (nothing is read until a node asks).

    Example catalog entries::

        summaries:
          type: arxiv_kedro.datasets.DocumentCollectionDataset
          url: ${globals:documents_url}          # mongodb://… or a SQLAlchemy URL
          database: ${globals:documents_database}
          collection: summaries
    """

    def __init__(
        self,
        url: str,
        collection: str,
        database: str = "arxiv",
        metadata: dict[str, Any] | None = None,
    ):
        self.url, self.collection, self.database = url, collection, database
        self.metadata = metadata

    @property
    def store(self) -> DocumentStore:
        return shared_document_store(self.url, self.database)

    def load(self) -> DocumentLookup:
        return DocumentLookup(self.store, self.collection)

    def save(self, documents: Sequence[dict[str, Any]]) -> None:
        self.store.upsert_many(self.collection, documents)

    def _describe(self) -> dict[str, Any]:
        return {"url": masked(self.url), "database": self.database, "collection": self.collection}


class DocumentStoreDataset(AbstractDataset[None, DocumentStore]):
    """Loads the document store client for the REST API (summaries, reports, health). Pipeline
    nodes never take it: they read and write through `DocumentCollectionDataset`.

    Example catalog entry::

        documents:
          type: arxiv_kedro.datasets.DocumentStoreDataset
          url: ${globals:documents_url}
          database: ${globals:documents_database}
    """

    def __init__(self, url: str, database: str = "arxiv", metadata: dict[str, Any] | None = None):
        self.url, self.database, self.metadata = url, database, metadata

    def load(self) -> DocumentStore:
        return shared_document_store(self.url, self.database)

    def save(self, data: None) -> None:
        raise DatasetError("DocumentStoreDataset is read-only")

    def _describe(self) -> dict[str, Any]:
        return {"url": masked(self.url), "database": self.database}
