"""Datasets of the monitoring pipeline: the papers of a window with the champion's predictions
(read lazily), the monitoring runs' time series, and one MLflow run per monitoring run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from kedro.io import AbstractDataset, DatasetError
from mlflow.entities import Metric
from mlflow.utils.time import get_current_time_millis

from arxiv_kedro.classification import registry
from arxiv_kedro.datasets.relational import _Relational
from arxiv_kedro.stores.relational.monitoring import MonitoringStore


class MonitoredPapers:
    """What a monitoring run reads, asked for once its windows are known."""

    def __init__(self, store: MonitoringStore):
        self.store = store

    def newest_published(self) -> datetime | None:
        return self.store.newest_published()

    def window(
        self, start: datetime, end: datetime, model_name: str, limit: int | None = None
    ) -> pd.DataFrame:
        """Papers published in [start, end) with `model_name`'s predictions; over `limit`,
        an even sample of `limit` papers (by id, i.e. ingestion order)."""
        return self.store.window(start, end, model_name, limit)

    def feed(self, start: datetime, end: datetime) -> pd.DataFrame:
        return self.store.feed(start, end)

    def ingested(self, start: datetime, end: datetime) -> dict[str, int]:
        return self.store.ingested(start, end)


class MonitoredPapersDataset(_Relational):
    """Loads `MonitoredPapers`: papers with the stored predictions, the feed, the ingestion
    runs' counts — read when the node asks, for the windows it chose.

    Example catalog entry::

        predictions@monitored:
          type: arxiv_kedro.datasets.MonitoredPapersDataset
          url: ${globals:relational_url}
    """

    def load(self) -> MonitoredPapers:
        return MonitoredPapers(MonitoringStore(self.db))


class MonitoringHistory:
    """The monitoring runs recorded so far, newest first."""

    def __init__(self, store: MonitoringStore):
        self.store = store

    def recent(self, limit: int) -> list[dict[str, Any]]:
        return self.store.runs(limit) if limit > 0 else []


class MonitoringRunsDataset(_Relational):
    """The `monitoring_runs` table: `save` records runs' rows (a rerun with the same id
    replaces its row), `load` gives the `MonitoringHistory`.

    Example catalog entries::

        monitoring_runs:
          type: arxiv_kedro.datasets.MonitoringRunsDataset
          url: ${globals:relational_url}
    """

    def load(self) -> MonitoringHistory:
        return MonitoringHistory(MonitoringStore(self.db))

    def save(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            MonitoringStore(self.db).save_run(row)


class MonitoringMlflowDataset(AbstractDataset[dict[str, Any], None]):
    """Saves a monitoring run as its own MLflow run in `experiment` (created if missing):
    `{"run_name", "metrics": {name: value}, "tags": {...}, "html": str}` — the metrics, the
    tags and the HTML report as the artifact `artifact_name`. `{}` saves nothing. The tracking
    server is the run's (`conf/*/mlflow.yml`, `MLFLOW_TRACKING_URI`); a training run active in
    the same session is left alone.

    Example catalog entry::

        monitoring_mlflow:
          type: arxiv_kedro.datasets.MonitoringMlflowDataset
          experiment: monitoring
    """

    def __init__(
        self,
        experiment: str = "monitoring",
        artifact_name: str = "monitoring_report.html",
        metadata: dict[str, Any] | None = None,
    ):
        self.experiment, self.artifact_name, self.metadata = experiment, artifact_name, metadata

    def load(self) -> None:
        raise DatasetError("MonitoringMlflowDataset is write-only: read the runs in MLflow")

    def save(self, data: dict[str, Any]) -> None:
        if not data:
            return
        client = registry.client()
        found = client.get_experiment_by_name(self.experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(self.experiment)
        run = client.create_run(experiment_id, run_name=data["run_name"], tags=data["tags"])
        now = get_current_time_millis()
        metrics = [Metric(k, float(v), now, 0) for k, v in data["metrics"].items()]
        client.log_batch(run.info.run_id, metrics=metrics)
        client.log_text(run.info.run_id, data["html"], self.artifact_name)
        client.set_terminated(run.info.run_id)

    def _describe(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "artifact_name": self.artifact_name}
