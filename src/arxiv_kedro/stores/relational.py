"""The relational store client: idempotent paper upserts, watermarks, runs and quarantine."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import pandas as pd
from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Connection,
    Date,
    Engine,
    Float,
    and_,
    cast,
    create_engine,
    event,
    exists,
    func,
    literal_column,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from arxiv_kedro.papers import Paper, Quarantined
from arxiv_kedro.sources import Checkpoint
from arxiv_kedro.stores import StoreError, masked
from arxiv_kedro.stores.schema import (
    authors,
    ingestion_runs,
    paper_authors,
    paper_categories,
    papers,
    predictions,
    quarantine,
    watermarks,
)

_PAPER_COLUMNS = (
    "arxiv_id", "version", "title", "abstract", "primary_category", "published",
    "updated", "doi", "journal_ref", "comments", "abs_url", "pdf_url", "source", "content_hash",
    "first_seen_at", "last_changed_at",
)  # fmt: skip
_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
ANALYZE_AFTER = 10_000  # papers written by one run that make `finish_run` refresh statistics
SEARCH_CANDIDATES = 2_000  # relevance ranks the latest stored matches, at most this many
PREDICTION_COLUMNS = (
    "label",
    "probability",
    "label_2",
    "probability_2",
    "label_3",
    "probability_3",
)


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


def make_engine(url: str) -> Engine:
    """An engine for SQLite or PostgreSQL, with bounded connect time and sane SQLite pragmas."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")  # the driver we ship
    backend = parsed.get_backend_name()
    if backend not in _INSERTS:
        raise StoreError(f"unsupported database {masked(url)}: use sqlite:/// or postgresql://")
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(parsed, pool_pre_ping=True, connect_args={"connect_timeout": 10})
    event.listen(engine, "connect", _custom_plans)
    return engine


def read_only(engine: Engine) -> Engine:
    """The engine (same pool) for reads: on PostgreSQL in autocommit, without the BEGIN and
    ROLLBACK round trips around each (a third of an API read's time); SQLite sends neither."""
    if engine.dialect.name != "postgresql":
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def upsertable_insert(engine: Engine, table: Any) -> Any:
    """`INSERT` for the engine's dialect, with `on_conflict_do_update/nothing`."""
    return _INSERTS[engine.dialect.name](table)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _custom_plans(dbapi_connection: Any, _record: Any) -> None:
    """psycopg prepares a statement run 5 times, and PostgreSQL's generic plan for the search
    (words unknown) walks every paper: 220 ms a query instead of 5 to 50. (A setting, not the
    URL's `options`, which may already set e.g. the search_path.)"""
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = force_custom_plan")
    dbapi_connection.commit()


_MIGRATION_LOCK = 0x6172786976  # any constant: the advisory lock every migrating process takes


