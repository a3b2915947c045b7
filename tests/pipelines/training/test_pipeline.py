"""Training and batch inference end to end: `kedro run` in subprocesses on a SQLite store of real
papers, with a SQLite MLflow tracking server and model registry in the project directory."""

from __future__ import annotations

import gzip
import json
import sqlite3
import subprocess
from collections import Counter
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
import yaml
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sqlalchemy import func, select

from arxiv_kedro.classification import OUTPUT_COLUMNS, registry
from arxiv_kedro.stores import schema
from arxiv_kedro.stores.relational.engine import Database
from tests import test_kedro_run
from tests.pipelines.training.test_nodes import tracking_uri
from tests.support.pipelines import backfill
from tests.test_kedro_run import kedro_run, query, sqlite_url

pytestmark = pytest.mark.slow
project = test_kedro_run.project  # the fixture: the project files in tmp_path

# Every n-th paper of each primary category listed from 2025-03-18 up to UNTIL: ~2,850 papers
# over six months; newer papers of the same categories are the unseen ones served to the model.
EVERY = {"cs.CV": 20, "cs.CL": 12, "astro-ph.GA": 3, "astro-ph.CO": 1}
LABELS = sorted(EVERY)
UNTIL = "2025-10-01"
UNSEEN_PER_CATEGORY = 10
TRAINING = {
    "min_examples": 50,
    "rolling_origin": {"origins": 2, "horizon": 1},
    "gate": {"min_papers": 50},
}
WORSE = {"candidates": {"linear": {"C": 0.00001}}}
FORCED = {"gate": {"min_improvement": -1}}
CHAMPION = f"models:/{registry.MODEL_NAME}@{registry.CHAMPION}"


@dataclass(frozen=True)
class Store:
    database: Path  # a filled SQLite store, copied into each project
    papers: int
    unseen: pd.DataFrame  # title, abstract, label of newer papers than any stored


@pytest.fixture(scope="module")
def filled_store(tmp_path_factory: pytest.TempPathFactory, daily_snapshot: Path) -> Store:
    """The ingestion pipeline run once on a snapshot file of real records (original lines)."""
    directory = tmp_path_factory.mktemp("store")
    snapshot = directory / "snapshot.jsonl"
    selected, unseen = training_selection(daily_snapshot)
    snapshot.write_text("".join(selected), encoding="utf-8")
    written = len(selected)
    ingestion = backfill(
        snapshot,
        directory,
        batch_size=1000,
        relational_url=f"sqlite:///{directory / 'arxiv.db'}",
        documents_url=f"sqlite:///{directory / 'documents.db'}",
    )
    Database.close_shared()
    assert 2500 < written < 3500
    assert ingestion["status"] == "succeeded"
    assert (ingestion["new"], ingestion["quarantined"]) == (written, 0)
    return Store(directory / "arxiv.db", written, unseen)


def training_selection(daily_snapshot: Path) -> tuple[list[str], pd.DataFrame]:
    """Every n-th paper of EVERY's categories listed before UNTIL (original snapshot lines,
    oldest first), and UNSEEN_PER_CATEGORY later ones per category (title, abstract, label)."""
    listed: Counter[str] = Counter()
    selected: list[str] = []
    unseen: list[tuple[str, str, str]] = []
    with gzip.open(daily_snapshot, "rt", encoding="utf-8") as lines:
        for line in lines:  # listed oldest first
            record = json.loads(line)
            label = record["categories"].split()[0]
            if label not in EVERY:
                continue
            if record["update_date"] < UNTIL:
                listed[label] += 1
                if listed[label] % EVERY[label] == 0:
                    selected.append(line)
            elif sum(paper[2] == label for paper in unseen) < UNSEEN_PER_CATEGORY:
                unseen.append((record["title"], record["abstract"], label))
            elif len(unseen) == UNSEEN_PER_CATEGORY * len(EVERY):
                break
    return selected, pd.DataFrame(unseen, columns=["title", "abstract", "label"])


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        merged[key] = merge(base[key], value) if isinstance(value, dict) else value
    return merged


def set_training(project: Path, *changes: dict[str, Any]) -> dict[str, Any]:
    """conf/local/parameters_training.yml: the base parameters with TRAINING and `changes`."""
    base = yaml.safe_load((project / "conf" / "base" / "parameters_training.yml").read_text())
    params = merge(base["training"], TRAINING)
    for change in changes:
        params = merge(params, change)
    local = project / "conf" / "local" / "parameters_training.yml"
    local.write_text(yaml.safe_dump({"training": params}))
    return params


