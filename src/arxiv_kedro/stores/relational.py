"""The relational store client: idempotent paper upserts, watermarks, runs and quarantine."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

import pandas as pd
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, and_, create_engine, event, func, or_, select, update
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
    return create_engine(parsed, pool_pre_ping=True, connect_args={"connect_timeout": 10})


def upsertable_insert(engine: Engine, table: Any) -> Any:
    """`INSERT` for the engine's dialect, with `on_conflict_do_update/nothing`."""
    return _INSERTS[engine.dialect.name](table)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def migrate(engine: Engine) -> None:
    """Bring the schema to the latest Alembic revision."""
    config = Config()
    config.set_main_option("script_location", str(files("arxiv_kedro.stores") / "migrations"))
    with engine.begin() as connection:
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
        """Close a run and return its row."""
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
        with self.engine.connect() as conn:
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