def migrate(engine: Engine) -> None:
    """Bring the schema to the latest Alembic revision.

    On PostgreSQL, processes starting together (pipelines, API workers) migrate one at a time.
    """
    config = Config()
    config.set_main_option("script_location", str(files("arxiv_kedro.stores") / "migrations"))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def author_id(name: str) -> int:
    """The author's key: a signed 64-bit hash of the exact name (collisions need ~4e9 names)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), signed=True)


def _fingerprint(item: Quarantined) -> str:
    blob = json.dumps([item.source, item.reason, item.raw], sort_keys=True, default=str)
    return hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()


class PaperStore:
    """Papers, authors and categories keyed by versionless arXiv id; re-ingesting is a no-op.

    A paper row changes only when a newer version arrives or the same version's metadata
    differs; an older version never overwrites a newer one.
    """

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.reads = read_only(self.engine)

    def __repr__(self) -> str:
        return f"PaperStore({masked(self.url)!r})"

    @classmethod
    def open(cls, url: str) -> PaperStore:
        """Connect and migrate; an unreachable database is a `StoreError` naming it."""
        store = cls(url)
        try:
            migrate(store.engine)
        except OperationalError as exc:
            raise StoreError(
                f"cannot use the relational store at {masked(url)}: {exc.orig or exc}"
            ) from exc
        return store

    def close(self) -> None:
        self.engine.dispose()

    def _insert(self, table: Any) -> Any:
        return upsertable_insert(self.engine, table)

    # --- watermarks and runs -------------------------------------------------------------

    def watermarks(self) -> dict[str, datetime]:
        """Per category, the moment up to which the API source is known to be complete."""
        query = select(watermarks.c.category, watermarks.c.through).where(
            watermarks.c.source == "api"
        )
        with self.engine.connect() as conn:
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
        with self.engine.begin() as conn:
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
        with self.engine.begin() as conn:
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
            row = conn.execute(select(ingestion_runs).where(ingestion_runs.c.id == run_id)).one()
        if self.engine.dialect.name == "postgresql" and row.new + row.updated >= ANALYZE_AFTER:
            with self.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                    "ANALYZE papers, paper_authors, paper_categories, authors"
                )
        return dict(row._mapping)

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
        before_commit: Callable[[], object] | None = None,
    ) -> Counts:
        """Upsert papers, keep rejected records, advance the watermark — in one transaction.

        `batch` must hold each arxiv_id once (see `papers.normalize`). The watermark moves only
        with the papers that justify it, so a crash at any point loses nothing.
        `before_commit` runs last inside the transaction: if it raises, nothing is committed.
        """
        counts = Counts(fetched=fetched, filtered=filtered, quarantined=len(rejected))
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
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
            if before_commit is not None:
                before_commit()
        return counts

    def _changed_papers(self, conn: Connection, batch: Sequence[Paper], counts: Counts) -> list:
        stored = {
            arxiv_id: (paper_id, version, updated, digest)
            for arxiv_id, paper_id, version, updated, digest in self._rows_where_in(
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
        self._bulk_insert(conn, papers, _PAPER_COLUMNS, new_rows)
        self._bulk_insert(
            conn, papers, _PAPER_COLUMNS, changed_rows, conflict=("arxiv_id",), update=changing
        )
        arxiv_ids = [p.arxiv_id for p, _, _ in to_write]
        paper_ids = dict(self._rows_where_in(conn, papers, ("arxiv_id", "id"), arxiv_ids))
        replaced = [paper_id for _, _, paper_id in to_write if paper_id is not None]
        if replaced:
            for link_table in (paper_authors, paper_categories):
                self._delete_where_in(conn, link_table, "paper_id", replaced)

        # sorted: concurrent writers then take row locks in the same order, never deadlocking
        author_ids = {
            name: author_id(name) for name in sorted({n for p, _, _ in to_write for n in p.authors})
        }
        self._bulk_insert(
            conn, authors, ("id", "name"), [(i, n) for n, i in author_ids.items()], conflict=("id",)
        )
        self._bulk_insert(
            conn,
            paper_authors,
            ("paper_id", "position", "author_id"),
            [
                (paper_ids[p.arxiv_id], position, author_ids[name])
                for p, _, _ in to_write
                for position, name in enumerate(p.authors)
            ],
        )
        self._bulk_insert(
            conn,
            paper_categories,
            ("paper_id", "category", "is_primary"),
            [
                (paper_ids[p.arxiv_id], category, i == 0)
                for p, _, _ in to_write
                for i, category in enumerate(p.categories)
            ],
        )

    # The hot paths below talk to the driver directly: per-row SQLAlchemy parameter processing
    # cost more than the database itself (a 3x difference on the 72k-paper backfill).

    def _in_list(self, conn: Connection, column: str, values: Sequence[Any]) -> tuple[str, Any]:
        """`column IN <one parameter holding every value>` for SQLite and PostgreSQL."""
        if conn.dialect.name == "sqlite":
            return f"{column} IN (SELECT value FROM json_each(?))", json.dumps(list(values))
        return f"{column} = ANY(%s)", list(values)

    def _rows_where_in(
        self, conn: Connection, table: Any, columns: Sequence[str], keys: Sequence[Any]
    ) -> list[tuple]:
        if not keys:
            return []
        condition, param = self._in_list(conn, columns[0], keys)
        sql = f"SELECT {', '.join(columns)} FROM {table.name} WHERE {condition}"
        processors = [table.c[c].type._cached_result_processor(conn.dialect, None) for c in columns]
        rows = conn.exec_driver_sql(sql, (param,)).all()
        if not any(processors):
            return [tuple(row) for row in rows]
        return [
            tuple(f(v) if f else v for f, v in zip(processors, row, strict=True)) for row in rows
        ]

    def _delete_where_in(self, conn: Connection, table: Any, column: str, keys: Sequence[Any]):
        condition, param = self._in_list(conn, column, keys)
        conn.exec_driver_sql(f"DELETE FROM {table.name} WHERE {condition}", (param,))

    def _bulk_insert(
        self,
        conn: Connection,
        table: Any,
        columns: Sequence[str],
        rows: list[tuple],
        conflict: Sequence[str] = (),
        update: Sequence[str] = (),
    ) -> None:
        """INSERT rows; on a `conflict` key, update the `update` columns from the incoming row,
        or keep the existing row when `update` is empty.

        PostgreSQL gets the rows through COPY (into a staging table when conflicts are possible),
        SQLite through executemany.
        """
        if not rows:
            return
        quote = conn.dialect.identifier_preparer.quote
        names = ", ".join(map(quote, columns))
        on_conflict = ""
        if conflict:
            sets = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in update)
            on_conflict = f" ON CONFLICT ({', '.join(conflict)}) " + (
                f"DO UPDATE SET {sets}" if update else "DO NOTHING"
            )
        if conn.dialect.name == "postgresql":
            with conn.connection.driver_connection.cursor() as cursor:
                target = table.name
                if conflict:
                    target = f"staging_{table.name}"
                    cursor.execute(
                        f"CREATE TEMP TABLE IF NOT EXISTS {target} ON COMMIT DROP AS "
                        f"SELECT {names} FROM {table.name} WITH NO DATA"
                    )
                with cursor.copy(f"COPY {target} ({names}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                if conflict:
                    cursor.execute(
                        f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {target}"
                        f"{on_conflict}; TRUNCATE {target}"
                    )
            return
        for i, column in enumerate(columns):
            process = table.c[column].type._cached_bind_processor(conn.dialect)
            if process is not None:  # datetimes and booleans
                rows = [(*row[:i], process(row[i]), *row[i + 1 :]) for row in rows]
        placeholders = ", ".join("?" * len(columns))
        conn.exec_driver_sql(
            f"INSERT INTO {table.name} ({names}) VALUES ({placeholders}){on_conflict}", rows
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
        insert = self._insert(quarantine)
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
            insert = self._insert(watermarks)
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

    # --- reads ---------------------------------------------------------------------------

    def count(self, table: Any = papers) -> int:
        with self.reads.connect() as conn:
            return conn.execute(select(func.count()).select_from(table)).scalar_one()

    def labeled_papers(self) -> pd.DataFrame:
        """Every paper's text with arXiv's primary category as `label`, oldest first."""
        query = select(
            papers.c.arxiv_id,
            papers.c.title,
            papers.c.abstract,
            papers.c.primary_category.label("label"),
            papers.c.published,
        ).order_by(papers.c.published, papers.c.arxiv_id)
        with self.engine.connect() as conn:
            frame = pd.DataFrame(
                conn.execute(query).all(), columns=list(query.selected_columns.keys())
            )
        frame["published"] = pd.to_datetime(frame["published"], utc=True)
        return frame

    # --- predictions ---------------------------------------------------------------------

    def papers_to_predict(
        self, model_name: str, model_version: str, *, after_id: int = 0, limit: int = 5000
    ) -> pd.DataFrame:
        """Papers with no prediction from this model version for their current content.

        Keyset-paged by paper id: pass the last id seen as `after_id` for the next page.
        """
        current = and_(
            predictions.c.paper_id == papers.c.id, predictions.c.model_name == model_name
        )
        query = (
            select(papers.c.id, papers.c.title, papers.c.abstract, papers.c.content_hash)
            .outerjoin(predictions, current)
            .where(
                papers.c.id > after_id,
                or_(
                    predictions.c.paper_id.is_(None),
                    predictions.c.model_version != model_version,
                    predictions.c.content_hash != papers.c.content_hash,
                ),
            )
            .order_by(papers.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return pd.DataFrame(
                conn.execute(query).all(), columns=list(query.selected_columns.keys())
            )

    def save_predictions(self, model_name: str, model_version: str, frame: pd.DataFrame) -> int:
        """Upsert predictions; `frame` has `id`, `content_hash` and `PREDICTION_COLUMNS`."""
        if frame.empty:
            return 0
        now = datetime.now(UTC)
        columns = ("paper_id", "model_name", "model_version", "content_hash", *PREDICTION_COLUMNS)
        rows = [
            (int(row[0]), model_name, model_version, row[1], *row[2:], now)
            for row in frame[["id", "content_hash", *PREDICTION_COLUMNS]].itertuples(
                index=False, name=None
            )
        ]
        with self.engine.begin() as conn:
            self._bulk_insert(
                conn,
                predictions,
                (*columns, "predicted_at"),
                rows,
                conflict=("paper_id", "model_name"),
                update=(*columns[2:], "predicted_at"),
            )
        return len(rows)

    def iter_papers(self, batch_size: int = 1000) -> Iterator[list[dict[str, Any]]]:
        """Every paper's id, version and text, most recently stored first, in batches."""
        columns = (papers.c.id, papers.c.arxiv_id, papers.c.version, papers.c.title)
        query = select(*columns, papers.c.abstract).order_by(papers.c.id.desc()).limit(batch_size)
        before = None
        while True:
            page = query if before is None else query.where(papers.c.id < before)
            with self.engine.connect() as conn:
                rows = [dict(row._mapping) for row in conn.execute(page)]
            if not rows:
                return
            yield rows
            before = rows[-1]["id"]

    # --- reads for the REST API ------------------------------------------------------------

    def list_papers(
        self,
        *,
        model_name: str,
        category: str | None = None,
        published_from: datetime | None = None,
        published_before: datetime | None = None,
        after: tuple[datetime, int] | None = None,
        limit: int = 20,
    ) -> list[dict[str, Any]]:
        """Papers newest first (by publication, then id), with authors, categories and the
        model's top prediction. Keyset-paged: pass the last row's `(published, id)` as `after`.
        """
        query = select(*_LISTED).order_by(papers.c.published.desc(), papers.c.id.desc())
        if category is not None:
            query = query.where(
                exists().where(
                    paper_categories.c.paper_id == papers.c.id,
                    paper_categories.c.category == category,
                )
            )
        if published_from is not None:
            query = query.where(papers.c.published >= published_from)
        if published_before is not None:
            query = query.where(papers.c.published < published_before)
        if after is not None:
            query = query.where(tuple_(papers.c.published, papers.c.id) < tuple_(*after))
        with self.reads.connect() as conn:
            rows = [dict(row._mapping) for row in conn.execute(query.limit(limit))]
            return self._with_details(conn, rows, model_name)

    def get_paper(self, arxiv_id: str, *, model_name: str) -> dict[str, Any] | None:
        """One paper by versionless id, every column plus authors, categories, prediction —
        in one query: the API's hottest read (one round trip instead of four)."""
        with self.reads.connect() as conn:
            dialect = conn.dialect.name
            row = conn.execute(_GET_PAPER[dialect], {"arxiv_id": arxiv_id, "model": model_name})
            found = row.mappings().first()
        if found is None:
            return None
        paper = {k: found[k] for k in (*_LISTED_NAMES, *_DETAIL_NAMES)}
        for name in ("authors", "categories"):
            paper[name] = json.loads(found[name]) if dialect == "sqlite" else found[name]
        paper["prediction"] = (
            None
            if found["model_version"] is None
            else {"paper_id": found["id"], **{c.name: found[c.name] for c in _PREDICTED}}
        )
        return paper

    def search(
        self,
        query_text: str,
        *,
        model_name: str,
        limit: int = 20,
        offset: int = 0,
        candidates: int = SEARCH_CANDIDATES,
    ) -> list[dict[str, Any]]:
        """Papers matching every word (and "quoted phrase") of `query_text` in their title or
        abstract, best first, each with a relevance `score` (higher is better; comparable within
        one query). PostgreSQL: `websearch_to_tsquery` over a weighted tsvector, `ts_rank_cd`;
        SQLite: FTS5 with BM25. Relevance ranks the `candidates` matches stored last (the
        highest ids, new papers): ranking reads every candidate, and a word in a third of the
        store would cost 200 ms.
        Raises ValueError when the text holds no word to search for.
        """
        with self.reads.connect() as conn:
            if conn.dialect.name == "postgresql":
                # The same quoted terms: websearch_to_tsquery then reads every word literally,
                # as FTS5 does (unquoted, `or` and a leading `-` would be operators).
                sql, params = _SEARCH_POSTGRESQL, {"q": fts5_query(query_text)}
            else:
                sql, params = _SEARCH_SQLITE, {"match": fts5_query(query_text)}
            query = text(sql).columns(*_LISTED, literal_column("score", Float))
            found = conn.execute(
                query, {**params, "candidates": candidates, "limit": limit, "offset": offset}
            )
            rows = [dict(row._mapping) for row in found]
            return self._with_details(conn, rows, model_name)

    def category_counts(self) -> list[tuple[str, int, int]]:
        """(category, papers with it as primary, papers cross-listed in it), most papers first."""
        primary = select(papers.c.primary_category, func.count()).group_by(
            papers.c.primary_category
        )
        cross = (
            select(paper_categories.c.category, func.count())
            .where(paper_categories.c.is_primary.is_(False))
            .group_by(paper_categories.c.category)
        )
        with self.reads.connect() as conn:
            counts = {c: [n, 0] for c, n in conn.execute(primary)}
            for category, n in conn.execute(cross):
                counts.setdefault(category, [0, 0])[1] = n
        return sorted(
            ((c, p, x) for c, (p, x) in counts.items()),
            key=lambda item: (-item[1], -item[2], item[0]),
        )

    def stats(self, *, model_name: str, days: int = 90) -> dict[str, Any]:
        """Totals, the latest ingestion run and papers per publication day and primary category
        over the `days` up to the newest paper."""
        with self.reads.connect() as conn:
            latest = conn.execute(select(func.max(papers.c.published))).scalar_one()
            per_day: list[dict[str, Any]] = []
            if latest is not None:
                day = (
                    func.date(papers.c.published)
                    if conn.dialect.name == "sqlite"
                    else cast(func.timezone("UTC", papers.c.published), Date)
                )
                since = latest - timedelta(days=days)
                query = (
                    select(day.label("day"), papers.c.primary_category, func.count())
                    .where(papers.c.published > since)
                    .group_by(day, papers.c.primary_category)
                    .order_by(day, papers.c.primary_category)
                )
                per_day = [
                    {"day": str(d), "category": c, "papers": n} for d, c, n in conn.execute(query)
                ]
            last_run = conn.execute(
                select(ingestion_runs)
                .where(ingestion_runs.c.finished_at.is_not(None))
                .order_by(ingestion_runs.c.finished_at.desc())
                .limit(1)
            ).first()
            return {
                "papers": conn.execute(select(func.count()).select_from(papers)).scalar_one(),
                "predictions": conn.execute(
                    select(func.count())
                    .select_from(predictions)
                    .where(predictions.c.model_name == model_name)
                ).scalar_one(),
                "quarantined": conn.execute(
                    select(func.count()).select_from(quarantine)
                ).scalar_one(),
                "latest_published": latest,
                "last_ingestion": None if last_run is None else dict(last_run._mapping),
                "papers_per_day": per_day,
            }

    def _with_details(
        self, conn: Connection, rows: list[dict[str, Any]], model_name: str
    ) -> list[dict[str, Any]]:
        """Each row with its `authors` (in order), `categories` (primary first) and
        `prediction` (the model's stored answer, or None)."""
        if not rows:
            return rows
        ids = [row["id"] for row in rows]
        condition, param = self._in_list(conn, "l.paper_id", ids)
        authors_of: dict[int, list[str]] = {i: [] for i in ids}
        for paper_id, name in conn.exec_driver_sql(
            "SELECT l.paper_id, a.name FROM paper_authors l JOIN authors a ON a.id = l.author_id "
            f"WHERE {condition} ORDER BY l.paper_id, l.position",
            (param,),
        ):
            authors_of[paper_id].append(name)
        categories_of: dict[int, list[str]] = {i: [] for i in ids}
        for paper_id, category in conn.exec_driver_sql(
            f"SELECT l.paper_id, l.category FROM paper_categories l WHERE {condition} "
            "ORDER BY l.paper_id, l.is_primary DESC, l.category",
            (param,),
        ):
            categories_of[paper_id].append(category)
        found = conn.execute(
            select(predictions).where(
                predictions.c.model_name == model_name, predictions.c.paper_id.in_(ids)
            )
        )
        predicted = {row.paper_id: dict(row._mapping) for row in found}
        for row in rows:
            row["authors"] = authors_of[row["id"]]
            row["categories"] = categories_of[row["id"]]
            row["prediction"] = predicted.get(row["id"])
        return rows


