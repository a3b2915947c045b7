"""The DocumentStore contract on SQLite, PostgreSQL and MongoDB (nx-27017), plus error paths."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from kedro.io import DatasetError

from arxiv_kedro.datasets import DocumentStoreDataset
from arxiv_kedro.stores import StoreError
from arxiv_kedro.stores.documents import (
    SCHEMA_VERSION,
    DocumentStore,
    MongoDocumentStore,
    SqlDocumentStore,
    UpsertCounts,
    open_document_store,
)
from tests.conftest import DocumentServer, free_port

META = ("schema_version", "content_hash", "created_at", "updated_at")


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), "mongodb"]
)
def documents(request: pytest.FixtureRequest) -> Iterator[DocumentStore]:
    """The same contract on every backend."""
    if request.param == "mongodb":
        server = request.getfixturevalue("document_server")
        store: DocumentStore = MongoDocumentStore(
            server.url, request.getfixturevalue("mongo_database")
        )
    elif request.param == "postgresql":
        store = SqlDocumentStore(request.getfixturevalue("postgres_url"))
    else:
        store = SqlDocumentStore(request.getfixturevalue("sqlite_url"))
    yield store
    store.close()


def article(arxiv_id: str = "2503.00001", version: int = 1, **fields: object) -> dict:
    return {"arxiv_id": arxiv_id, "version": version, "title": f"On {arxiv_id}", **fields}


def body(document: dict) -> dict:
    """A stored document without the store's own fields."""
    return {k: v for k, v in document.items() if k not in META}


def keys(found: list[dict]) -> list[tuple[str, int]]:
    return [(d["arxiv_id"], d["version"]) for d in found]


def is_utc(moment: object) -> bool:
    return isinstance(moment, datetime) and moment.utcoffset() == timedelta(0)


def test_upsert_counts_new_updated_unchanged(documents: DocumentStore) -> None:
    first = documents.upsert_many("articles", [article("a"), article("b"), article("c")])
    second = documents.upsert_many(
        "articles", [article("a"), article("b", title="Revised"), article("d")]
    )

    assert first == UpsertCounts(new=3)
    assert second == UpsertCounts(new=1, updated=1, unchanged=1)
    assert documents.count("articles") == 4
    assert documents.get("articles", arxiv_id="b", version=1)["title"] == "Revised"


def test_identical_upsert_leaves_timestamps_untouched(documents: DocumentStore) -> None:
    documents.upsert_many("articles", [article()])
    before = documents.get("articles", arxiv_id="2503.00001", version=1)
    time.sleep(0.01)

    counts = documents.upsert_many("articles", [article()])

    after = documents.get("articles", arxiv_id="2503.00001", version=1)
    assert counts == UpsertCounts(unchanged=1)
    assert after == before


def test_changed_document_keeps_created_at_and_gets_later_updated_at(
    documents: DocumentStore,
) -> None:
    documents.upsert_many("articles", [article(title="First")])
    before = documents.get("articles", arxiv_id="2503.00001", version=1)
    time.sleep(0.01)

    documents.upsert_many("articles", [article(title="Second")])

    after = documents.get("articles", arxiv_id="2503.00001", version=1)
    assert after["title"] == "Second"
    assert after["created_at"] == before["created_at"]
    assert after["updated_at"] > before["updated_at"]
    assert after["content_hash"] != before["content_hash"]


def test_stored_documents_carry_meta_and_utc_timestamps(documents: DocumentStore) -> None:
    documents.upsert_many("articles", [article("a"), article("b")])
    documents.upsert_many("articles", [article("a", title="Changed")])  # updated through $set

    found = [*documents.find("articles"), documents.get("articles", arxiv_id="a", version=1)]

    assert len(found) == 3
    for document in found:
        assert "_id" not in document
        assert document["schema_version"] == SCHEMA_VERSION
        assert isinstance(document["content_hash"], str) and len(document["content_hash"]) == 32
        assert is_utc(document["created_at"]), document["created_at"]
        assert is_utc(document["updated_at"]), document["updated_at"]
        assert document["created_at"] <= document["updated_at"]


