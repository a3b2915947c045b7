"""Ingestion nodes: snapshot filters, the forked prefetcher, and `ingest_papers` on both stores."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter
from pathlib import Path

import psutil
import pytest
from sqlalchemy import select

from arxiv_kedro.papers import Paper, from_api_entry, from_snapshot_record
from arxiv_kedro.pipelines.ingestion.nodes import ingest_papers, prefetch, select_papers
from arxiv_kedro.sources.arxiv_api import ArxivApiClient, ArxivApiError, Window
from arxiv_kedro.sources.snapshot import SnapshotError, SnapshotFile
from arxiv_kedro.stores import StoreError, schema
from arxiv_kedro.stores.coordination import FileLock, LockHeld, RedisLock
from arxiv_kedro.stores.documents import MongoDocumentStore, SqlDocumentStore
from arxiv_kedro.stores.relational import PaperStore
from tests.conftest import DocumentServer
from tests.support.arxiv_server import ArxivServer, delay

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


def make_paper(arxiv_id: str, categories: tuple[str, ...], published: datetime) -> Paper:
    return Paper(
        arxiv_id=arxiv_id,
        version=1,
        title="T",
        abstract="A",
        authors=("X",),
        primary_category=categories[0],
        categories=categories,
        published=published,
        updated=published,
    )


@pytest.fixture
def snapshot_path(tmp_path: Path) -> Path:
    lines = [json.dumps(record) for record in SNAPSHOT_LINES[:2]]
    lines += [BAD_LINES[0], "", json.dumps(SNAPSHOT_LINES[2]), BAD_LINES[1]]
    lines.append(json.dumps(SNAPSHOT_LINES[3]))
    path = tmp_path / "snapshot.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def runs(store: PaperStore) -> list[dict]:
    with store.engine.connect() as conn:
        query = select(schema.ingestion_runs).order_by(schema.ingestion_runs.c.id)
        return [dict(row._mapping) for row in conn.execute(query)]


# --- select_papers -----------------------------------------------------------------------

LANGUAGE = make_paper("2503.00001", ("cs.LG", "cs.CL"), datetime(2025, 3, 18, 0, 0, tzinfo=UTC))
GALAXY = make_paper("2503.00002", ("astro-ph.GA",), datetime(2025, 3, 19, 23, 59, tzinfo=UTC))
STRINGS = make_paper("hep-th/9901001", ("hep-th",), datetime(1999, 1, 1, tzinfo=UTC))
ALL = [LANGUAGE, GALAXY, STRINGS]


@pytest.mark.parametrize(
    ("wanted", "kept"),
    [
        ([], ALL),
        (["cs.CL"], [LANGUAGE]),  # a cross-list counts, not only the primary
        (["astro-ph"], [GALAXY]),  # an archive matches its categories
        (["cs"], [LANGUAGE]),
        (["hep-th", "astro-ph.GA"], [GALAXY, STRINGS]),
        (["astro-ph.CO", "cs.C", "hep"], []),  # no partial names
    ],
)
def test_select_papers_by_category(wanted: list[str], kept: list[Paper]) -> None:
    assert select_papers(ALL, wanted) == (kept, len(ALL) - len(kept))


@pytest.mark.parametrize(
    ("since", "until", "kept"),
    [
        ("2025-03-18", None, [LANGUAGE, GALAXY]),
        (None, "2025-03-18", [LANGUAGE, STRINGS]),
        ("2025-03-19", "2025-03-19", [GALAXY]),  # both bounds inclusive, whole days
        (date(2025, 3, 18), date(2025, 3, 19), [LANGUAGE, GALAXY]),
        ("2025-03-20", None, []),
        (None, "1998-12-31", []),
    ],
)
def test_select_papers_by_published_day(
    since: str | date | None, until: str | date | None, kept: list[Paper]
) -> None:
    assert select_papers(ALL, (), since, until) == (kept, len(ALL) - len(kept))


def test_select_papers_combines_filters() -> None:
    assert select_papers(ALL, ["cs", "hep-th"], since="2000-01-01") == ([LANGUAGE], 2)


# --- prefetch ----------------------------------------------------------------------------


def test_prefetch_yields_everything_in_order() -> None:
    items = ({"n": n, "payload": "x" * n} for n in range(300))

    assert [item["n"] for item in prefetch(items)] == list(range(300))
    assert multiprocessing.active_children() == []


def test_prefetch_reraises_the_producers_error_with_its_type() -> None:
    url = "http://127.0.0.1:9/api/query?search_query=cat%3Acs.CL&start=0"

    def failing() -> Iterator[int]:
        yield 1
        yield 2
        raise ArxivApiError(url, "HTTP 400: bad query")

    received = []
    with pytest.raises(ArxivApiError) as raised:
        received.extend(prefetch(failing()))

    assert received == [1, 2]
    assert raised.value.url == url
    assert raised.value.reason == "HTTP 400: bad query"
    assert "search_query='cat:cs.CL'" in str(raised.value)
    assert multiprocessing.active_children() == []


def test_prefetch_turns_an_unpicklable_error_into_runtime_error() -> None:
    class LocalError(Exception):
        """Defined in a function, so pickle cannot find it."""

    def failing() -> Iterator[int]:
        yield 1
        raise LocalError("the reader broke")

    with pytest.raises(RuntimeError, match=r"^LocalError: the reader broke$"):
        list(prefetch(failing()))


def test_consumer_stopping_early_ends_the_producer() -> None:
    items = prefetch(itertools.count())
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    assert len(multiprocessing.active_children()) == 1

    items.close()

    assert multiprocessing.active_children() == []


def test_producer_exits_when_the_consumer_is_killed(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import itertools, multiprocessing, time
        from arxiv_kedro.pipelines.ingestion.nodes import prefetch
        items = prefetch(itertools.count())
        next(items)
        print(multiprocessing.active_children()[0].pid, flush=True)
        time.sleep(60)
        """
    )
    consumer = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    producer = psutil.Process(int(consumer.stdout.readline()))
    assert producer.is_running()

    os.kill(consumer.pid, signal.SIGKILL)
    consumer.wait(timeout=10)
    consumer.stdout.close()

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if producer.status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.1)
    else:
        producer.kill()
        pytest.fail("the reader process outlived its killed consumer")


