"""The ingestion pipelines on the project's catalog, on SQLite and PostgreSQL: snapshot backfills
and the live API (a local arXiv server), the run record, the lock, failures and outages."""

from __future__ import annotations

import gzip
import json
import math
import os
import re
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any

import pytest
from kedro.framework.hooks import hook_impl
from kedro.io import DataCatalog, DatasetError
from sqlalchemy import select

from arxiv_kedro.coordination.locks import LockHeld
from arxiv_kedro.coordination.redis_store import RedisStore
from arxiv_kedro.datasets import ArxivApiDataset, RunLockDataset, SnapshotDataset
from arxiv_kedro.papers import from_api_entry, from_snapshot_record
from arxiv_kedro.pipelines.ingestion.pipeline import create_backfill_pipeline, create_pipeline
from arxiv_kedro.sources.arxiv_api import Window
from arxiv_kedro.sources.snapshot import SnapshotError
from arxiv_kedro.stores import StoreError, schema
from arxiv_kedro.stores.documents import DocumentStore, MongoDocumentStore, SqlDocumentStore
from arxiv_kedro.stores.relational.engine import Database
from arxiv_kedro.stores.relational.ingestion import IngestionStore
from tests.conftest import DocumentServer
from tests.support.arxiv_server import ArxivServer, delay
from tests.support.pipelines import project_catalog, readers, run_pipeline

SNAPSHOT_LINES = [
    {
        "id": "2503.00001",
        "authors": "Ada Lovelace, Alan Turing",
        "title": "Language models",
        "abstract": "About words.",
        "categories": "cs.CL cs.AI",
        "versions": [],
        "update_date": "2025-03-18",
    },
    {
        "id": "2503.00002",
        "authors": "Vera Rubin",
        "title": "Dark matter in galaxies",
        "abstract": "About halos.",
        "categories": "astro-ph.GA",
        "versions": [
            {"version": "v1", "created": "Mon, 17 Mar 2025 10:00:00 GMT"},
            {"version": "v2", "created": "Fri, 21 Mar 2025 10:00:00 GMT"},
        ],
        "update_date": "2025-03-21",
    },
    {
        "id": "hep-th/9901001",
        "authors": "E. Witten",
        "title": "Strings",
        "abstract": "About strings.",
        "categories": "",
        "versions": [{"version": "v1", "created": "Fri, 1 Jan 1999 00:00:00 GMT"}],
        "update_date": "1999-01-01",
    },
    {"id": "2503.00003", "title": "  ", "abstract": "No title.", "categories": "cs.CV"},
]
BAD_LINES = ["{not json", "[1, 2]"]
PAPERS = 3
REJECTED = 2 + 1  # undecodable lines, then the record without a title

API_CATEGORY = "cs.CL"
API_UNTIL = datetime(2025, 3, 27, 12, 0, tzinfo=UTC)
API_END = API_UNTIL + timedelta(minutes=1)  # the last window's end, where the watermark lands
API_PARAMS = {
    "categories": [API_CATEGORY],
    "lookback_days": 3,
    "overlap_hours": 1,
    "slice_hours": 24,
    "until": API_UNTIL.isoformat(),
}
PAGE = 50


@pytest.fixture(autouse=True)
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The catalog's relative paths (plan, landing zone, reports, lock) land in tmp_path."""
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    Database.close_shared()


@pytest.fixture
def snapshot_path(tmp_path: Path) -> Path:
    lines = [json.dumps(record) for record in SNAPSHOT_LINES[:2]]
    lines += [BAD_LINES[0], "", json.dumps(SNAPSHOT_LINES[2]), BAD_LINES[1]]
    lines.append(json.dumps(SNAPSHOT_LINES[3]))
    path = tmp_path / "snapshot.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def documents_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'documents.db'}"


@pytest.fixture
def documents(documents_url: str) -> DocumentStore:
    store = SqlDocumentStore(documents_url)
    yield store
    store.close()