def test_duplicate_keys_in_one_call_last_wins_counted_once(documents: DocumentStore) -> None:
    counts = documents.upsert_many(
        "articles", [article(title="one"), article("other"), article(title="two")]
    )

    assert counts == UpsertCounts(new=2)
    assert documents.count("articles") == 2
    assert documents.get("articles", arxiv_id="2503.00001", version=1)["title"] == "two"


def test_versions_of_one_paper_are_separate_documents(documents: DocumentStore) -> None:
    documents.upsert_many("articles", [article(version=1, title="v1")])
    counts = documents.upsert_many("articles", [article(version=2, title="v2")])

    assert counts == UpsertCounts(new=1)
    assert documents.get("articles", arxiv_id="2503.00001", version=1)["title"] == "v1"
    assert documents.get("articles", arxiv_id="2503.00001", version=2)["title"] == "v2"
    assert documents.count("articles") == 2


def test_collections_are_separate_with_their_own_keys(documents: DocumentStore) -> None:
    documents.upsert_many("articles", [article()])
    documents.upsert_many("summaries", [article(title="A summary")])
    documents.upsert_many("reports", [{"report_id": "weekly", "total": 3}])

    assert documents.count("articles") == documents.count("summaries") == 1
    assert documents.get("summaries", arxiv_id="2503.00001", version=1)["title"] == "A summary"
    assert body(documents.get("reports", report_id="weekly")) == {"report_id": "weekly", "total": 3}


def test_get_missing_is_none(documents: DocumentStore) -> None:
    documents.upsert_many("articles", [article()])

    assert documents.get("articles", arxiv_id="2503.00001", version=2) is None
    assert documents.get("reports", report_id="nope") is None


def test_find_filters_on_strings_and_ints_in_key_order(documents: DocumentStore) -> None:
    documents.upsert_many(
        "articles",
        [
            article("b", 1, category="cs.AI", pages=10),
            article("a", 10, category="cs.AI", pages=12),
            article("a", 2, category="cs.CL", pages=10),
            article("ab", 1, category="cs.AI", pages=10),
            article("a", 1, category="cs.AI", pages=10),
            article("A", 3, category="cs.AI", pages=10),
        ],
    )

    assert keys(documents.find("articles")) == [
        ("A", 3),
        ("a", 1),
        ("a", 2),
        ("a", 10),
        ("ab", 1),
        ("b", 1),
    ]
    assert keys(documents.find("articles", category="cs.CL")) == [("a", 2)]
    assert keys(documents.find("articles", pages=12)) == [("a", 10)]
    assert keys(documents.find("articles", category="cs.AI", pages=10)) == [
        ("A", 3),
        ("a", 1),
        ("ab", 1),
        ("b", 1),
    ]
    assert keys(documents.find("articles", limit=2, category="cs.AI")) == [("A", 3), ("a", 1)]
    assert documents.find("articles", category="math.AG") == []
    assert documents.find("articles", pages=11) == []
    assert documents.count("articles") == 6


def test_unknown_collection_is_a_value_error(documents: DocumentStore) -> None:
    with pytest.raises(ValueError, match="unknown collection 'papers'"):
        documents.upsert_many("papers", [article()])
    with pytest.raises(ValueError, match="unknown collection"):
        documents.get("papers", arxiv_id="2503.00001", version=1)
    with pytest.raises(ValueError, match="unknown collection"):
        documents.find("papers")
    with pytest.raises(ValueError, match="unknown collection"):
        documents.count("papers")


def test_missing_key_field_is_a_value_error_naming_it(documents: DocumentStore) -> None:
    with pytest.raises(ValueError, match="version"):
        documents.upsert_many("articles", [article("a"), {"arxiv_id": "b", "title": "x"}])
    with pytest.raises(ValueError, match="report_id"):
        documents.upsert_many("reports", [{"id": "weekly"}])

    assert documents.count("articles") == 0


def test_nested_values_round_trip(documents: DocumentStore) -> None:
    nested = article(
        authors=[{"name": "Ada Lovelace", "affiliations": ["Analytical", "Engine"]}],
        extra={"links": [{"rel": "pdf", "href": "https://arxiv.org/pdf/x"}], "score": 0.25},
        flags=[True, False, None, 3, "ü ∑ 漢字"],
        empty={"list": [], "dict": {}},
    )

    documents.upsert_many("articles", [nested])

    assert body(documents.get("articles", arxiv_id="2503.00001", version=1)) == nested
    assert body(documents.find("articles")[0]) == nested
    assert documents.upsert_many("articles", [nested]) == UpsertCounts(unchanged=1)