# --- ingest_papers -----------------------------------------------------------------------

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


@pytest.fixture
def documents(tmp_path: Path) -> Iterator[SqlDocumentStore]:
    store = SqlDocumentStore(f"sqlite:///{tmp_path / 'documents.db'}")
    yield store
    store.close()


@pytest.fixture
def lock(tmp_path: Path) -> FileLock:
    return FileLock(tmp_path / "ingestion.lock")


def api_client(corpus_server: ArxivServer, page_size: int = PAGE) -> ArxivApiClient:
    return ArxivApiClient(corpus_server.url, page_size=page_size, delay_seconds=0.05, max_retries=1)


def api_expected_ids(corpus: list[dict]) -> set[str]:
    """What API_PARAMS fetch on a first run: API_CATEGORY papers listed in the 3 days."""
    start = API_UNTIL - timedelta(days=API_PARAMS["lookback_days"])
    return {
        record["id"]
        for record in corpus
        if API_CATEGORY in record["categories"].split()
        and start <= datetime.fromisoformat(record["update_date"]).replace(tzinfo=UTC) < API_END
    }


def stored_ids(store: PaperStore) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.execute(select(schema.papers.c.arxiv_id)).scalars())


def test_ingest_snapshot_reports_and_records_the_run(
    store: PaperStore, documents: SqlDocumentStore, lock: FileLock, snapshot_path: Path
) -> None:
    report = ingest_papers(SnapshotFile(snapshot_path, batch_size=2), store, documents, lock, {})

    expected = {"fetched": PAPERS + REJECTED, "new": PAPERS, "quarantined": REJECTED}
    assert report | expected == report
    assert (report["updated"], report["unchanged"], report["filtered"]) == (0, 0, 0)
    assert (report["source"], report["detail"]) == ("snapshot", str(snapshot_path))
    assert report["status"] == "succeeded"
    [run] = runs(store)
    assert run["id"] == report["run_id"]
    assert run["status"] == "succeeded"
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
    assert report["articles"] == {"new": PAPERS, "updated": 0, "unchanged": 0}