def catalog_for(
    store: Database,
    documents_url: str,
    *,
    snapshot: Path | None = None,
    batch_size: int = 5000,
    server: ArxivServer | None = None,
    page_size: int = PAGE,
    params: dict[str, Any] | None = None,
    lock: RunLockDataset | None = None,
    database: str = "arxiv",
) -> DataCatalog:
    catalog = project_catalog(
        relational_url=store.url,
        documents_url=documents_url,
        documents_database=database,
        params={"ingestion": params if params is not None else API_PARAMS},
    )
    catalog["snapshot"] = SnapshotDataset(str(snapshot or ""), batch_size=batch_size)
    if server is not None:
        api = {"url": server.url, "page_size": page_size, "delay_seconds": 0.05, "max_retries": 1}
        catalog["arxiv_api"] = ArxivApiDataset(api)
    if lock is not None:
        catalog["ingestion_lock"] = lock
    return catalog


def backfill(catalog: DataCatalog) -> dict[str, Any]:
    run_pipeline(create_backfill_pipeline(), catalog)
    return catalog.load("ingestion_report")


def ingest_api(catalog: DataCatalog) -> dict[str, Any]:
    run_pipeline(create_pipeline(), catalog)
    return catalog.load("ingestion_report")


def runs(store: Database) -> list[dict]:
    with store.engine.connect() as conn:
        query = select(schema.ingestion_runs).order_by(schema.ingestion_runs.c.id)
        return [dict(row) for row in conn.execute(query).mappings()]


def stored_ids(store: Database) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.execute(select(schema.papers.c.arxiv_id)).scalars())


def api_expected_ids(corpus: list[dict], category: str = API_CATEGORY) -> set[str]:
    """What API_PARAMS fetch on a first run: `category` papers listed in the 3 days."""
    start = API_UNTIL - timedelta(days=API_PARAMS["lookback_days"])
    return {
        record["id"]
        for record in corpus
        if category in record["categories"].split()
        and start <= datetime.fromisoformat(record["update_date"]).replace(tzinfo=UTC) < API_END
    }


# --- snapshots ---------------------------------------------------------------------------


def test_backfill_reports_and_records_the_run(
    store: Database, documents_url: str, snapshot_path: Path
) -> None:
    report = backfill(catalog_for(store, documents_url, snapshot=snapshot_path, batch_size=2))

    expected = {"fetched": PAPERS + REJECTED, "new": PAPERS, "quarantined": REJECTED}
    assert report | expected == report
    assert (report["updated"], report["unchanged"], report["filtered"]) == (0, 0, 0)
    assert (report["source"], report["detail"]) == ("snapshot", str(snapshot_path))
    assert report["status"] == "succeeded"
    [run] = runs(store)
    assert run["id"] == report["run_id"]
    assert run["status"] == "succeeded"
    assert run["finished_at"] is not None
    assert {name: run[name] for name in expected} == expected
    assert store.count() == PAPERS
    assert store.count(schema.quarantine) == REJECTED
    with store.engine.connect() as conn:
        reasons = conn.execute(select(schema.quarantine.c.reason)).scalars().all()
    assert sorted(reasons) == [
        "line 3 is not valid JSON (Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1))",
        "line 6 is a JSON list, not an object",
        "missing title",
    ]


def test_every_stored_paper_has_its_article(
    store: Database, documents_url: str, documents: DocumentStore, snapshot_path: Path
) -> None:
    backfill(catalog_for(store, documents_url, snapshot=snapshot_path))

    with store.engine.connect() as conn:
        stored = conn.execute(select(schema.papers.c.arxiv_id, schema.papers.c.version)).all()
    assert len(stored) == documents.count("articles") == PAPERS
    for arxiv_id, version in stored:
        [record] = [line for line in SNAPSHOT_LINES if line["id"] == arxiv_id]
        article = documents.get("articles", arxiv_id=arxiv_id, version=version)
        assert article["source"] == "snapshot"
        assert article["raw"] == record
        assert article["paper"] == from_snapshot_record(record).as_json()
    assert documents.find("articles", arxiv_id="2503.00003") == []  # quarantined: no article