def test_three_thousand_documents_in_one_call(documents: DocumentStore) -> None:
    batch = [article(f"2503.{i:05d}", 1 + i % 3, index=i) for i in range(3000)]

    assert documents.upsert_many("articles", batch) == UpsertCounts(new=3000)
    batch[1234] = {**batch[1234], "title": "Changed"}
    assert documents.upsert_many("articles", batch) == UpsertCounts(updated=1, unchanged=2999)

    assert documents.count("articles") == 3000
    assert documents.get("articles", arxiv_id="2503.02999", version=3)["index"] == 2999
    assert documents.get("articles", arxiv_id="2503.01234", version=2)["title"] == "Changed"
    assert keys(documents.find("articles", limit=3)) == [
        ("2503.00000", 1),
        ("2503.00001", 2),
        ("2503.00002", 3),
    ]


# --- errors and wiring --------------------------------------------------------------------------


def test_mongo_with_nothing_listening_is_a_store_error() -> None:
    url = f"mongodb://127.0.0.1:{free_port()}"
    started = time.monotonic()

    with pytest.raises(StoreError) as raised:
        MongoDocumentStore(url, "arxiv")

    assert time.monotonic() - started < 10
    assert "MongoDB" in str(raised.value)
    assert url in str(raised.value)


def test_mongo_error_masks_the_password() -> None:
    url = f"mongodb://user:secret@127.0.0.1:{free_port()}"

    with pytest.raises(StoreError) as raised:
        MongoDocumentStore(url, "arxiv", timeout_seconds=1)

    assert "user:***@127.0.0.1" in str(raised.value)
    assert "secret" not in str(raised.value)


def test_mongo_outage_is_a_store_error_and_a_restart_recovers(
    restartable_document_server: DocumentServer, mongo_database: str
) -> None:
    document_server = restartable_document_server
    store = MongoDocumentStore(document_server.url, mongo_database)
    store.upsert_many("reports", [{"report_id": "before", "total": 1}])

    document_server.stop()
    try:
        started = time.monotonic()
        with pytest.raises(StoreError) as raised:
            store.upsert_many("reports", [{"report_id": "during", "total": 2}])
        assert time.monotonic() - started < 10
        assert f"MongoDB at {document_server.url}" in str(raised.value)
    finally:
        store.close()
        document_server.start()

    fresh = MongoDocumentStore(document_server.url, mongo_database)
    try:
        assert fresh.upsert_many("reports", [{"report_id": "after", "total": 3}]) == UpsertCounts(
            new=1
        )
        assert [d["report_id"] for d in fresh.find("reports")] == ["after", "before"]
    finally:
        fresh.close()


def test_open_document_store_picks_the_backend_by_scheme(
    sqlite_url: str, document_server: DocumentServer, mongo_database: str
) -> None:
    embedded = open_document_store(sqlite_url)
    mongo = open_document_store(document_server.url, mongo_database)
    try:
        assert isinstance(embedded, SqlDocumentStore)
        assert isinstance(mongo, MongoDocumentStore)
        assert mongo.db.name == mongo_database
        mongo.ping()
        embedded.ping()
    finally:
        embedded.close()
        mongo.close()


def test_document_store_dataset_loads_one_client(
    document_server: DocumentServer, mongo_database: str
) -> None:
    dataset = DocumentStoreDataset(url=document_server.url, database=mongo_database)

    store = dataset.load()
    try:
        assert isinstance(store, MongoDocumentStore)
        assert dataset.load() is store
        assert store.db.name == mongo_database
        with pytest.raises(DatasetError, match="read-only"):
            dataset.save(store)
    finally:
        store.close()


def test_document_store_dataset_describe_masks_the_password() -> None:
    dataset = DocumentStoreDataset(url="mongodb://arxiv:hunter2@mongo:27017/?authSource=admin")

    assert dataset._describe() == {
        "url": "mongodb://arxiv:***@mongo:27017/?authSource=admin",
        "database": "arxiv",
    }
    assert "hunter2" not in str(dataset)