def test_every_stored_paper_has_its_article(
    store: PaperStore, documents: SqlDocumentStore, lock: FileLock, snapshot_path: Path
) -> None:
    ingest_papers(SnapshotFile(snapshot_path), store, documents, lock, {})

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


def test_ingest_snapshot_twice_is_all_unchanged(
    store: PaperStore, documents: SqlDocumentStore, lock: FileLock, snapshot_path: Path
) -> None:
    ingest_papers(SnapshotFile(snapshot_path), store, documents, lock, {})
    written = {a["arxiv_id"]: a["updated_at"] for a in documents.find("articles")}

    report = ingest_papers(SnapshotFile(snapshot_path), store, documents, lock, {})

    assert (report["new"], report["updated"], report["unchanged"]) == (0, 0, PAPERS)
    assert store.count() == PAPERS
    assert [run["status"] for run in runs(store)] == ["succeeded", "succeeded"]
    with store.engine.connect() as conn:
        seen = conn.execute(select(schema.quarantine.c.times_seen)).scalars().all()
    assert seen == [2] * REJECTED
    assert report["articles"] == {"new": 0, "updated": 0, "unchanged": PAPERS}
    assert {a["arxiv_id"]: a["updated_at"] for a in documents.find("articles")} == written


def test_ingest_snapshot_applies_the_filter(
    store: PaperStore, documents: SqlDocumentStore, lock: FileLock, snapshot_path: Path
) -> None:
    params = {"snapshot_filter": {"categories": ["astro-ph", "hep-th"], "since": "2000-01-01"}}

    report = ingest_papers(SnapshotFile(snapshot_path), store, documents, lock, params)

    assert (report["new"], report["filtered"]) == (1, 2)
    assert runs(store)[0]["filtered"] == 2
    with store.engine.connect() as conn:
        assert conn.execute(select(schema.papers.c.arxiv_id)).scalars().all() == ["2503.00002"]
    assert [a["arxiv_id"] for a in documents.find("articles")] == ["2503.00002"]


def test_api_params_without_categories_raise_key_error(
    store: PaperStore, documents: SqlDocumentStore, lock: FileLock
) -> None:
    client = ArxivApiClient("http://127.0.0.1:1/api/query", delay_seconds=0)
    params = {"lookback_days": 1, "overlap_hours": 24, "slice_hours": 24}

    with pytest.raises(KeyError, match="categories"):
        ingest_papers(client, store, documents, lock, params)

    assert runs(store) == []


def test_failing_source_marks_the_run_failed(
    store: PaperStore, documents: SqlDocumentStore, lock: FileLock, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.jsonl"

    with pytest.raises(SnapshotError, match="snapshot file not found"):
        ingest_papers(SnapshotFile(missing), store, documents, lock, {})

    [run] = runs(store)
    assert run["status"] == "failed"
    assert run["error"] == f"SnapshotError: snapshot file not found: {missing}"
    assert run["finished_at"] is not None
    assert store.count() == 0
    assert documents.count("articles") == 0
    assert multiprocessing.active_children() == []


@pytest.fixture(params=["file", "redis"])
def make_lock(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], FileLock | RedisLock]:
    """A fresh handle on one run lock per call, as each `kedro run` process would load it."""
    if request.param == "file":
        return lambda: FileLock(tmp_path / "ingestion.lock")
    redis_store = request.getfixturevalue("redis_store")
    return lambda: RedisLock(redis_store, "ingestion")


