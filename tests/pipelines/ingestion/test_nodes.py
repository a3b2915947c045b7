"""Ingestion nodes on plain in-memory inputs: planning, normalizing into batches, filters, the
report, and the forked prefetcher."""

from __future__ import annotations

import copy
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest

from arxiv_kedro.papers import Paper
from arxiv_kedro.pipelines.ingestion.nodes import (
    fetch_pages,
    plan_ingestion,
    prefetch,
    report_ingestion,
    select_papers,
    store_fetched_papers,
    store_snapshot_papers,
)
from arxiv_kedro.sources import Checkpoint, RawBatch
from arxiv_kedro.sources.arxiv_api import ArxivApiClient, ArxivApiError
from arxiv_kedro.sources.snapshot import SnapshotFile
from tests.support.arxiv_server import ArxivServer
from tests.support.pipelines import readers


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
    assert readers() == []


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
    assert readers() == []


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
    assert len(readers()) == 1

    items.close()

    assert readers() == []


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


# --- plan_ingestion ------------------------------------------------------------------------

PLAN_PARAMS = {
    "categories": ["cs.CL", "cs.AI", "astro-ph.GA"],
    "lookback_days": 2,
    "overlap_hours": 24,
    "slice_hours": 24,
    "until": "2025-03-20T12:00:00Z",
}


def test_plan_groups_categories_by_watermark_and_slices_by_day() -> None:
    until = datetime(2025, 3, 20, 12, 0, tzinfo=UTC)
    marks = {"cs.CL": until - timedelta(hours=30), "cs.AI": until - timedelta(hours=30)}

    plan = plan_ingestion(marks, PLAN_PARAMS)

    assert re.fullmatch(r"\d{8}T\d{12}Z", plan["id"])
    windows = [(tuple(w["categories"]), w["start"], w["end"]) for w in plan["windows"]]
    end = (until + timedelta(minutes=1)).isoformat()
    cs, astro = ("cs.CL", "cs.AI"), ("astro-ph.GA",)  # watermark - overlap; look-back
    assert windows == [
        (cs, "2025-03-18T06:00:00+00:00", "2025-03-19T06:00:00+00:00"),
        (cs, "2025-03-19T06:00:00+00:00", "2025-03-20T06:00:00+00:00"),
        (cs, "2025-03-20T06:00:00+00:00", end),
        (astro, "2025-03-18T12:00:00+00:00", "2025-03-19T12:00:00+00:00"),
        (astro, "2025-03-19T12:00:00+00:00", "2025-03-20T12:00:00+00:00"),
        (astro, "2025-03-20T12:00:00+00:00", end),
    ]


def test_plan_without_categories_says_what_to_set() -> None:
    with pytest.raises(ValueError, match=r"ingestion\.categories is empty"):
        plan_ingestion({}, {**PLAN_PARAMS, "categories": []})


# --- fetch_pages (the client is a service: a local arXiv server answers) -----------------------


def test_fetch_pages_yields_each_page_with_its_checkpoint(corpus_server: ArxivServer) -> None:
    plan = plan_ingestion({}, {**PLAN_PARAMS, "categories": ["cs.CL"], "lookback_days": 1})
    client = ArxivApiClient(corpus_server.url, page_size=100, delay_seconds=0)

    pages = list(fetch_pages(client, plan))

    assert [(p["window"], p["page"]) for p in pages][:2] == [(1, 0), (1, 1)]
    assert {p["plan_id"] for p in pages} == {plan["id"]}
    assert all(len(p["records"]) <= 100 for p in pages)
    assert pages[-1]["records"] == []  # the window's closing page moves the watermark to its end
    assert pages[-1]["checkpoint"]["through"] == datetime.fromisoformat(plan["windows"][-1]["end"])
    throughs = [p["checkpoint"]["through"] for p in pages]
    assert throughs == sorted(throughs)


# --- the store nodes: raw records in, (documents, batch) out ------------------------------------

ENTRY = {
    "id": "http://arxiv.org/abs/2503.00001v2",
    "title": "Language models",
    "summary": "About words.",
    "published": "2025-03-18T10:00:00Z",
    "updated": "2025-03-19T10:00:00Z",
    "authors": ["Ada Lovelace"],
    "primary_category": "cs.CL",
    "categories": ["cs.CL", "cs.AI"],
    "links": [],
}
PLAN = {
    "id": "20250320T120000000000Z",
    "windows": [
        {"categories": ["cs.CL"], "start": "2025-03-18T00:00:00+00:00",
         "end": "2025-03-19T00:00:00+00:00"},
    ],
}  # fmt: skip


