"""The ingestion pipeline run by Kedro's SequentialRunner on a snapshot and on the local API."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from sqlalchemy import func, select

from arxiv_kedro.datasets import (
    DocumentStoreDataset,
    PaperSourceDataset,
    PaperStoreDataset,
    RunLockDataset,
)
from arxiv_kedro.papers import from_api_entry, from_snapshot_record
from arxiv_kedro.pipelines.ingestion import create_pipeline
from arxiv_kedro.stores import schema
from arxiv_kedro.stores.documents import DocumentStore
from arxiv_kedro.stores.relational import PaperStore
from tests.support.arxiv_server import ArxivServer

CATEGORIES = ["cs.CL", "cs.AI", "astro-ph.GA"]
UNTIL = datetime(2025, 4, 2, 12, 0, tzinfo=UTC)
API_PARAMS = {
    "categories": CATEGORIES,
    "lookback_days": 3,
    "overlap_hours": 24,
    "slice_hours": 24,
    "until": UNTIL.isoformat(),
}


def run_pipeline(
    source: PaperSourceDataset, url: str, params: dict[str, Any], workdir: Path
) -> tuple[dict[str, Any], PaperStore, DocumentStore]:
    """Run the pipeline (documents and lock in `workdir`); returns the report and the stores."""
    store = PaperStoreDataset(url=url)
    documents = DocumentStoreDataset(url=f"sqlite:///{workdir / 'documents.db'}")
    catalog = DataCatalog(
        {
            "paper_source": source,
            "paper_store": store,
            "document_store": documents,
            "ingestion_lock": RunLockDataset("ingestion", path=str(workdir / "ingestion.lock")),
            "params:ingestion": MemoryDataset(params),
            "ingestion_report": MemoryDataset(),
        }
    )
    outputs = SequentialRunner().run(create_pipeline(), catalog)
    return outputs["ingestion_report"].load(), store.load(), documents.load()


def stored_ids(store: PaperStore) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.execute(select(schema.papers.c.arxiv_id)).scalars())


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


def api_source(corpus_server: ArxivServer) -> PaperSourceDataset:
    return PaperSourceDataset(
        api={"url": corpus_server.url, "delay_seconds": 0.05, "page_size": 200, "max_retries": 1}
    )


def test_snapshot_slice_report_and_store_agree(
    shared_data: Path, store_url: str, tmp_path: Path
) -> None:
    snapshot = shared_data / "snapshot" / "arxiv-sample-all-archives.jsonl"
    source = PaperSourceDataset(snapshot=str(snapshot), snapshot_batch_size=500)

    report, store, documents = run_pipeline(source, store_url, {"snapshot_filter": {}}, tmp_path)

    assert report["status"] == "succeeded"
    assert (report["fetched"], report["new"], report["quarantined"]) == (1628, 1628, 0)
    assert store.count() == 1628
    assert len(set(stored_ids(store))) == 1628
    with store.engine.connect() as conn:
        run = conn.execute(select(schema.ingestion_runs)).one()._mapping
    assert run["id"] == report["run_id"]
    assert {k: run[k] for k in ("status", "fetched", "new", "quarantined")} == {
        k: report[k] for k in ("status", "fetched", "new", "quarantined")
    }
    assert report["articles"] == {"new": 1628, "updated": 0, "unchanged": 0}
    records = {r["id"]: r for r in map(json.loads, snapshot.read_text().splitlines())}
    articles = documents.find("articles")
    assert sorted(a["arxiv_id"] for a in articles) == sorted(stored_ids(store))
    for article in articles:
        assert article["raw"] == records[article["arxiv_id"]]
        assert article["paper"] == from_snapshot_record(article["raw"]).as_json()
    store.engine.dispose()


@pytest.mark.slow
def test_api_slice_fetches_the_window_then_only_the_overlap(
    corpus: list[dict], corpus_server: ArxivServer, store_url: str, tmp_path: Path
) -> None:
    end = UNTIL + timedelta(minutes=1)
    first = expected_ids(corpus, UNTIL - timedelta(days=3), end)

    report, store, documents = run_pipeline(
        api_source(corpus_server), store_url, API_PARAMS, tmp_path
    )

    assert sorted(stored_ids(store)) == sorted(first)
    assert (report["new"], report["fetched"], report["quarantined"]) == (len(first), len(first), 0)
    assert store.watermarks() == dict.fromkeys(CATEGORIES, end)
    assert report["articles"] == {"new": len(first), "updated": 0, "unchanged": 0}
    articles = documents.find("articles")
    assert sorted(a["arxiv_id"] for a in articles) == sorted(first)
    assert all(a["paper"] == from_api_entry(a["raw"]).as_json() for a in articles)

    later = UNTIL + timedelta(days=1)
    overlap = expected_ids(corpus, end - timedelta(hours=24), end)
    fresh = expected_ids(corpus, end, later + timedelta(minutes=1))
    assert overlap and fresh
    requests_before = len(corpus_server.requests)
    store.engine.dispose()

    report, store, documents = run_pipeline(
        api_source(corpus_server), store_url, {**API_PARAMS, "until": later.isoformat()}, tmp_path
    )

    assert (report["unchanged"], report["new"], report["updated"]) == (len(overlap), len(fresh), 0)
    assert report["articles"] == {"new": len(fresh), "updated": 0, "unchanged": len(overlap)}
    assert documents.count("articles") == len(first | fresh)
    ids = stored_ids(store)
    assert len(ids) == len(set(ids)) == len(first | fresh)
    assert store.watermarks() == dict.fromkeys(CATEGORIES, later + timedelta(minutes=1))
    queried = [
        lower_bound(r.params["search_query"]) for r in corpus_server.requests[requests_before:]
    ]
    overlap_start, fresh_start = (f"{t:%Y%m%d%H%M}" for t in (end - timedelta(hours=24), end))
    assert queried == [overlap_start] * pages(overlap) + [fresh_start] * pages(fresh)
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.ingestion_runs)).scalar() == 2
    store.engine.dispose()
