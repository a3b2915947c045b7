"""The document store: raw source records, LLM outputs and reports — on MongoDB, or embedded on
SQLite as a JSON table. Both backends honour one small contract (tests/stores/test_documents.py).
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, MongoClient, UpdateOne
from pymongo.errors import BulkWriteError, PyMongoError
from sqlalchemy import (
    JSON,
    Column,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    UniqueConstraint,
    and_,
    case,
    cast,
    func,
    select,
)
from sqlalchemy.exc import OperationalError

from arxiv_kedro.stores import StoreError, masked
from arxiv_kedro.stores.relational.engine import make_engine, read_only, upsertable_insert
from arxiv_kedro.stores.schema import UTCDateTime

SCHEMA_VERSION = 1
# Each collection's unique key; a document is identified by these fields.
COLLECTIONS: dict[str, tuple[str, ...]] = {
    "articles": ("arxiv_id", "version"),
    "summaries": ("arxiv_id", "version"),
    "reports": ("report_id",),
    "llm_cache": ("key",),  # paid LLM answers, keyed by what produced them (llm.cache_key)
}
_DUPLICATE_KEY = 11000  # MongoDB's error code


@dataclass
class UpsertCounts:
    new: int = 0
    updated: int = 0
    unchanged: int = 0

    def __iadd__(self, other: UpsertCounts) -> UpsertCounts:
        self.new += other.new
        self.updated += other.updated
        self.unchanged += other.unchanged
        return self


def content_hash(document: dict[str, Any]) -> str:
    blob = json.dumps(document, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()


def _key_of(collection: str, document: dict[str, Any]) -> tuple:
    fields = _check_collection(collection)
    try:
        return tuple(document[field] for field in fields)
    except KeyError as exc:
        raise ValueError(f"{collection} documents need the key field {exc}") from None


class DocumentStore(ABC):
    """Collections of JSON documents with unique keys (see `COLLECTIONS`).

    `upsert_many` writes only what is new or changed: an identical document keeps its
    `updated_at`. Every stored document carries `schema_version`, `content_hash`, `created_at`
    and `updated_at`; the backend's own ids never leak out.
    """

    url: str

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({masked(self.url)!r})"

    def upsert_many(self, collection: str, documents: Sequence[dict[str, Any]]) -> UpsertCounts:
        """Insert new documents and replace changed ones, keyed by the collection's key."""
        unique = {_key_of(collection, d): d for d in documents}  # the last one of a key wins
        known = self._hashes(collection, list(unique))
        counts, writes = UpsertCounts(), []
        now = datetime.now(UTC)
        for key, document in unique.items():
            digest = content_hash(document)
            if key not in known:
                counts.new += 1
            elif known[key] == digest:
                counts.unchanged += 1
                continue
            else:
                counts.updated += 1
            meta = {"schema_version": SCHEMA_VERSION, "content_hash": digest, "updated_at": now}
            writes.append((key, {**document, **meta}, now, key not in known))
        if writes:
            self._write(collection, writes)
        return counts

    @abstractmethod
    def get(self, collection: str, **key: Any) -> dict[str, Any] | None:
        """The document with this key, or None."""

    @abstractmethod
    def get_many(self, collection: str, keys: Sequence[tuple]) -> dict[tuple, dict[str, Any]]:
        """The documents with these keys (tuples of the key fields), by key; absent: left out."""

    @abstractmethod
    def find(self, collection: str, limit: int | None = None, **equal: Any) -> list[dict[str, Any]]:
        """Documents whose top-level fields equal the given values, in key order."""

    @abstractmethod
    def count(self, collection: str) -> int: ...

    @abstractmethod
    def ping(self) -> None:
        """Raise `StoreError` naming the store if it cannot be reached."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def _hashes(self, collection: str, keys: list[tuple]) -> dict[tuple, str]: ...

    @abstractmethod
    def _write(self, collection: str, writes: list[tuple[tuple, dict, datetime, bool]]) -> None:
        """Store (key, document with meta, now, is_new); `created_at` is set on insert only."""


def _check_collection(collection: str) -> tuple[str, ...]:
    if collection not in COLLECTIONS:
        raise ValueError(f"unknown collection {collection!r}: one of {sorted(COLLECTIONS)}")
    return COLLECTIONS[collection]


# --- embedded: one JSON table on SQLite (or any SQLAlchemy database) ---------------------------

_metadata = MetaData()
_documents = Table(
    "documents",
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("collection", String(32), nullable=False),
    Column("doc_key", String(256), nullable=False),  # the key fields, JSON-encoded
    Column("body", JSON, nullable=False),
    Column("content_hash", String(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("collection", "doc_key", name="uq_documents_collection_doc_key"),
)


def _encode_key(key: tuple) -> str:
    return json.dumps(list(key), separators=(",", ":"), default=str)


class SqlDocumentStore(DocumentStore):
    """The embedded default: a real store in one table, created on first use like a collection."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.reads = read_only(self.engine)
        try:
            _metadata.create_all(self.engine, checkfirst=True)
        except OperationalError as exc:
            raise StoreError(f"cannot use the document store at {masked(url)}: {exc.orig}") from exc

    def _hashes(self, collection: str, keys: list[tuple]) -> dict[tuple, str]:
        _check_collection(collection)
        encoded = {_encode_key(k): k for k in keys}
        found: dict[tuple, str] = {}
        with self.reads.connect() as conn:
            names = list(encoded)
            for start in range(0, len(names), 5000):
                query = select(_documents.c.doc_key, _documents.c.content_hash).where(
                    _documents.c.collection == collection,
                    _documents.c.doc_key.in_(names[start : start + 5000]),
                )
                found.update((encoded[k], digest) for k, digest in conn.execute(query))
        return found

    def _write(self, collection: str, writes: list[tuple[tuple, dict, datetime, bool]]) -> None:
        rows = [
            {
                "collection": collection,
                "doc_key": _encode_key(key),
                "body": {
                    k: v for k, v in document.items() if k not in ("created_at", "updated_at")
                },
                "content_hash": document["content_hash"],
                "created_at": now,
                "updated_at": now,
            }
            for key, document, now, _ in writes
        ]
        insert = upsertable_insert(self.engine, _documents)
        with self.engine.begin() as conn:
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["collection", "doc_key"],
                    set_={
                        "body": insert.excluded.body,
                        "content_hash": insert.excluded.content_hash,
                        "updated_at": insert.excluded.updated_at,
                    },
                ),
                rows,
            )

    def _key_order(self, collection: str) -> list[Any]:
        """Sort by the key fields as MongoDB does: numbers by value, before strings, which sort
        bytewise (ordering by the JSON-encoded `doc_key` put version 10 before version 2)."""
        body, order = _documents.c.body, []
        for field in COLLECTIONS[collection]:
            if self.engine.dialect.name == "sqlite":  # json_extract yields SQL ints and texts
                order.append(func.json_extract(body, f'$."{field}"'))
            else:
                text = body[field].as_string()
                number = case((func.json_typeof(body[field]) == "number", cast(text, Numeric)))
                order += [number, text.collate("C")]
        return order

    def _rows(
        self, collection: str, where: Any, limit: int | None, ordered: bool = True
    ) -> list[dict[str, Any]]:
        query = (
            select(_documents.c.body, _documents.c.created_at, _documents.c.updated_at)
            .where(_documents.c.collection == collection, where)
            .order_by(*(self._key_order(collection) if ordered else ()))
            .limit(limit)
        )
        with self.reads.connect() as conn:
            return [
                {**body, "created_at": created, "updated_at": updated}
                for body, created, updated in conn.execute(query)
            ]

    def get(self, collection: str, **key: Any) -> dict[str, Any] | None:
        encoded = _encode_key(tuple(key[field] for field in _check_collection(collection)))
        rows = self._rows(collection, _documents.c.doc_key == encoded, 1)
        return rows[0] if rows else None

    def get_many(self, collection: str, keys: Sequence[tuple]) -> dict[tuple, dict[str, Any]]:
        fields = _check_collection(collection)
        names = sorted({_encode_key(tuple(k)) for k in keys})
        found: dict[tuple, dict[str, Any]] = {}
        for start in range(0, len(names), 5000):
            where = _documents.c.doc_key.in_(names[start : start + 5000])
            for document in self._rows(collection, where, None, ordered=False):
                found[tuple(document[f] for f in fields)] = document
        return found

    def find(self, collection: str, limit: int | None = None, **equal: Any) -> list[dict[str, Any]]:
        _check_collection(collection)
        return self._rows(collection, and_(True, *map(_json_equals, equal.items())), limit)

    def count(self, collection: str) -> int:
        _check_collection(collection)
        query = select(func.count()).where(_documents.c.collection == collection)
        with self.reads.connect() as conn:
            return conn.execute(query).scalar_one()

    def ping(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.execute(select(1))
        except OperationalError as exc:
            raise StoreError(
                f"document store at {masked(self.url)} unavailable: {exc.orig}"
            ) from exc

    def close(self) -> None:
        self.engine.dispose()


def _json_equals(item: tuple[str, Any]) -> Any:
    field, value = item
    element = _documents.c.body[field]
    if isinstance(value, bool):
        return element.as_boolean() == value
    if isinstance(value, int):
        return element.as_integer() == value
    if isinstance(value, float):
        return element.as_float() == value
    return element.as_string() == value


# --- production: MongoDB ----------------------------------------------------------------------


class MongoDocumentStore(DocumentStore):
    """MongoDB through pymongo; unique indexes on each collection's key, bounded timeouts."""

    def __init__(self, url: str, database: str, timeout_seconds: float = 5.0):
        self.url = url
        timeout_ms = int(timeout_seconds * 1000)
        with self._guard("connect"):
            self.client: MongoClient = MongoClient(
                url,
                serverSelectionTimeoutMS=timeout_ms,
                connectTimeoutMS=timeout_ms,
                socketTimeoutMS=max(timeout_ms, 30_000),
                tz_aware=True,
                tzinfo=UTC,
            )
            self.db = self.client[database]
            for collection, key in COLLECTIONS.items():
                self.db[collection].create_index(
                    [(field, ASCENDING) for field in key], unique=True, name="unique_key"
                )

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        try:
            yield
        except PyMongoError as exc:
            raise StoreError(
                f"document store (MongoDB at {masked(self.url)}) failed to {action}: {exc}"
            ) from exc

    def _hashes(self, collection: str, keys: list[tuple]) -> dict[tuple, str]:
        fields = _check_collection(collection)
        wanted = set(keys)
        query = {fields[0]: {"$in": sorted({key[0] for key in keys})}}
        projection = {"_id": 0, "content_hash": 1, **dict.fromkeys(fields, 1)}
        with self._guard("read"):
            found = self.db[collection].find(query, projection)
            hashes = {tuple(doc[f] for f in fields): doc["content_hash"] for doc in found}
        return {key: digest for key, digest in hashes.items() if key in wanted}

    def _write(self, collection: str, writes: list[tuple[tuple, dict, datetime, bool]]) -> None:
        fields = COLLECTIONS[collection]
        # New documents go in with insert_many: far cheaper than upserts on most servers. A
        # concurrent writer's duplicate is skipped by the unique index, and reported otherwise.
        new = [{**document, "created_at": now} for _, document, now, is_new in writes if is_new]
        changed = [
            UpdateOne(
                dict(zip(fields, key, strict=True)),
                {"$set": document, "$setOnInsert": {"created_at": now}},
                upsert=True,
            )
            for key, document, now, is_new in writes
            if not is_new
        ]
        with self._guard("write"):
            if new:
                try:
                    self.db[collection].insert_many(new, ordered=False)
                except BulkWriteError as exc:
                    errors = exc.details.get("writeErrors", [])
                    if any(error.get("code") != _DUPLICATE_KEY for error in errors):
                        raise
            if changed:
                self.db[collection].bulk_write(changed, ordered=False)

    def get(self, collection: str, **key: Any) -> dict[str, Any] | None:
        fields = _check_collection(collection)
        with self._guard("read"):
            document = self.db[collection].find_one({f: key[f] for f in fields}, {"_id": 0})
        return None if document is None else _utc_timestamps(document)

    def get_many(self, collection: str, keys: Sequence[tuple]) -> dict[tuple, dict[str, Any]]:
        fields = _check_collection(collection)
        wanted = {tuple(k) for k in keys}
        query = {fields[0]: {"$in": sorted({key[0] for key in wanted})}}
        with self._guard("read"):
            found = list(self.db[collection].find(query, {"_id": 0}))
        documents = {tuple(doc[f] for f in fields): doc for doc in found}
        return {key: _utc_timestamps(doc) for key, doc in documents.items() if key in wanted}

    def find(self, collection: str, limit: int | None = None, **equal: Any) -> list[dict[str, Any]]:
        fields = _check_collection(collection)
        with self._guard("read"):
            cursor = self.db[collection].find(equal, {"_id": 0})
            found = list(cursor.sort([(f, ASCENDING) for f in fields]).limit(limit or 0))
        return [_utc_timestamps(document) for document in found]

    def count(self, collection: str) -> int:
        _check_collection(collection)
        with self._guard("count"):
            return self.db[collection].count_documents({})

    def ping(self) -> None:
        with self._guard("answer a ping"):
            self.client.admin.command("ping")

    def close(self) -> None:
        self.client.close()


def _utc_timestamps(document: dict[str, Any]) -> dict[str, Any]:
    """`created_at`/`updated_at` as aware UTC datetimes. MongoDB returns them so already; the
    nx-27017 test server stores a datetime set by `$set` on an existing document as naive text."""
    for field in ("created_at", "updated_at"):
        value = document.get(field)
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if isinstance(value, datetime):
            aware = value.tzinfo is not None
            document[field] = value.astimezone(UTC) if aware else value.replace(tzinfo=UTC)
    return document


def open_document_store(url: str, database: str = "arxiv") -> DocumentStore:
    """MongoDB for mongodb:// URLs (collections in `database`), else the embedded SQL store."""
    if url.startswith(("mongodb://", "mongodb+srv://")):
        return MongoDocumentStore(url, database)
    return SqlDocumentStore(url)
