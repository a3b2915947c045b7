"""Ingestion nodes: snapshot filters, the forked prefetcher, and `ingest_papers` on both stores."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import psutil
import pytest
from sqlalchemy import select

from arxiv_kedro.papers import Paper
from arxiv_kedro.pipelines.ingestion.nodes import ingest_papers, prefetch, select_papers
from arxiv_kedro.sources.arxiv_api import ArxivApiClient, ArxivApiError
from arxiv_kedro.sources.snapshot import SnapshotError, SnapshotFile
from arxiv_kedro.stores import schema
from arxiv_kedro.stores.relational import PaperStore

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


def test_ingest_snapshot_reports_and_records_the_run(store: PaperStore, snapshot_path: Path):
    report = ingest_papers(SnapshotFile(snapshot_path, batch_size=2), store, {})

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


def test_ingest_snapshot_twice_is_all_unchanged(store: PaperStore, snapshot_path: Path):
    ingest_papers(SnapshotFile(snapshot_path), store, {})

    report = ingest_papers(SnapshotFile(snapshot_path), store, {})

    assert (report["new"], report["updated"], report["unchanged"]) == (0, 0, PAPERS)
    assert store.count() == PAPERS
    assert [run["status"] for run in runs(store)] == ["succeeded", "succeeded"]
    with store.engine.connect() as conn:
        seen = conn.execute(select(schema.quarantine.c.times_seen)).scalars().all()
    assert seen == [2] * REJECTED


def test_ingest_snapshot_applies_the_filter(store: PaperStore, snapshot_path: Path):
    params = {"snapshot_filter": {"categories": ["astro-ph", "hep-th"], "since": "2000-01-01"}}

    report = ingest_papers(SnapshotFile(snapshot_path), store, params)

    assert (report["new"], report["filtered"]) == (1, 2)
    assert runs(store)[0]["filtered"] == 2
    with store.engine.connect() as conn:
        assert conn.execute(select(schema.papers.c.arxiv_id)).scalars().all() == ["2503.00002"]


def test_api_params_without_categories_raise_key_error(store: PaperStore) -> None:
    client = ArxivApiClient("http://127.0.0.1:1/api/query", delay_seconds=0)
    params = {"lookback_days": 1, "overlap_hours": 24, "slice_hours": 24}

    with pytest.raises(KeyError, match="categories"):
        ingest_papers(client, store, params)

    assert runs(store) == []


def test_failing_source_marks_the_run_failed(store: PaperStore, tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"

    with pytest.raises(SnapshotError, match="snapshot file not found"):
        ingest_papers(SnapshotFile(missing), store, {})

    [run] = runs(store)
    assert run["status"] == "failed"
    assert run["error"] == f"SnapshotError: snapshot file not found: {missing}"
    assert run["finished_at"] is not None
    assert store.count() == 0
    assert multiprocessing.active_children() == []
