"""Datasets over the relational store: each loads or saves one kind of data (paper batches, the
ingestion run, labeled papers, papers to label, predictions, papers newest first) through
`stores.relational`; one connection pool per database and process."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any, NoReturn

import pandas as pd
from kedro.io import AbstractDataset, DatasetError

from arxiv_kedro.stores import masked
from arxiv_kedro.stores.relational.engine import Database
from arxiv_kedro.stores.relational.ingestion import Counts, IngestionStore, PaperBatch
from arxiv_kedro.stores.relational.ml import MlStore
from arxiv_kedro.stores.relational.read_model import ReadModel

logger = logging.getLogger(__name__)


class _Relational(AbstractDataset):
    """Location (a SQLAlchemy URL: `sqlite:///…` or `postgresql://…`) and the shared pool."""

    def __init__(self, url: str, metadata: dict[str, Any] | None = None):
        self.url, self.metadata = url, metadata

    @property
    def db(self) -> Database:
        return Database.shared(self.url)

    def load(self) -> Any:
        raise DatasetError(f"{type(self).__name__} is write-only")

    def save(self, data: Any) -> NoReturn:
        raise DatasetError(f"{type(self).__name__} is read-only")

    def _describe(self) -> dict[str, Any]:
        return {"url": masked(self.url)}


class WatermarksDataset(_Relational):
    """Per category, the moment up to which the live API is known to be ingested.

    Example catalog entry::

        ingestion_watermarks:
          type: arxiv_kedro.datasets.WatermarksDataset
          url: ${globals:relational_url}
    """

    def load(self) -> dict[str, Any]:
        return IngestionStore(self.db).watermarks()


class PaperBatchesDataset(_Relational):
    """Saves each `PaperBatch` in one transaction: papers upserted, rejected records quarantined,
    the run's counts added, the watermark advanced — only with the papers that justify it.

    The first batch opens an ingestion run, the `last` one closes it as succeeded; if the
    pipeline fails first, `hooks.IngestionRunHook` records it as failed (`fail`). Progress is
    logged every `progress_seconds`.

    Example catalog entry::

        papers@batches:
          type: arxiv_kedro.datasets.PaperBatchesDataset
          url: ${globals:relational_url}
    """

    def __init__(
        self, url: str, progress_seconds: float = 2.0, metadata: dict[str, Any] | None = None
    ):
        super().__init__(url, metadata)
        self.progress_seconds = progress_seconds
        self._run: dict[str, Any] | None = None

    def save(self, batch: PaperBatch) -> None:
        store = IngestionStore(self.db)
        if self._run is None:
            run_id = store.start_run(**batch.run)
            self._run = {"id": run_id, "label": f"Ingestion run {run_id} ({batch.run['source']})"}
            self._run |= {"counts": Counts(), "started": time.monotonic(), "logged": 0.0}
            logger.info("%s started: %s", self._run["label"], batch.run["detail"])
        counts = store.write_batch(
            batch.papers,
            batch.quarantined,
            source=batch.run["source"],
            run_id=self._run["id"],
            checkpoint=batch.checkpoint,
            fetched=batch.fetched,
            filtered=batch.filtered,
        )
        self._run["counts"] += counts
        if batch.last:
            self.finish("succeeded")
            return
        now = time.monotonic()
        if now - self._run["logged"] >= self.progress_seconds:
            self._run["logged"] = now
            logger.info("%s", _progress(self._run, now, batch.progress))

    def finish(self, status: str, error: str | None = None) -> dict[str, Any]:
        """Close the run this process's saves opened; log its summary."""
        run, self._run = self._run, None
        row = IngestionStore(self.db).finish_run(run["id"], status, error)
        log = logger.info if status == "succeeded" else logger.error
        log("%s %s: %s", run["label"], status, summary(row))
        return row

    def fail(self, error: str, source: str) -> dict[str, Any]:
        """Record the run as failed: the one still open, or (the run failed before its first
        batch, e.g. fetching) a new one from `source`, so every failure leaves a record."""
        if self._run is None:
            run_id = IngestionStore(self.db).start_run(source, "failed before its first batch")
            self._run = {"id": run_id, "label": f"Ingestion run {run_id} ({source})"}
        return self.finish("failed", error)


