"""Ingestion's writes: paper batches upserted in one transaction with their quarantined records,
the run's counts and the watermark they justify; runs and watermarks."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select, update

from arxiv_kedro.papers import Paper, Quarantined
from arxiv_kedro.sources import Checkpoint
from arxiv_kedro.stores.relational.engine import (
    Database,
    bulk_insert,
    delete_where_in,
    rows_where_in,
    upsertable_insert,
)
from arxiv_kedro.stores.schema import (
    authors,
    ingestion_runs,
    paper_authors,
    paper_categories,
    papers,
    quarantine,
    watermarks,
)

_PAPER_COLUMNS = (
    "arxiv_id", "version", "title", "abstract", "primary_category", "published",
    "updated", "doi", "journal_ref", "comments", "abs_url", "pdf_url", "source", "content_hash",
    "first_seen_at", "last_changed_at",
)  # fmt: skip
ANALYZE_AFTER = 10_000  # papers written by one run that make `finish_run` refresh statistics


@dataclass
class PaperBatch:
    """One transaction's worth of ingestion: normalized papers (each arxiv_id once), the records
    quarantined on the way, the watermark `checkpoint` they justify, how many raw records were
    read and how many the snapshot filters left out. `run` describes the ingestion run (source,
    detail, window_start, window_end); `progress` says how far the source is read; the `last`
    batch of a run (empty) says the source is exhausted."""

    run: dict[str, Any]
    papers: list[Paper]
    quarantined: list[Quarantined]
    checkpoint: Checkpoint | None
    fetched: int
    filtered: int = 0
    progress: str = ""
    last: bool = False


@dataclass
class Counts:
    """What a run (or one batch of it) did to the store."""

    fetched: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    filtered: int = 0
    quarantined: int = 0

    def __iadd__(self, other: Counts) -> Counts:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def author_id(name: str) -> int:
    """The author's key: a signed 64-bit hash of the exact name (collisions need ~4e9 names)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), signed=True)


def _fingerprint(item: Quarantined) -> str:
    blob = json.dumps([item.source, item.reason, item.raw], sort_keys=True, default=str)
    return hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()