def test_a_second_run_while_the_lock_is_held_fails_and_records_nothing(
    store: PaperStore,
    documents: SqlDocumentStore,
    make_lock: Callable[[], FileLock | RedisLock],
    corpus_server: ArxivServer,
    corpus: list[dict],
) -> None:
    expected = api_expected_ids(corpus)
    corpus_server.inject(delay(1))  # the first run's first page: the second run starts meanwhile
    second: dict[str, object] = {}

    def second_run() -> None:
        deadline = time.monotonic() + 20
        while not any(run["status"] == "running" for run in runs(store)):
            if time.monotonic() > deadline:
                return
            time.sleep(0.02)
        try:
            second["report"] = ingest_papers(
                api_client(corpus_server), store, documents, make_lock(), API_PARAMS
            )
        except LockHeld as exc:
            second["error"] = exc

    contender = threading.Thread(target=second_run)
    contender.start()
    try:
        report = ingest_papers(api_client(corpus_server), store, documents, make_lock(), API_PARAMS)
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
    assert report["articles"] == {"new": len(expected), "updated": 0, "unchanged": 0}

    # The lock is free again; a day of overlap refetches the last day's papers, all unchanged.
    rerun = ingest_papers(
        api_client(corpus_server),
        store,
        documents,
        make_lock(),
        {**API_PARAMS, "overlap_hours": 24},
    )

    last_day = {r["id"] for r in corpus if r["id"] in expected and r["update_date"] == "2025-03-27"}
    assert last_day
    assert (rerun["status"], rerun["new"], rerun["updated"], rerun["unchanged"]) == (
        "succeeded",
        0,
        0,
        len(last_day),
    )
    assert rerun["articles"] == {"new": 0, "updated": 0, "unchanged": len(last_day)}
    assert documents.count("articles") == len(expected)


@pytest.mark.slow
def test_document_store_outage_commits_nothing_and_a_rerun_completes(
    store: PaperStore,
    lock: FileLock,
    corpus_server: ArxivServer,
    corpus: list[dict],
    restartable_document_server: DocumentServer,
    mongo_database: str,
) -> None:
    document_server = restartable_document_server
    expected = api_expected_ids(corpus)
    first_day = datetime(2025, 3, 25, tzinfo=UTC)  # the first window's papers, PAGE per batch
    assert len(expected) > 3 * PAGE
    documents = MongoDocumentStore(document_server.url, mongo_database)
    corpus_server.inject(delay(0), delay(2))  # the second page arrives 2 s after the first
    at_outage: dict[str, object] = {}

    def stop_after_the_first_batch() -> None:
        deadline = time.monotonic() + 20
        while store.count() == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        at_outage.update(papers=store.count(), articles=documents.count("articles"))
        document_server.stop()
        at_outage.update(watermarks=store.watermarks())

    outage = threading.Thread(target=stop_after_the_first_batch)
    outage.start()
    try:
        started = time.monotonic()
        with pytest.raises(StoreError) as raised:
            ingest_papers(api_client(corpus_server), store, documents, lock, API_PARAMS)
        failed_after = time.monotonic() - started
    finally:
        outage.join()
        document_server.start()

    assert f"document store (MongoDB at {document_server.url}) failed to" in str(raised.value)
    assert failed_after < 20
    # Papers commit only once their documents are stored.
    assert at_outage == {"papers": PAGE, "articles": PAGE, "watermarks": {API_CATEGORY: first_day}}
    assert store.count() == PAGE  # the batch whose documents failed was rolled back
    assert store.watermarks() == {API_CATEGORY: first_day}
    [run] = runs(store)
    assert run["status"] == "failed"
    assert run["error"].startswith("StoreError: document store (MongoDB at ")
    assert (run["fetched"], run["new"]) == (PAGE, PAGE)
    documents = MongoDocumentStore(document_server.url, mongo_database)
    assert documents.count("articles") == PAGE

    report = ingest_papers(api_client(corpus_server), store, documents, lock, API_PARAMS)

    assert (report["status"], report["new"], report["unchanged"]) == (
        "succeeded",
        len(expected) - PAGE,
        PAGE,
    )
    assert report["articles"] == {"new": len(expected) - PAGE, "updated": 0, "unchanged": PAGE}
    ids = stored_ids(store)
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == expected
    assert store.watermarks() == {API_CATEGORY: API_END}
    assert [run["status"] for run in runs(store)] == ["failed", "succeeded"]
    articles = documents.find("articles")
    assert len(articles) == len(expected)
    assert {a["arxiv_id"] for a in articles} == expected
    window = Window((API_CATEGORY,), API_UNTIL - timedelta(days=3), API_END)
    served = [
        entry for batch in api_client(corpus_server, 2000).fetch(window) for entry in batch.records
    ]
    assert sorted((a["raw"] for a in articles), key=itemgetter("id")) == sorted(
        served, key=itemgetter("id")
    )
    for article in articles:
        assert article["source"] == "api"
        assert article["paper"] == from_api_entry(article["raw"]).as_json()
    documents.close()