@pytest.fixture
def trainable(project: Path, filled_store: Store) -> Path:
    """`project` with a copy of the filled store where the base catalog expects it."""
    database = project / "data" / "03_primary" / "arxiv.db"
    database.parent.mkdir(parents=True)
    with (
        closing(sqlite3.connect(filled_store.database)) as source,
        closing(sqlite3.connect(database)) as copy,
    ):
        source.backup(copy)
    set_training(project)
    return project


def mlflow_uri(project: Path) -> str:
    return f"sqlite:///{project / 'mlflow.db'}"


def run(project: Path, pipeline: str) -> subprocess.CompletedProcess[str]:
    result = kedro_run(project, "--pipeline", pipeline, MLFLOW_TRACKING_URI=mlflow_uri(project))
    assert result.returncode == 0, result.stdout
    return result


def report(project: Path, name: str) -> dict[str, Any]:
    return json.loads((project / "data" / "08_reporting" / f"{name}.json").read_text())


def champion(client: MlflowClient) -> str:
    return str(client.get_model_version_by_alias(registry.MODEL_NAME, registry.CHAMPION).version)


def versions(client: MlflowClient) -> dict[str, str]:
    """Registered version -> the run that logged it."""
    found = client.search_model_versions(f"name = '{registry.MODEL_NAME}'")
    return {str(version.version): version.run_id for version in found}


def predictions(project: Path) -> pd.DataFrame:
    table = schema.predictions
    rows = query(sqlite_url(project), select(table).order_by(table.c.paper_id))
    return pd.DataFrame(rows, columns=[c.name for c in table.columns])


def stored_papers(project: Path) -> dict[int, str]:
    """Paper id -> content hash."""
    papers = schema.papers
    return dict(query(sqlite_url(project), select(papers.c.id, papers.c.content_hash)))


def test_training_registers_a_champion_that_serves_the_pyfunc_contract(
    trainable: Path, filled_store: Store
) -> None:
    project = trainable
    run(project, "training")

    client = MlflowClient(mlflow_uri(project), mlflow_uri(project))
    assert list(versions(client)) == ["1"]
    assert champion(client) == "1"
    version = client.get_model_version(registry.MODEL_NAME, "1")
    logged = client.get_run(version.run_id)
    metrics = logged.data.metrics
    for name in ("accuracy", "macro_f1", "top3_accuracy", "ece"):
        assert 0 <= metrics[f"evaluation.{name}"] <= 1, name
    assert metrics["evaluation.accuracy"] > 0.8
    assert metrics["evaluation.macro_f1_classes"] == len(LABELS)
    assert logged.data.tags["champion_gate.promoted"] == "true"
    assert logged.data.tags["champion_gate.reason"] == "no champion yet"
    assert logged.data.params["training.candidate"] == "linear"
    for name in ("accuracy", "macro_f1", "top3_accuracy", "ece"):
        assert 0 <= metrics[f"rolling_origin.{name}"] <= 1, name
    history = client.get_metric_history(version.run_id, "rolling_origin.origin.macro_f1")
    assert [m.step for m in history] == [0, 1]
    rolling = report(project, "rolling_origin_report")
    assert [o["origin"] for o in rolling["origins"]] == ["2025-08", "2025-09"]
    assert rolling["metrics"]["macro_f1"] == pytest.approx(metrics["rolling_origin.macro_f1"])
    artifacts = {artifact.path for artifact in client.list_artifacts(version.run_id)}
    expected = {"confusion_matrix.png", "evaluation_report.json", "champion_decision.json"}
    assert expected | {"rolling_origin_report.json"} <= artifacts
    decision = report(project, "champion_decision")
    assert decision["promote"] is True
    assert (decision["champion"], decision["reason"]) == (None, "no champion yet")
    evaluation = report(project, "evaluation_report")
    assert evaluation["metrics"]["macro_f1"] == pytest.approx(metrics["evaluation.macro_f1"])
    assert evaluation["metrics"]["papers"] == metrics["evaluation.papers"]
    assert set(evaluation["per_class"]) == set(LABELS)
    assert report(project, "training_split")["labels"] == LABELS
    # the registered version carries what the next gate compares against
    assert version.tags["evaluation_fingerprint"] == decision["evaluation_fingerprint"]
    assert version.tags["trained_through"] == decision["trained_through"]
    assert float(version.tags["evaluation.macro_f1"]) == evaluation["metrics"]["macro_f1"]

    unseen = filled_store.unseen
    with tracking_uri(mlflow_uri(project)):
        model = mlflow.pyfunc.load_model(CHAMPION)
        served = model.predict(unseen[["title", "abstract"]])
        entry_point = registry.load()
        with pytest.raises(MlflowException, match=r"missing inputs \['abstract'\]"):
            model.predict(unseen[["title"]])

    assert list(served.columns) == list(OUTPUT_COLUMNS)
    assert len(served) == len(unseen)
    probabilities = served[["probability", "probability_2", "probability_3"]]
    assert ((probabilities >= 0) & (probabilities <= 1)).all().all()
    assert (probabilities.diff(axis=1).iloc[:, 1:] <= 0).all().all()
    assert (probabilities.sum(axis=1) <= 1 + 1e-6).all()
    assert set(served[["label", "label_2", "label_3"]].stack()) <= set(LABELS)
    assert (served.label.to_numpy() == unseen.label.to_numpy()).mean() > 0.7
    assert (entry_point.name, entry_point.version) == (registry.MODEL_NAME, "1")
    assert entry_point.run_id == version.run_id
    pd.testing.assert_frame_equal(
        entry_point.predict(unseen).reset_index(drop=True), served.reset_index(drop=True)
    )


