"""Ingestion nodes: fetch raw records, normalize and validate them, upsert them batch by batch."""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from queue import Empty, Full
from typing import Any, TypeVar

from arxiv_kedro.papers import Paper, Quarantined, iso_datetime, normalize
from arxiv_kedro.sources import RawBatch
from arxiv_kedro.sources.arxiv_api import ArxivApiClient, Window, plan_windows
from arxiv_kedro.sources.snapshot import SnapshotFile
from arxiv_kedro.stores.documents import DocumentStore, UpsertCounts
from arxiv_kedro.stores.relational import Counts, PaperStore

logger = logging.getLogger(__name__)
T = TypeVar("T")


def matches_category(paper: Paper, wanted: frozenset[str]) -> bool:
    """True when one of the paper's categories, or its archive ('astro-ph' for 'astro-ph.GA'),
    is wanted."""
    return any(c in wanted or c.partition(".")[0] in wanted for c in paper.categories)


def _as_date(value: date | str | None) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else value


def select_papers(
    papers: Iterable[Paper],
    categories: Iterable[str] = (),
    since: date | str | None = None,
    until: date | str | None = None,
) -> tuple[list[Paper], int]:
    """Keep the papers inside the snapshot filters (published day within [since, until]);
    returns (kept, number filtered out)."""
    wanted = frozenset(categories)
    since, until = _as_date(since), _as_date(until)
    kept, dropped = [], 0
    for paper in papers:
        day = paper.published.date()
        if (
            (wanted and not matches_category(paper, wanted))
            or (since and day < since)
            or (until and day > until)
        ):
            dropped += 1
        else:
            kept.append(paper)
    return kept, dropped


def _portable(exc: BaseException) -> BaseException:
    """The exception itself if it survives pickling, else a RuntimeError carrying its text."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(f"{exc.__class__.__name__}: {exc}")
    return exc


def prefetch(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Run the generator `items` in a forked process and yield what it produces, `depth` ahead.

    Reading and normalizing batches is Python-heavy; in a thread it would fight the writer for
    the GIL. In its own process it runs on the other core while this one writes to the
    database. Errors in the producer are raised here; if the consumer stops, or this process
    dies, the producer stops too.
    """
    context = multiprocessing.get_context("fork")
    queue = context.Queue(maxsize=depth)
    parent = os.getpid()

    def put(item: object) -> None:
        while True:
            try:
                return queue.put(item, timeout=1.0)
            except Full:
                if os.getppid() != parent:  # orphaned: the consumer was killed
                    os._exit(1)

    def produce() -> None:
        try:
            for item in items:
                put(("item", item))
            put(("done", None))
        except BaseException as exc:
            put(("error", _portable(exc)))

    producer = context.Process(target=produce, name="ingestion-reader", daemon=True)
    producer.start()
    try:
        while True:
            try:
                kind, payload = queue.get(timeout=1.0)
            except Empty:
                if not producer.is_alive():
                    raise RuntimeError(
                        f"the reader process died (exit code {producer.exitcode})"
                    ) from None
                continue
            if kind == "done":
                break
            if kind == "error":
                raise payload
            yield payload
    finally:
        if producer.is_alive():
            producer.terminate()
        producer.join()
        queue.close()


class _Progress:
    """Logs running counts at most every `every` seconds, and the one-line summary at the end."""

    def __init__(self, label: str, every: float = 2.0):
        self.label = label
        self.every = every
        self.counts = Counts()
        self.started = time.monotonic()
        self._last = self.started

    @property
    def elapsed(self) -> float:
        return max(time.monotonic() - self.started, 1e-9)

    def add(self, counts: Counts, done: str = "") -> None:
        self.counts += counts
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            c = self.counts
            logger.info(
                "%s: %s fetched%s — %s new, %s updated, %s unchanged, %s quarantined — %s papers/s",
                self.label, f"{c.fetched:,}", done, f"{c.new:,}", f"{c.updated:,}",
                f"{c.unchanged:,}", f"{c.quarantined:,}", f"{c.fetched / self.elapsed:,.0f}",
            )  # fmt: skip

    def summary(self) -> str:
        c = self.counts
        filtered = f" / filtered out {c.filtered:,}" if c.filtered else ""
        return (
            f"{self.label}: fetched {c.fetched:,} / new {c.new:,} / updated {c.updated:,} / "
            f"unchanged {c.unchanged:,} / quarantined {c.quarantined:,}{filtered} / "
            f"{c.fetched / self.elapsed:,.0f} papers/s ({self.elapsed:.1f} s)"
        )


