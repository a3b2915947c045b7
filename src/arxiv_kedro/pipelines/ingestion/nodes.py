"""Ingestion nodes: plan the API windows, fetch their pages, normalize and validate records into
paper batches (and their raw documents), report the run. The datasets do the I/O."""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from queue import Empty, Full
from typing import Any, TypeVar

from arxiv_kedro.papers import Paper, iso_datetime, normalize
from arxiv_kedro.sources import RawBatch
from arxiv_kedro.sources.arxiv_api import ArxivApiClient, Window, plan_windows
from arxiv_kedro.sources.snapshot import SnapshotFile
from arxiv_kedro.stores.relational.ingestion import PaperBatch

logger = logging.getLogger(__name__)
T = TypeVar("T")
READER = "ingestion-reader"  # the name of `prefetch`'s process


# --- the live API: plan, fetch -----------------------------------------------------------------


def plan_ingestion(watermarks: Mapping[str, datetime], params: dict[str, Any]) -> dict[str, Any]:
    """The windows to fetch from the API: each category from its watermark minus the overlap
    (or the look-back on its first run) up to `until` or now, sliced by `slice_hours`.

    Returns the plan as JSON data: its id (the moment it was made; it names the landing folder
    of its pages), the windows, and the description of the run it starts.
    """
    if not params.get("categories"):
        raise ValueError("ingestion.categories is empty: name the arXiv categories to fetch")
    made = datetime.now(UTC)
    until = params.get("until")
    windows = plan_windows(
        params["categories"],
        watermarks,
        now=iso_datetime(until, "until") if until else made,
        lookback=timedelta(days=params["lookback_days"]),
        overlap=timedelta(hours=params["overlap_hours"]),
        slice_length=timedelta(hours=params["slice_hours"]),
    )
    logger.info("Ingestion plan: %d windows from %s", len(windows), windows[0].start.isoformat())
    return {
        "id": made.strftime("%Y%m%dT%H%M%S%fZ"),
        "windows": [
            {
                "categories": list(w.categories),
                "start": w.start.isoformat(),
                "end": w.end.isoformat(),
            }
            for w in windows
        ],
    }


def _windows(plan: dict[str, Any]) -> list[Window]:
    return [
        Window(
            tuple(w["categories"]),
            datetime.fromisoformat(w["start"]),
            datetime.fromisoformat(w["end"]),
        )
        for w in plan["windows"]
    ]


def fetch_pages(client: ArxivApiClient, plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Ask the API for every window of the plan, page by page (the client keeps arXiv's pace and
    retries); each page, with the checkpoint it justifies, goes to the raw landing zone."""
    windows = _windows(plan)
    for number, window in enumerate(windows, start=1):
        logger.info("Window %d/%d: %s", number, len(windows), window.query())
        for page, batch in enumerate(client.fetch(window)):
            mark = batch.checkpoint
            yield {
                "plan_id": plan["id"],
                "window": number,
                "page": page,
                "query": window.query(),
                "total_results": client.total_results,
                "checkpoint": mark and {"categories": mark.categories, "through": mark.through},
                "records": batch.records,
            }


# --- normalize, validate, store ----------------------------------------------------------------


def store_fetched_papers(
    pages: Mapping[str, Callable[[], Iterator[RawBatch]]],
    plan: dict[str, Any],
) -> Iterator[tuple[list[dict[str, Any]], PaperBatch]]:
    """The plan's landed pages, normalized and validated, as (raw documents, paper batch) pairs:
    the documents are stored first, then the batch in one transaction with its watermark."""
    if plan["id"] not in pages:
        raise ValueError(
            f"no landed pages for ingestion plan {plan['id']}: run the fetch_pages node first"
        )
    windows = _windows(plan)
    run = {
        "source": "api",
        "detail": "; ".join(w.query() for w in windows),
        "window_start": windows[0].start,
        "window_end": windows[-1].end,
    }
    yield from _stored(pages[plan["id"]](), run, {}, lambda: "")


def store_snapshot_papers(
    snapshot: SnapshotFile, params: dict[str, Any]
) -> Iterator[tuple[list[dict[str, Any]], PaperBatch]]:
    """A bulk snapshot, streamed: the same normalization, validation and batches as the API's,
    limited by `snapshot_filter` (categories, published since/until)."""
    run = {"source": "snapshot", "detail": str(snapshot.path)}

    def progress() -> str:
        fraction = snapshot.fraction_read
        return f" ({fraction:.0%} of the file)" if fraction is not None else ""

    yield from _stored(snapshot.batches(), run, params.get("snapshot_filter") or {}, progress)


def _stored(
    batches: Iterator[RawBatch],
    run: dict[str, Any],
    filters: dict[str, Any],
    progress: Callable[[], str],
) -> Iterator[tuple[list[dict[str, Any]], PaperBatch]]:
    def prepared() -> Iterator[tuple[list[dict[str, Any]], PaperBatch]]:
        for batch in batches:
            papers, quarantined = normalize(batch.records, run["source"])
            papers, filtered = select_papers(
                papers, filters.get("categories") or (), filters.get("since"), filters.get("until")
            )
            yield (
                [article_document(paper, run["source"]) for paper in papers],
                PaperBatch(
                    run=run,
                    papers=papers,
                    quarantined=[*batch.rejected, *quarantined],
                    checkpoint=batch.checkpoint,
                    fetched=len(batch.records) + len(batch.rejected),
                    filtered=filtered,
                    progress=progress(),
                ),
            )

    for articles, batch in prefetch(prepared()):
        yield articles, batch
        # Both are saved once Kedro asks for the next chunk. Kedro splits a generator node's
        # outputs with itertools.tee, whose blocks keep up to 57 chunks alive (~2 GB of 5,000-
        # paper batches): emptied, the chunks it keeps cost nothing and memory stays flat.
        articles.clear()
        batch.papers.clear()
        batch.quarantined.clear()
    # The source is exhausted: this last, empty batch closes the run as succeeded.
    yield [], PaperBatch(run=run, papers=[], quarantined=[], checkpoint=None, fetched=0, last=True)


def article_document(paper: Paper, source: str) -> dict[str, Any]:
    """The `articles` document: the raw source record next to the normalized paper."""
    return {
        "arxiv_id": paper.arxiv_id,
        "version": paper.version,
        "source": source,
        "raw": paper.raw,
        "paper": paper.as_json(),
    }


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


def report_ingestion(run: dict[str, Any]) -> dict[str, Any]:
    """The newest ingestion run (its counts, status and speed) as the report's JSON."""
    seconds = run["duration_seconds"] or 0.0
    return {
        "run_id": run["id"],
        "source": run["source"],
        "detail": run["detail"],
        "status": run["status"],
        "started_at": run["started_at"].isoformat(),
        "finished_at": run["finished_at"] and run["finished_at"].isoformat(),
        "duration_seconds": round(seconds, 3),
        "papers_per_second": round(run["fetched"] / max(seconds, 1e-9), 1),
        **{
            k: run[k] for k in ("fetched", "new", "updated", "unchanged", "filtered", "quarantined")
        },
    }


# --- reading ahead in another process -----------------------------------------------------------


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

    producer = context.Process(target=produce, name=READER, daemon=True)
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