class IngestionStore:
    """Papers, authors and categories keyed by versionless arXiv id; re-ingesting is a no-op.

    A paper row changes only when a newer version arrives or the same version's metadata
    differs; an older version never overwrites a newer one.
    """

    def __init__(self, db: Database):
        self.db = db

    def __repr__(self) -> str:
        return f"IngestionStore({self.db!r})"

    # --- watermarks and runs -------------------------------------------------------------

    def watermarks(self) -> dict[str, datetime]:
        """Per category, the moment up to which the API source is known to be complete."""
        query = select(watermarks.c.category, watermarks.c.through).where(
            watermarks.c.source == "api"
        )
        with self.db.engine.connect() as conn:
            return dict(conn.execute(query).all())

    def start_run(
        self,
        source: str,
        detail: str,
        window_start: datetime | None = None,
        window_end: datetime | None = None,
    ) -> int:
        """Record a run as running; runs left running by a killed process become interrupted."""
        now = datetime.now(UTC)
        with self.db.engine.begin() as conn:
            conn.execute(
                update(ingestion_runs)
                .where(ingestion_runs.c.status == "running")
                .values(status="interrupted", error="the process ended before the run finished")
            )
            return conn.execute(
                ingestion_runs.insert()
                .values(
                    source=source,
                    detail=detail,
                    window_start=window_start,
                    window_end=window_end,
                    status="running",
                    started_at=now,
                    **Counts().as_dict(),
                )
                .returning(ingestion_runs.c.id)
            ).scalar_one()

    def finish_run(self, run_id: int, status: str, error: str | None = None) -> dict[str, Any]:
        """Close a run and return its row. After a large run, PostgreSQL's planner statistics
        are refreshed at once: until autovacuum gets to it, reads plan as if tables were empty
        (40 ms instead of 1 ms to read a page of papers after a backfill)."""
        now = datetime.now(UTC)
        with self.db.engine.begin() as conn:
            started = conn.execute(
                select(ingestion_runs.c.started_at).where(ingestion_runs.c.id == run_id)
            ).scalar_one()
            conn.execute(
                update(ingestion_runs)
                .where(ingestion_runs.c.id == run_id)
                .values(
                    status=status,
                    error=error,
                    finished_at=now,
                    duration_seconds=(now - started).total_seconds(),
                )
            )
            query = select(ingestion_runs).where(ingestion_runs.c.id == run_id)
            row = dict(conn.execute(query).mappings().one())
        if (
            self.db.engine.dialect.name == "postgresql"
            and row["new"] + row["updated"] >= ANALYZE_AFTER
        ):
            with self.db.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                    "ANALYZE papers, paper_authors, paper_categories, authors"
                )
        return row

    def latest_run(self) -> dict[str, Any] | None:
        """The newest ingestion run's row, or None before the first."""
        query = select(ingestion_runs).order_by(ingestion_runs.c.id.desc()).limit(1)
        with self.db.reads.connect() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else dict(row)

    # --- the batch write -----------------------------------------------------------------

    def write_batch(
        self,
        batch: Sequence[Paper],
        rejected: Sequence[Quarantined] = (),
        *,
        source: str,
        run_id: int | None = None,
        checkpoint: Checkpoint | None = None,
        fetched: int = 0,
        filtered: int = 0,
    ) -> Counts:
        """Upsert papers, keep rejected records, advance the watermark — in one transaction.

        `batch` must hold each arxiv_id once (see `papers.normalize`). The watermark moves only
        with the papers that justify it, so a crash at any point loses nothing.
        """
        counts = Counts(fetched=fetched, filtered=filtered, quarantined=len(rejected))
        now = datetime.now(UTC)
        with self.db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # A server crash may lose the last commits, never consistency: the watermark
                # commits with its papers, and the next run refetches what was lost.
                conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            if batch:
                to_write = self._changed_papers(conn, batch, counts)
                if to_write:
                    self._upsert_papers(conn, to_write, source, now)
            if rejected:
                self._quarantine(conn, rejected, run_id, now)
            if checkpoint is not None:
                self._advance(conn, checkpoint, now)
            if run_id is not None:
                conn.execute(
                    update(ingestion_runs)
                    .where(ingestion_runs.c.id == run_id)
                    .values(
                        {
                            getattr(ingestion_runs.c, name): getattr(ingestion_runs.c, name) + value
                            for name, value in counts.as_dict().items()
                        }
                    )
                )
        return counts

    def _changed_papers(self, conn: Connection, batch: Sequence[Paper], counts: Counts) -> list:
        stored = {
            arxiv_id: (paper_id, version, updated, digest)
            for arxiv_id, paper_id, version, updated, digest in rows_where_in(
                conn,
                papers,
                ("arxiv_id", "id", "version", "updated", "content_hash"),
                [paper.arxiv_id for paper in batch],
            )
        }
        to_write = []
        for paper in batch:
            digest = paper.content_hash()
            known = stored.get(paper.arxiv_id)
            if known is None:
                counts.new += 1
            elif (paper.version, paper.updated) < known[1:3] or digest == known[3]:
                counts.unchanged += 1
                continue
            else:
                counts.updated += 1
            to_write.append((paper, digest, known[0] if known else None))
        return to_write

    def _upsert_papers(
        self,
        conn: Connection,
        to_write: list[tuple[Paper, str, int | None]],
        source: str,
        now: datetime,
    ) -> None:
        # New papers are plain inserts (PostgreSQL: COPY straight into the table); a concurrent
        # writer inserting the same paper would fail this batch loudly, never duplicate it.
        new_rows, changed_rows = [], []
        for p, digest, paper_id in to_write:
            (changed_rows if paper_id else new_rows).append(
                (
                    *(p.arxiv_id, p.version, p.title, p.abstract, p.primary_category, p.published),
                    *(p.updated, p.doi, p.journal_ref, p.comments, p.abs_url, p.pdf_url, source),
                    *(digest, now, now),
                )
            )
        changing = [c for c in _PAPER_COLUMNS if c not in ("arxiv_id", "first_seen_at")]
        bulk_insert(conn, papers, _PAPER_COLUMNS, new_rows)
        bulk_insert(
            conn, papers, _PAPER_COLUMNS, changed_rows, conflict=("arxiv_id",), update=changing
        )
        arxiv_ids = [p.arxiv_id for p, _, _ in to_write]
        paper_ids = dict(rows_where_in(conn, papers, ("arxiv_id", "id"), arxiv_ids))
        replaced = [paper_id for _, _, paper_id in to_write if paper_id is not None]
        if replaced:
            for link_table in (paper_authors, paper_categories):
                delete_where_in(conn, link_table, "paper_id", replaced)

        # sorted: concurrent writers then take row locks in the same order, never deadlocking
        author_ids = {
            name: author_id(name) for name in sorted({n for p, _, _ in to_write for n in p.authors})
        }
        bulk_insert(
            conn, authors, ("id", "name"), [(i, n) for n, i in author_ids.items()], conflict=("id",)
        )
        bulk_insert(
            conn,
            paper_authors,
            ("paper_id", "position", "author_id"),
            [
                (paper_ids[p.arxiv_id], position, author_ids[name])
                for p, _, _ in to_write
                for position, name in enumerate(p.authors)
            ],
        )
        bulk_insert(
            conn,
            paper_categories,
            ("paper_id", "category", "is_primary"),
            [
                (paper_ids[p.arxiv_id], category, i == 0)
                for p, _, _ in to_write
                for i, category in enumerate(p.categories)
            ],
        )

    def _quarantine(
        self, conn: Connection, rejected: Iterable[Quarantined], run_id: int | None, now: datetime
    ) -> None:
        rows = {
            _fingerprint(item): {
                "fingerprint": _fingerprint(item),
                "source": item.source,
                "record_key": item.record_key,
                "reason": item.reason,
                "raw": item.raw,
                "run_id": run_id,
                "first_seen_at": now,
                "last_seen_at": now,
                "times_seen": 1,
            }
            for item in rejected
        }
        insert = upsertable_insert(self.db.engine, quarantine)
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=["fingerprint"],
                set_={
                    "run_id": insert.excluded.run_id,
                    "last_seen_at": insert.excluded.last_seen_at,
                    "times_seen": quarantine.c.times_seen + 1,
                },
            ),
            list(rows.values()),
        )

    def _advance(self, conn: Connection, checkpoint: Checkpoint, now: datetime) -> None:
        current = self._watermarks_in(conn, checkpoint.categories)
        moved = [
            {"source": "api", "category": c, "through": checkpoint.through, "updated_at": now}
            for c in checkpoint.categories
            if c not in current or current[c] < checkpoint.through
        ]
        if moved:
            insert = upsertable_insert(self.db.engine, watermarks)
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["source", "category"],
                    set_={"through": insert.excluded.through, "updated_at": now},
                ),
                moved,
            )

    @staticmethod
    def _watermarks_in(conn: Connection, categories: Sequence[str]) -> dict[str, datetime]:
        query = select(watermarks.c.category, watermarks.c.through).where(
            watermarks.c.source == "api", watermarks.c.category.in_(categories)
        )
        return dict(conn.execute(query).all())