def _api_batches(client: ArxivApiClient, windows: list[Window]) -> Iterator[tuple[RawBatch, str]]:
    for number, window in enumerate(windows, start=1):
        logger.info("Window %d/%d: %s", number, len(windows), window.query())
        for batch in client.fetch(window):
            total = f" of {client.total_results:,}" if client.total_results else ""
            yield batch, f" (window {number}/{len(windows)}{total})"


def _snapshot_batches(snapshot: SnapshotFile) -> Iterator[tuple[RawBatch, str]]:
    for batch in snapshot.batches():
        fraction = snapshot.fraction_read
        yield batch, f" ({fraction:.0%} of the file)" if fraction is not None else ""


def article_document(paper: Paper, source: str) -> dict[str, Any]:
    """The `articles` document: the raw source record next to the normalized paper."""
    return {
        "arxiv_id": paper.arxiv_id,
        "version": paper.version,
        "source": source,
        "raw": paper.raw,
        "paper": paper.as_json(),
    }


def ingest_papers(
    source: ArxivApiClient | SnapshotFile,
    store: PaperStore,
    documents: DocumentStore,
    lock: AbstractContextManager,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Stream raw records from `source` into the stores and return the run's report.

    Every batch is normalized and validated (bad records quarantined with a reason); its raw
    records go to the document store (`articles`), then its papers are upserted in one
    transaction together with the watermark they justify. A crash at any point loses nothing:
    the next run redoes only uncommitted work, and both writes are idempotent. `lock` keeps two
    runs from overlapping; the run is recorded in `ingestion_runs`.
    """
    with lock:
        return _ingest(source, store, documents, params)


def _ingest(
    source: ArxivApiClient | SnapshotFile,
    store: PaperStore,
    documents: DocumentStore,
    params: dict[str, Any],
) -> dict[str, Any]:
    if isinstance(source, SnapshotFile):
        kind, detail, window = "snapshot", str(source.path), (None, None)
        batches = _snapshot_batches(source)
        filters = params.get("snapshot_filter") or {}
    else:
        until = params.get("until")
        windows = plan_windows(
            params["categories"],
            store.watermarks(),
            now=iso_datetime(until, "until") if until else datetime.now(UTC),
            lookback=timedelta(days=params["lookback_days"]),
            overlap=timedelta(hours=params["overlap_hours"]),
            slice_length=timedelta(hours=params["slice_hours"]),
        )
        kind, detail = "api", "; ".join(w.query() for w in windows)
        window = (windows[0].start, windows[-1].end) if windows else (None, None)
        batches = _api_batches(source, windows)
        filters = {}

    run_id = store.start_run(kind, detail, *window)
    progress = _Progress(f"Ingestion run {run_id} ({kind})")
    articles = UpsertCounts()
    logger.info("%s started: %s", progress.label, detail)

    def prepared() -> Iterator[tuple[RawBatch, str, list[Paper], list[Quarantined], int, list]]:
        for batch, done in batches:
            papers, quarantined = normalize(batch.records, kind)
            papers, filtered = select_papers(
                papers, filters.get("categories") or (), filters.get("since"), filters.get("until")
            )
            docs = [article_document(paper, kind) for paper in papers]
            yield batch, done, papers, quarantined, filtered, docs

    try:
        # The documents are written while the relational transaction does its work; it commits
        # (moving the watermark) only once they are stored.
        with ThreadPoolExecutor(1, thread_name_prefix="articles") as writer:
            for batch, done, papers, quarantined, filtered, docs in prefetch(prepared()):
                stored = writer.submit(documents.upsert_many, "articles", docs)
                counts = store.write_batch(
                    papers,
                    [*batch.rejected, *quarantined],
                    source=kind,
                    run_id=run_id,
                    checkpoint=batch.checkpoint,
                    fetched=len(batch.records) + len(batch.rejected),
                    filtered=filtered,
                    before_commit=stored.result,
                )
                articles += stored.result()
                progress.add(counts, done)
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        store.finish_run(run_id, status, error=f"{exc.__class__.__name__}: {exc}")
        logger.error("%s %s after %s", progress.label, status, progress.summary())
        raise
    run = store.finish_run(run_id, "succeeded")
    logger.info(progress.summary())
    return {
        "run_id": run_id,
        "source": kind,
        "detail": detail,
        "status": run["status"],
        "started_at": run["started_at"].isoformat(),
        "duration_seconds": round(run["duration_seconds"], 3),
        "papers_per_second": round(progress.counts.fetched / progress.elapsed, 1),
        **progress.counts.as_dict(),
        "articles": asdict(articles),
    }