def test_champion_gate_and_batch_inference(trainable: Path, filled_store: Store) -> None:
    project = trainable
    papers = stored_papers(project)
    assert len(papers) == filled_store.papers

    # a champion, then every paper labeled by it
    run(project, "training")
    run(project, "inference")
    client = MlflowClient(mlflow_uri(project), mlflow_uri(project))

    first = report(project, "inference_report")
    assert (first["status"], first["model"], first["version"]) == ("ok", registry.MODEL_NAME, "1")
    assert first["predicted"] == len(papers)
    labeled = predictions(project)
    assert len(labeled) == labeled.paper_id.nunique() == len(papers)
    assert set(labeled.paper_id) == set(papers)
    assert set(labeled.model_name) == {registry.MODEL_NAME}
    assert set(labeled.model_version) == {"1"}
    assert (labeled.content_hash == labeled.paper_id.map(papers)).all()
    assert set(labeled[["label", "label_2", "label_3"]].stack()) <= set(LABELS)
    assert (labeled.probability >= labeled.probability_2).all()
    assert (labeled.probability_2 >= labeled.probability_3).all()

    # a worse model is registered but does not take the alias; nothing is relabeled
    set_training(project, WORSE)
    run(project, "training")
    run(project, "inference")

    assert sorted(versions(client)) == ["1", "2"]
    assert champion(client) == "1"
    worse_run = client.get_run(versions(client)["2"])
    assert worse_run.data.tags["champion_gate.promoted"] == "false"
    assert worse_run.data.params["training.candidates.linear.C"] == "1e-05"
    decision = report(project, "champion_decision")
    assert decision["promote"] is False
    assert decision["champion_version"] == "1"
    assert decision["candidate"] < decision["champion"]
    assert "does not beat champion v1" in decision["reason"]
    assert "same evaluation papers" in decision["reason"]
    second = report(project, "inference_report")
    assert (second["status"], second["version"], second["predicted"]) == ("ok", "1", 0)
    pd.testing.assert_frame_equal(predictions(project), labeled)  # not one predicted_at moved

    # a third model forced through the gate: the champion changes and every paper is relabeled
    set_training(project, FORCED)
    run(project, "training")
    started = datetime.now().astimezone()
    run(project, "inference")

    assert sorted(versions(client)) == ["1", "2", "3"]
    assert champion(client) == "3"
    assert client.get_run(versions(client)["3"]).data.tags["champion_gate.promoted"] == "true"
    assert report(project, "champion_decision")["promote"] is True
    third = report(project, "inference_report")
    assert (third["status"], third["version"], third["predicted"]) == ("ok", "3", len(papers))
    relabeled = predictions(project)
    assert len(relabeled) == relabeled.paper_id.nunique() == len(papers)
    assert set(relabeled.model_version) == {"3"}
    assert (relabeled.predicted_at > started).all()
    count = query(sqlite_url(project), select(func.count()).select_from(schema.predictions))
    assert count == [(len(papers),)]


def test_inference_without_a_champion_labels_nothing(project: Path) -> None:
    """A fresh project: no registry yet (kedro-mlflow's setup creates an empty mlflow.db)."""
    result = kedro_run(project, "--pipeline", "inference")  # MLflow's default: ./mlflow.db

    assert result.returncode == 0, result.stdout
    assert report(project, "inference_report") == {"status": "no champion", "predicted": 0}
    assert "No @champion model in the registry yet" in result.stdout
    assert not (project / "mlruns").exists()