def test_backfill_twice_is_all_unchanged(
    store: Database, documents_url: str, documents: DocumentStore, snapshot_path: Path
) -> None:
    backfill(catalog_for(store, documents_url, snapshot=snapshot_path))
    written = {a["arxiv_id"]: a["updated_at"] for a in documents.find("articles")}

    report = backfill(catalog_for(store, documents_url, snapshot=snapshot_path))

    assert (report["new"], report["updated"], report["unchanged"]) == (0, 0, PAPERS)
    assert store.count() == PAPERS
    assert [run["status"] for run in runs(store)] == ["succeeded", "succeeded"]
    with store.engine.connect() as conn:
        seen = conn.execute(select(schema.quarantine.c.times_seen)).scalars().all()
    assert seen == [2] * REJECTED
    assert {a["arxiv_id"]: a["updated_at"] for a in documents.find("articles")} == written


def test_backfill_applies_the_filter(
    store: Database, documents_url: str, documents: DocumentStore, snapshot_path: Path
) -> None:
    params = {"snapshot_filter": {"categories": ["astro-ph", "hep-th"], "since": "2000-01-01"}}

    report = backfill(catalog_for(store, documents_url, snapshot=snapshot_path, params=params))

    assert (report["new"], report["filtered"]) == (1, 2)
    assert runs(store)[0]["filtered"] == 2
    assert stored_ids(store) == ["2503.00002"]
    assert [a["arxiv_id"] for a in documents.find("articles")] == ["2503.00002"]


