"""The monitoring pipeline end to end: `kedro run` in subprocesses on the training tests' SQLite
store of real papers, after a champion was trained and has labeled them; and its place in the
registered pipelines (the default runs it after inference, so `make run` reports by itself)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kedro.framework.project import pipelines
from kedro.framework.startup import bootstrap_project
from mlflow.tracking import MlflowClient
from sqlalchemy import select

from arxiv_kedro.stores import schema
from arxiv_kedro.stores.documents import SqlDocumentStore
from tests.pipelines.training import test_pipeline as training
from tests.pipelines.training.test_pipeline import mlflow_uri, run
from tests.test_kedro_run import PROJECT_ROOT, query, sqlite_url

# The training tests' fixtures: the project files, the filled store, both together.
project, filled_store, trainable = training.project, training.filled_store, training.trainable


def test_the_default_and_all_monitor_after_inference() -> None:
    bootstrap_project(PROJECT_ROOT)
    for name in ("__default__", "all"):
        order = [node.name for node in pipelines[name].nodes]  # topologically sorted
        assert order.index("predict_pending") < order.index("select_papers"), name
        assert "publish_monitoring" in order


@pytest.mark.slow
def test_a_monitoring_run_reports_everywhere(trainable: Path) -> None:
    run(trainable, "training")
    run(trainable, "inference")

    run(trainable, "monitoring")

    [found] = query(sqlite_url(trainable), select(schema.monitoring_runs))
    row = dict(zip(schema.monitoring_runs.columns.keys(), found, strict=True))
    run_id = row["run_id"]
    reports = trainable / "data" / "08_reporting"
    assert "Dataset Drift" in (reports / "monitoring" / f"{run_id}.html").read_text()
    assert json.loads((reports / "monitoring" / f"{run_id}.json").read_text())["tests"]
    flag = json.loads((reports / "retrain_recommended.json").read_text())
    assert flag == {"retrain": row["retrain_recommended"], "reason": row["reason"]}
    documents = SqlDocumentStore(f"sqlite:///{trainable / 'data/03_primary/documents.db'}")
    summary = documents.get("reports", report_id=f"monitoring-{run_id}")
    assert summary["window"]["papers"] == row["current_papers"] > 0
    assert summary["live_quality"]["macro_f1"] == pytest.approx(row["macro_f1"])
    client = MlflowClient(mlflow_uri(trainable))
    experiment = client.get_experiment_by_name("monitoring")
    [tracked] = client.search_runs([experiment.experiment_id])
    assert tracked.info.run_name == run_id
    assert tracked.data.metrics["live_macro_f1"] == pytest.approx(row["macro_f1"])
    assert [a.path for a in client.list_artifacts(tracked.info.run_id)] == [
        "monitoring_report.html"
    ]