_LISTED = (
    papers.c.id, papers.c.arxiv_id, papers.c.version, papers.c.title, papers.c.primary_category,
    papers.c.published, papers.c.updated, papers.c.abs_url, papers.c.pdf_url,
    papers.c.content_hash,
)  # fmt: skip
_DETAIL = (papers.c.abstract, papers.c.doi, papers.c.journal_ref, papers.c.comments)
_LISTED_NAMES = [c.name for c in _LISTED]
_DETAIL_NAMES = [c.name for c in _DETAIL]
_PREDICTED = [c for c in predictions.c if c.name not in ("paper_id", "content_hash")]
_AUTHORS = (
    "SELECT a.name FROM paper_authors l JOIN authors a ON a.id = l.author_id "
    "WHERE l.paper_id = papers.id ORDER BY l.position"
)
_CATEGORIES = (
    "SELECT c.category AS name FROM paper_categories c WHERE c.paper_id = papers.id "
    "ORDER BY c.is_primary DESC, c.category"
)
_GET_PAPER_SQL = """
SELECT {columns}, {prediction}, {authors} AS authors, {categories} AS categories
FROM papers LEFT JOIN predictions ON predictions.paper_id = papers.id
    AND predictions.model_name = :model
WHERE papers.arxiv_id = :arxiv_id
"""
_GET_PAPER = {
    dialect: text(
        _GET_PAPER_SQL.format(
            columns=", ".join(f"papers.{c.name}" for c in (*_LISTED, *_DETAIL)),
            prediction=", ".join(f"predictions.{c.name}" for c in _PREDICTED),
            authors=aggregate.format(_AUTHORS),
            categories=aggregate.format(_CATEGORIES),
        )
    ).columns(*_LISTED, *_DETAIL, *_PREDICTED)
    for dialect, aggregate in (
        ("postgresql", "ARRAY({})"),
        ("sqlite", "(SELECT json_group_array(name) FROM ({}))"),
    )
}
_COLUMNS = ", ".join(f"papers.{c.name}" for c in _LISTED)
# The query in a MATERIALIZED CTE hides its words from the planner, which then reads the GIN
# index: with them in sight, it walks the primary key backwards for words it thinks common,
# which takes 100 ms when their papers are old (measured on the 72k daily snapshot).
_SEARCH_POSTGRESQL = f"""
WITH q AS MATERIALIZED (SELECT websearch_to_tsquery('english'::regconfig, :q) AS q),
candidates AS (
    SELECT papers.id FROM papers, q WHERE papers.search_vector @@ q.q
    ORDER BY papers.id DESC LIMIT :candidates)
SELECT {_COLUMNS}, ts_rank_cd(papers.search_vector, q.q) AS score
FROM candidates JOIN papers ON papers.id = candidates.id, q
ORDER BY score DESC, papers.published DESC, papers.id DESC LIMIT :limit OFFSET :offset
"""
# Ranked inside FTS5, which reads its rowids (paper ids) newest first without a sort.
_SEARCH_SQLITE = f"""
WITH candidates AS (
    SELECT rowid AS id, -bm25(papers_fts, 4.0, 1.0) AS score FROM papers_fts
    WHERE papers_fts MATCH :match ORDER BY rowid DESC LIMIT :candidates)
SELECT {_COLUMNS}, candidates.score AS score
FROM candidates JOIN papers ON papers.id = candidates.id
ORDER BY score DESC, papers.published DESC, papers.id DESC LIMIT :limit OFFSET :offset
"""
_WORD = re.compile(r"\w+")
_TERM = re.compile(r'"([^"]*)"|(\w+)')


def fts5_query(text_: str) -> str:
    """An FTS5 MATCH expression for a user's search text: every word and "quoted phrase" must
    match. Only word characters reach FTS5, so no input can be a query-syntax error or operator.
    """
    terms = []
    for phrase, word in _TERM.findall(text_):
        words = _WORD.findall(phrase or word)
        if words:
            terms.append('"' + " ".join(words) + '"')
    if not terms:
        raise ValueError("the search text holds no word to look for")
    return " ".join(terms)
