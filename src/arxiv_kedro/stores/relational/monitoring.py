"""What the monitoring pipeline reads (papers of a window with a model's predictions, the feed,
the ingestion runs' quarantine) and writes (one row per monitoring run), and the API reads back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import and_, func, select

from arxiv_kedro.stores.relational.engine import Database, bulk_insert
from arxiv_kedro.stores.schema import ingestion_runs, monitoring_runs, papers, predictions

RUN_COLUMNS = tuple(column.name for column in monitoring_runs.columns)


class MonitoringStore:
    """Reads of the monitoring pipeline and the monitoring runs' time series."""

    def __init__(self, db: Database):
        self.db = db

    def __repr__(self) -> str:
        return f"MonitoringStore({self.db!r})"

    def newest_published(self) -> datetime | None:
        """When the newest stored paper was published (None: the store is empty)."""
        with self.db.reads.connect() as conn:
            newest = conn.execute(select(func.max(papers.c.published))).scalar()
        return newest  # aware: max() keeps the column's type (UTCDateTime)

    def window(
        self, start: datetime, end: datetime, model_name: str, limit: int | None = None
    ) -> pd.DataFrame:
        """Papers published in [start, end) — `arxiv_id, title, abstract, category, published`
        — with `model_name`'s prediction (`model_version`, the top-3 labels and probabilities;
        null when it has none). Over `limit` papers, an even sample of exactly `limit`: in id
        (ingestion) order, the i-th paper is kept when ⌊i·limit/n⌋ steps up."""
        where = and_(papers.c.published >= start, papers.c.published < end)
        if limit is not None:
            with self.db.reads.connect() as conn:
                found = conn.execute(select(func.count()).where(where)).scalar_one()
            if found > limit:
                rank = func.row_number().over(order_by=papers.c.id).label("rank")
                ranked = select(papers.c.id, rank).where(where).subquery()
                step = (ranked.c.rank * limit) // found != ((ranked.c.rank - 1) * limit) // found
                where = papers.c.id.in_(select(ranked.c.id).where(step))
        query = (
            select(
                papers.c.arxiv_id,
                papers.c.title,
                papers.c.abstract,
                papers.c.primary_category.label("category"),
                papers.c.published,
                predictions.c.model_version,
                predictions.c.label,
                predictions.c.probability,
                predictions.c.label_2,
                predictions.c.label_3,
            )
            .outerjoin(
                predictions,
                and_(
                    predictions.c.paper_id == papers.c.id,
                    predictions.c.model_name == model_name,
                    predictions.c.content_hash == papers.c.content_hash,
                ),
            )
            .where(where)
            .order_by(papers.c.published, papers.c.id)
        )
        frame = self._frame(query)
        frame["published"] = pd.to_datetime(frame["published"], utc=True)
        return frame

    def feed(self, start: datetime, end: datetime) -> pd.DataFrame:
        """`published, category` of every paper published in [start, end)."""
        query = select(papers.c.published, papers.c.primary_category.label("category")).where(
            papers.c.published >= start, papers.c.published < end
        )
        frame = self._frame(query)
        frame["published"] = pd.to_datetime(frame["published"], utc=True)
        return frame

    def ingested(self, start: datetime, end: datetime) -> dict[str, int]:
        """Records fetched and quarantined by the ingestion runs started in [start, end)."""
        query = select(
            func.coalesce(func.sum(ingestion_runs.c.fetched), 0),
            func.coalesce(func.sum(ingestion_runs.c.quarantined), 0),
        ).where(ingestion_runs.c.started_at >= start, ingestion_runs.c.started_at < end)
        with self.db.reads.connect() as conn:
            fetched, quarantined = conn.execute(query).one()
        return {"fetched": int(fetched), "quarantined": int(quarantined)}

    def save_run(self, row: dict[str, Any]) -> None:
        """Record a monitoring run (`RUN_COLUMNS`); a rerun with the same id replaces it."""
        with self.db.engine.begin() as conn:
            bulk_insert(
                conn,
                monitoring_runs,
                RUN_COLUMNS,
                [tuple(row[c] for c in RUN_COLUMNS)],
                conflict=("run_id",),
                update=RUN_COLUMNS[1:],
            )

    def runs(self, limit: int = 30) -> list[dict[str, Any]]:
        """The newest `limit` monitoring runs, newest first."""
        query = select(monitoring_runs).order_by(monitoring_runs.c.run_at.desc()).limit(limit)
        with self.db.reads.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def _frame(self, query: Any) -> pd.DataFrame:
        with self.db.reads.connect() as conn:
            return pd.DataFrame(
                conn.execute(query).all(), columns=list(query.selected_columns.keys())
            )