def saved(chunks: Iterator[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Each chunk as the datasets get it: Kedro saves a chunk before it asks for the next."""
    return [copy.deepcopy(chunk) for chunk in chunks]


def test_a_saved_chunk_is_emptied_once_the_next_is_asked_for(tmp_path: Path) -> None:
    """Kedro's tee over a generator node's outputs keeps up to 57 chunks alive: they must not
    keep their papers, or a backfill's memory grows with the file."""
    path = tmp_path / "s.jsonl"
    lines = [{"id": f"2503.0000{i}", "title": "A", "abstract": "B", "authors": "X",
              "categories": "cs.CL", "versions": [], "update_date": "2025-03-18"}
             for i in range(1, 5)]  # fmt: skip
    path.write_text("\n".join(map(json.dumps, lines)) + "\n")
    chunks = store_snapshot_papers(SnapshotFile(path, batch_size=2), {})

    documents, batch = next(chunks)
    assert len(documents) == len(batch.papers) == 2
    following, _ = next(chunks)

    assert (documents, batch.papers, batch.quarantined) == ([], [], [])
    assert (batch.fetched, batch.progress) == (2, " (50% of the file)")  # the counts stay
    assert len(following) == 2


def test_fetched_pages_become_documents_then_batches_then_a_closing_batch() -> None:
    through = datetime(2025, 3, 18, 10, 0, tzinfo=UTC)
    pages = [
        RawBatch(
            "api", [ENTRY, {**ENTRY, "id": "junk"}], checkpoint=Checkpoint(("cs.CL",), through)
        )
    ]

    out = saved(store_fetched_papers({PLAN["id"]: lambda: iter(pages), "older": list}, PLAN))

    (documents, batch), (no_documents, last) = out
    assert [d["arxiv_id"] for d in documents] == ["2503.00001"]
    assert documents[0]["raw"] == ENTRY and documents[0]["version"] == 2
    assert [p.arxiv_id for p in batch.papers] == ["2503.00001"]
    assert [q.reason for q in batch.quarantined] == ["unparseable arXiv id 'junk'"]
    assert (batch.fetched, batch.checkpoint.through, batch.last) == (2, through, False)
    assert batch.run["source"] == "api"
    assert batch.run["detail"] == "(cat:cs.CL) AND submittedDate:[202503180000 TO 202503182359]"
    assert (no_documents, last.papers, last.last) == ([], [], True)


def test_pages_of_another_plan_are_not_taken() -> None:
    with pytest.raises(ValueError, match="no landed pages for ingestion plan"):
        list(store_fetched_papers({"another": list}, PLAN))


def test_a_snapshot_becomes_batches_within_the_filters(tmp_path: Path) -> None:
    lines = [
        {"id": "2503.00001", "title": "A", "abstract": "B", "authors": "X",
         "categories": "cs.CL", "versions": [], "update_date": "2025-03-18"},
        {"id": "2503.00002", "title": "A", "abstract": "B", "authors": "X",
         "categories": "astro-ph.GA", "versions": [], "update_date": "2025-03-18"},
    ]  # fmt: skip
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(map(json.dumps, lines)) + "\nnot json\n")
    params = {"snapshot_filter": {"categories": ["cs"]}}

    out = saved(store_snapshot_papers(SnapshotFile(path, batch_size=2), params))

    assert [[p.arxiv_id for p in batch.papers] for _, batch in out] == [["2503.00001"], [], []]
    assert [(b.fetched, b.filtered, len(b.quarantined)) for _, b in out] == [
        (2, 1, 0),
        (1, 0, 1),
        (0, 0, 0),
    ]
    assert out[0][1].progress.endswith("of the file)")
    assert out[-1][1].last


def test_report_from_the_run_record() -> None:
    started = datetime(2026, 1, 1, tzinfo=UTC)
    run = {
        "id": 7, "source": "snapshot", "detail": "f.jsonl", "status": "succeeded",
        "started_at": started, "finished_at": started + timedelta(seconds=4),
        "duration_seconds": 4.0, "fetched": 10, "new": 6, "updated": 1, "unchanged": 2,
        "filtered": 0, "quarantined": 1, "error": None,
    }  # fmt: skip

    report = report_ingestion(run)

    assert report["papers_per_second"] == 2.5
    assert (report["run_id"], report["status"], report["new"]) == (7, "succeeded", 6)
    assert report["finished_at"] == "2026-01-01T00:00:04+00:00"