def _progress(run: dict[str, Any], now: float, where: str) -> str:
    c, seconds = run["counts"], max(now - run["started"], 1e-9)
    return (
        f"{run['label']}: {c.fetched:,} fetched{where} — {c.new:,} new, {c.updated:,} updated, "
        f"{c.unchanged:,} unchanged, {c.quarantined:,} quarantined — "
        f"{c.fetched / seconds:,.0f} papers/s"
    )


def summary(run: dict[str, Any]) -> str:
    """A run's counts on one line, e.g. `fetched 72,000 / new 72,000 / … / 3,100 papers/s`."""
    seconds = max(run["duration_seconds"] or 0.0, 1e-9)
    filtered = f" / filtered out {run['filtered']:,}" if run["filtered"] else ""
    return (
        f"fetched {run['fetched']:,} / new {run['new']:,} / updated {run['updated']:,} / "
        f"unchanged {run['unchanged']:,} / quarantined {run['quarantined']:,}{filtered} / "
        f"{run['fetched'] / seconds:,.0f} papers/s ({seconds:.1f} s)"
    )


class IngestionRunDataset(_Relational):
    """The newest ingestion run: its source, window, status, counts and timing.

    Example catalog entry::

        papers@run:
          type: arxiv_kedro.datasets.IngestionRunDataset
          url: ${globals:relational_url}
    """

    def load(self) -> dict[str, Any]:
        run = IngestionStore(self.db).latest_run()
        if run is None:
            raise DatasetError("no ingestion run is recorded yet")
        return run


class LabeledPapersDataset(_Relational):
    """Every stored paper (arxiv_id, title, abstract, label = arXiv's primary category,
    published), oldest first, as a DataFrame.

    Example catalog entry::

        papers@labeled:
          type: arxiv_kedro.datasets.LabeledPapersDataset
          url: ${globals:relational_url}
    """

    def load(self) -> pd.DataFrame:
        return MlStore(self.db).labeled_papers()


class PendingPapers:
    """Papers a model version has not labeled for their current content, read lazily in pages."""

    def __init__(self, store: MlStore, batch_size: int):
        self.store, self.batch_size = store, batch_size

    def for_model(self, name: str, version: str) -> Iterator[pd.DataFrame]:
        """Pages of `paper_id, title, abstract, content_hash`; each read when the last is done."""
        last_id = 0
        while True:
            page = self.store.papers_to_predict(
                name, version, after_id=last_id, limit=self.batch_size
            )
            if page.empty:
                return
            yield page
            last_id = int(page.paper_id.iloc[-1])


class UnlabeledPapersDataset(_Relational):
    """Loads `PendingPapers`: the papers still to label by a given model version, paged by id.

    Example catalog entry::

        papers@unlabeled:
          type: arxiv_kedro.datasets.UnlabeledPapersDataset
          url: ${globals:relational_url}
          batch_size: 5000
    """

    def __init__(self, url: str, batch_size: int = 5000, metadata: dict[str, Any] | None = None):
        super().__init__(url, metadata)
        self.batch_size = batch_size

    def load(self) -> PendingPapers:
        return PendingPapers(MlStore(self.db), self.batch_size)


class NewestPapersDataset(_Relational):
    """Loads an iterator over every paper (id, arxiv_id, version, title, abstract), most
    recently stored first, in lists of `batch_size`; each page is read when asked for.

    Example catalog entry::

        papers@newest:
          type: arxiv_kedro.datasets.NewestPapersDataset
          url: ${globals:relational_url}
          batch_size: 200
    """

    def __init__(self, url: str, batch_size: int = 1000, metadata: dict[str, Any] | None = None):
        super().__init__(url, metadata)
        self.batch_size = batch_size

    def load(self) -> Iterator[list[dict[str, Any]]]:
        return MlStore(self.db).newest_papers(self.batch_size)


class PredictionsDataset(_Relational):
    """Saves DataFrames of predictions (`stores.relational.ml.PREDICTION_FRAME` columns): one row
    per paper and model, upserted.

    Example catalog entry::

        predictions@batches:
          type: arxiv_kedro.datasets.PredictionsDataset
          url: ${globals:relational_url}
    """

    def save(self, frame: pd.DataFrame) -> None:
        MlStore(self.db).save_predictions(frame)


class ReadModelDataset(_Relational):
    """Loads the REST API's `ReadModel` (papers, search, counts). For the API only: pipeline
    nodes read through the datasets above.

    Example catalog entry::

        read_model:
          type: arxiv_kedro.datasets.ReadModelDataset
          url: ${globals:relational_url}
    """

    def load(self) -> ReadModel:
        return ReadModel(self.db)