def test_an_empty_snapshot_records_an_empty_run(
    store: Database, documents_url: str, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")

    report = backfill(catalog_for(store, documents_url, snapshot=empty))

    assert (report["status"], report["fetched"], report["new"]) == ("succeeded", 0, 0)
    assert [run["status"] for run in runs(store)] == ["succeeded"]


def test_a_missing_snapshot_fails_the_run_and_stores_nothing(
    store: Database, documents_url: str, documents: DocumentStore, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.jsonl"

    with pytest.raises(SnapshotError, match="snapshot file not found"):
        backfill(catalog_for(store, documents_url, snapshot=missing))

    [run] = runs(store)  # failed before its first batch: recorded all the same
    assert (run["source"], run["status"], run["fetched"]) == ("snapshot", "failed", 0)
    assert run["error"] == f"SnapshotError: snapshot file not found: {missing}"
    assert run["finished_at"] is not None
    assert store.count() == 0
    assert documents.count("articles") == 0
    assert readers() == []


def test_a_backfill_without_a_snapshot_says_how_to_give_one(
    store: Database, documents_url: str
) -> None:
    with pytest.raises(DatasetError, match="set ARXIV_SNAPSHOT"):
        backfill(catalog_for(store, documents_url))


def test_a_snapshot_failing_midway_keeps_what_was_committed_and_marks_the_run_failed(
    store: Database, documents_url: str, documents: DocumentStore, tmp_path: Path
) -> None:
    """A gzip file cut short: the batches read before the damage are stored, the run fails."""
    record = SNAPSHOT_LINES[0]
    lines = "".join(json.dumps({**record, "id": f"2503.{n:05d}"}) + "\n" for n in range(1, 4001))
    whole = gzip.compress(lines.encode())
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole[: len(whole) * 3 // 4])

    with pytest.raises(SnapshotError, match="cannot read"):
        backfill(catalog_for(store, documents_url, snapshot=cut, batch_size=500))

    [run] = runs(store)
    assert run["status"] == "failed"
    assert run["error"].startswith("SnapshotError: cannot read")
    assert 0 < store.count() == run["new"] < 4000
    assert documents.count("articles") == store.count()


def test_snapshot_slice_report_and_store_agree(
    shared_data: Path, store: Database, documents_url: str, documents: DocumentStore
) -> None:
    snapshot = shared_data / "snapshot" / "arxiv-sample-all-archives.jsonl"

    report = backfill(catalog_for(store, documents_url, snapshot=snapshot, batch_size=500))

    assert report["status"] == "succeeded"
    assert (report["fetched"], report["new"], report["quarantined"]) == (1628, 1628, 0)
    assert store.count() == 1628
    assert len(set(stored_ids(store))) == 1628
    records = {r["id"]: r for r in map(json.loads, snapshot.read_text().splitlines())}
    articles = documents.find("articles")
    assert sorted(a["arxiv_id"] for a in articles) == sorted(stored_ids(store))
    for article in articles:
        assert article["raw"] == records[article["arxiv_id"]]
        assert article["paper"] == from_snapshot_record(article["raw"]).as_json()


# --- the live API ------------------------------------------------------------------------

CATEGORIES = ["cs.CL", "cs.AI", "astro-ph.GA"]
UNTIL = datetime(2025, 4, 2, 12, 0, tzinfo=UTC)
SLICE_PARAMS = {
    "categories": CATEGORIES,
    "lookback_days": 3,
    "overlap_hours": 24,
    "slice_hours": 24,
    "until": UNTIL.isoformat(),
}


def expected_ids(corpus: list[dict], start: datetime, end: datetime) -> set[str]:
    """Corpus papers in one of CATEGORIES, submitted (listed, at 00:00 UTC) in [start, end)."""
    return {
        record["id"]
        for record in corpus
        if set(record["categories"].split()) & set(CATEGORIES)
        and start <= datetime.fromisoformat(record["update_date"]).replace(tzinfo=UTC) < end
    }


def lower_bound(query: str) -> str:
    return re.search(r"submittedDate:\[(\d{12}) TO", query).group(1)


def pages(ids: set[str]) -> int:
    """Requests for one window: its pages of 200, or the one empty first page."""
    return max(1, math.ceil(len(ids) / 200))


@pytest.mark.slow
def test_api_fetches_the_window_then_only_the_overlap(
    corpus: list[dict],
    corpus_server: ArxivServer,
    store: Database,
    documents_url: str,
    documents: DocumentStore,
    workdir: Path,
) -> None:
    end = UNTIL + timedelta(minutes=1)
    first = expected_ids(corpus, UNTIL - timedelta(days=3), end)
    catalog = catalog_for(
        store, documents_url, server=corpus_server, page_size=200, params=SLICE_PARAMS
    )

    report = ingest_api(catalog)

    assert sorted(stored_ids(store)) == sorted(first)
    assert (report["new"], report["fetched"], report["quarantined"]) == (len(first), len(first), 0)
    assert IngestionStore(store).watermarks() == dict.fromkeys(CATEGORIES, end)
    articles = documents.find("articles")
    assert sorted(a["arxiv_id"] for a in articles) == sorted(first)
    assert all(a["paper"] == from_api_entry(a["raw"]).as_json() for a in articles)
    # The landing zone holds the plan's pages, every fetched entry once.
    plan = catalog.load("ingestion_plan")
    landed = [
        entry["id"] for page in catalog.load("raw_pages")[plan["id"]]() for entry in page.records
    ]
    assert len(landed) == len(first)
    assert {a["raw"]["id"] for a in articles} == set(landed)

    later = UNTIL + timedelta(days=1)
    overlap = expected_ids(corpus, end - timedelta(hours=24), end)
    fresh = expected_ids(corpus, end, later + timedelta(minutes=1))
    assert overlap and fresh
    requests_before = len(corpus_server.requests)

    report = ingest_api(
        catalog_for(
            store,
            documents_url,
            server=corpus_server,
            page_size=200,
            params={**SLICE_PARAMS, "until": later.isoformat()},
        )
    )

    assert (report["unchanged"], report["new"], report["updated"]) == (len(overlap), len(fresh), 0)
    assert documents.count("articles") == len(first | fresh)
    ids = stored_ids(store)
    assert len(ids) == len(set(ids)) == len(first | fresh)
    assert IngestionStore(store).watermarks() == dict.fromkeys(
        CATEGORIES, later + timedelta(minutes=1)
    )
    queried = [
        lower_bound(r.params["search_query"]) for r in corpus_server.requests[requests_before:]
    ]
    overlap_start, fresh_start = (f"{t:%Y%m%d%H%M}" for t in (end - timedelta(hours=24), end))
    assert queried == [overlap_start] * pages(overlap) + [fresh_start] * pages(fresh)
    assert [run["status"] for run in runs(store)] == ["succeeded", "succeeded"]
    assert len(list((workdir / "data" / "01_raw" / "arxiv-api").iterdir())) == 2


def test_landed_pages_are_stored_again_without_asking_the_api(
    corpus_server: ArxivServer, store: Database, documents_url: str, documents: DocumentStore
) -> None:
    """The raw landing zone: the store step alone, rerun on the same plan, refetches nothing."""
    catalog = catalog_for(store, documents_url, server=corpus_server)
    ingest_api(catalog)
    requests = len(corpus_server.requests)
    pipeline = create_pipeline().from_nodes("store_fetched_papers")

    run_pipeline(pipeline, catalog_for(store, documents_url, server=corpus_server))

    assert len(corpus_server.requests) == requests
    rerun = catalog.load("ingestion_report")
    assert (rerun["new"], rerun["unchanged"]) == (0, store.count())
    assert [run["status"] for run in runs(store)] == ["succeeded", "succeeded"]


def test_api_params_without_categories_fail_before_any_request(
    corpus_server: ArxivServer, store: Database, documents_url: str
) -> None:
    params = {"lookback_days": 1, "overlap_hours": 24, "slice_hours": 24}

    with pytest.raises(ValueError, match=r"ingestion\.categories is empty"):
        ingest_api(catalog_for(store, documents_url, server=corpus_server, params=params))

    assert [(run["source"], run["status"]) for run in runs(store)] == [("api", "failed")]
    assert corpus_server.requests == []


@pytest.fixture(params=["file", "redis"])
def lock_dataset(request: pytest.FixtureRequest, tmp_path: Path) -> RunLockDataset:
    """The run lock, as each `kedro run` process would load it from the catalog."""
    if request.param == "file":
        return RunLockDataset("ingestion", path=str(tmp_path / "ingestion.lock"))
    redis_store: RedisStore = request.getfixturevalue("redis_store")
    return RunLockDataset("ingestion", redis_url=redis_store.url, namespace=redis_store.namespace)


def test_a_second_run_while_the_lock_is_held_fails_and_records_nothing(
    store: Database,
    documents_url: str,
    documents: DocumentStore,
    lock_dataset: RunLockDataset,
    corpus_server: ArxivServer,
    corpus: list[dict],
) -> None:
    expected = api_expected_ids(corpus)
    corpus_server.inject(delay(1))  # the first run's first page: the second run starts meanwhile
    second: dict[str, object] = {}

    def catalog(**params: Any) -> DataCatalog:
        return catalog_for(
            store, documents_url, server=corpus_server, lock=lock_dataset,
            params={**API_PARAMS, **params},
        )  # fmt: skip

    def second_run() -> None:
        deadline = time.monotonic() + 20
        while not corpus_server.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        try:
            second["report"] = ingest_api(catalog())
        except LockHeld as exc:
            second["error"] = exc

    contender = threading.Thread(target=second_run)
    contender.start()
    try:
        report = ingest_api(catalog())
    finally:
        contender.join()

    assert list(second) == ["error"]
    assert re.fullmatch(
        rf"another ingestion run is in progress \(pid {os.getpid()} on "
        rf"{re.escape(socket.gethostname())}, since \S+\)",
        str(second["error"]),
    )
    assert report["status"] == "succeeded"
    assert [(run["id"], run["status"]) for run in runs(store)] == [(report["run_id"], "succeeded")]
    assert sorted(stored_ids(store)) == sorted(expected)
    assert documents.count("articles") == len(expected)

    # The lock is free again; a day of overlap refetches the last day's papers, all unchanged.
    rerun = ingest_api(catalog(overlap_hours=24))

    last_day = {r["id"] for r in corpus if r["id"] in expected and r["update_date"] == "2025-03-27"}
    assert last_day
    assert (rerun["status"], rerun["new"], rerun["updated"], rerun["unchanged"]) == (
        "succeeded",
        0,
        0,
        len(last_day),
    )
    assert documents.count("articles") == len(expected)


@pytest.mark.slow
def test_document_store_outage_commits_nothing_and_a_rerun_completes(
    store: Database,
    corpus_server: ArxivServer,
    corpus: list[dict],
    restartable_document_server: DocumentServer,
    mongo_database: str,
) -> None:
    expected = api_expected_ids(corpus)
    first_day = datetime(2025, 3, 25, tzinfo=UTC)  # the first window's papers, PAGE per batch
    assert len(expected) > 3 * PAGE
    documents = MongoDocumentStore(restartable_document_server.url, mongo_database)
    at_outage: dict[str, object] = {}

    def catalog() -> DataCatalog:
        return catalog_for(
            store, restartable_document_server.url, server=corpus_server, database=mongo_database
        )

    class StopAfterTheFirstBatch:
        """Takes the document server down once the first batch is committed."""

        @hook_impl
        def after_dataset_saved(self, dataset_name: str) -> None:
            if dataset_name == "papers@batches" and not at_outage:
                at_outage.update(papers=store.count(), articles=documents.count("articles"))
                restartable_document_server.stop()
                at_outage.update(watermarks=IngestionStore(store).watermarks())

    try:
        started = time.monotonic()
        with pytest.raises(DatasetError) as raised:
            run_pipeline(create_pipeline(), catalog(), hooks=[StopAfterTheFirstBatch()])
        failed_after = time.monotonic() - started
    finally:
        restartable_document_server.start()

    assert isinstance(raised.value.__cause__.__cause__, StoreError)  # Kedro wraps it, twice
    assert f"document store (MongoDB at {restartable_document_server.url}) failed to" in str(
        raised.value
    )
    assert failed_after < 20
    # A batch's papers commit only after its documents are stored: the second batch's failed.
    assert at_outage == {"papers": PAGE, "articles": PAGE, "watermarks": {API_CATEGORY: first_day}}
    assert store.count() == PAGE
    assert IngestionStore(store).watermarks() == {API_CATEGORY: first_day}
    [run] = runs(store)
    assert run["status"] == "failed"
    assert run["error"].startswith("DatasetError: articles: Failed while saving")
    assert (
        f"document store (MongoDB at {restartable_document_server.url}) failed to" in run["error"]
    )
    assert (run["fetched"], run["new"]) == (PAGE, PAGE)

    report = ingest_api(catalog())

    assert (report["status"], report["new"], report["unchanged"]) == (
        "succeeded",
        len(expected) - PAGE,
        PAGE,
    )
    ids = stored_ids(store)
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == expected
    assert IngestionStore(store).watermarks() == {API_CATEGORY: API_END}
    assert [run["status"] for run in runs(store)] == ["failed", "succeeded"]
    documents = MongoDocumentStore(restartable_document_server.url, mongo_database)
    articles = documents.find("articles")
    assert len(articles) == len(expected)
    assert {a["arxiv_id"] for a in articles} == expected
    window = Window((API_CATEGORY,), API_UNTIL - timedelta(days=3), API_END)
    client = ArxivApiDataset({"url": corpus_server.url, "delay_seconds": 0}).load()
    served = [entry for batch in client.fetch(window) for entry in batch.records]
    assert sorted((a["raw"] for a in articles), key=itemgetter("id")) == sorted(
        served, key=itemgetter("id")
    )
    for article in articles:
        assert article["source"] == "api"
        assert article["paper"] == from_api_entry(article["raw"]).as_json()
    documents.close()
