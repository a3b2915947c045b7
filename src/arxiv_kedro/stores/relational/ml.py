"""What the model pipelines read and write: labeled papers for training, papers the champion has
not labeled yet and its predictions, papers newest first for summarization."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import and_, or_, select

from arxiv_kedro.classification import OUTPUT_COLUMNS
from arxiv_kedro.stores.relational.engine import Database, bulk_insert
from arxiv_kedro.stores.schema import papers, predictions

# What `save_predictions` takes: which paper, which model saw which content, and its answer.
PREDICTION_FRAME = ("paper_id", "model_name", "model_version", "content_hash", *OUTPUT_COLUMNS)


class MlStore:
    """Reads and writes of the training, inference and summarization pipelines."""

    def __init__(self, db: Database):
        self.db = db

    def __repr__(self) -> str:
        return f"MlStore({self.db!r})"

    def labeled_papers(self) -> pd.DataFrame:
        """Every paper's text with arXiv's primary category as `label`, oldest first."""
        query = select(
            papers.c.arxiv_id,
            papers.c.title,
            papers.c.abstract,
            papers.c.primary_category.label("label"),
            papers.c.published,
        ).order_by(papers.c.published, papers.c.arxiv_id)
        frame = self._frame(query)
        frame["published"] = pd.to_datetime(frame["published"], utc=True)
        return frame

    def papers_to_predict(
        self, model_name: str, model_version: str, *, after_id: int = 0, limit: int = 5000
    ) -> pd.DataFrame:
        """Papers (`paper_id`, `title`, `abstract`, `content_hash`) with no prediction from this
        model version for their current content.

        Keyset-paged by paper id: pass the last id seen as `after_id` for the next page.
        """
        current = and_(
            predictions.c.paper_id == papers.c.id, predictions.c.model_name == model_name
        )
        query = (
            select(
                papers.c.id.label("paper_id"),
                papers.c.title,
                papers.c.abstract,
                papers.c.content_hash,
            )
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
        return self._frame(query)

    def save_predictions(self, frame: pd.DataFrame) -> int:
        """Upsert one prediction per paper and model; `frame` has the `PREDICTION_FRAME` columns."""
        if frame.empty:
            return 0
        now = datetime.now(UTC)
        rows = [
            (int(row[0]), *row[1:], now)
            for row in frame[list(PREDICTION_FRAME)].itertuples(index=False, name=None)
        ]
        with self.db.engine.begin() as conn:
            bulk_insert(
                conn,
                predictions,
                (*PREDICTION_FRAME, "predicted_at"),
                rows,
                conflict=("paper_id", "model_name"),
                update=(*PREDICTION_FRAME[2:], "predicted_at"),
            )
        return len(rows)

    def newest_papers(self, batch_size: int = 1000) -> Iterator[list[dict[str, Any]]]:
        """Every paper's id, version and text, most recently stored first, in batches."""
        columns = (papers.c.id, papers.c.arxiv_id, papers.c.version, papers.c.title)
        query = select(*columns, papers.c.abstract).order_by(papers.c.id.desc()).limit(batch_size)
        before = None
        while True:
            page = query if before is None else query.where(papers.c.id < before)
            with self.db.reads.connect() as conn:
                rows = [dict(row) for row in conn.execute(page).mappings()]
            if not rows:
                return
            yield rows
            before = rows[-1]["id"]

    def _frame(self, query: Any) -> pd.DataFrame:
        with self.db.reads.connect() as conn:
            return pd.DataFrame(
                conn.execute(query).all(), columns=list(query.selected_columns.keys())
            )
