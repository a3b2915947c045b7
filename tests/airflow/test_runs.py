"""The generated DAGs run for real: `airflow dags test` (Airflow 3, its own virtualenv) runs each
task's `kedro run --env prod` in the project's virtualenv against this machine's PostgreSQL and
Redis, an nx-27017 document server, a local arXiv server and a SQLite MLflow registry; asset
events queue the DAGs they start (the scheduler turns the queue into runs)."""

from __future__ import annotations

import shutil
import sqlite3
import sys
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pymongo
import pytest
import redis
import yaml
from mlflow.tracking import MlflowClient
from sqlalchemy import func, select

from arxiv_kedro.classification import registry
from arxiv_kedro.stores import schema
from tests.airflow.conftest import PACKAGE, Airflow
from tests.conftest import PROJECT_ROOT, REDIS_URL, DocumentServer
from tests.support.arxiv_server import ArxivServer
from tests.test_kedro_run import END, UNTIL, expected_ids, paper_ids, query, run_statuses
from tests.test_prod_run import CATEGORIES, make_project

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

# A Redis database of these tests' own (test_prod_run uses 7), emptied before and after.
AIRFLOW_REDIS_URL = REDIS_URL.rsplit("/", 1)[0] + "/9"
# A week of cs.CL/cs.AI papers (551; the corpus is listed 2025-03-18 ... 04-03), and training
# sizes small enough for them (the defaults expect a real archive): 3 labels.
LOOKBACK = timedelta(days=7)
TRAINING = {
    "min_examples": 15,
    "min_class_support": 5,
    "rolling_origin": {"period": "D", "origins": 1, "horizon": 1},  # the newest day vs the rest
    "gate": {"min_papers": 10, "max_ece": 1.0},
}


@dataclass
class Deployment:
    airflow: Airflow
    project: Path
    database_url: str
    mongo: pymongo.MongoClient
    mongo_database: str
    arxiv: ArxivServer
    expected: set[str]

    def run(self, pipeline: str) -> str:
        """`airflow dags test` of the pipeline's DAG; fails the test if the run fails."""
        return self.airflow.ok("dags", "test", f"{PACKAGE}_{pipeline}", timeout=900)

    def metadata(self, sql: str) -> list[tuple]:
        with closing(sqlite3.connect(self.airflow.home / "airflow.db")) as db:
            return db.execute(sql).fetchall()

    def queued(self) -> set[tuple[str, str]]:
        """(asset, DAG) pairs waiting for the scheduler to start a run."""
        return set(
            self.metadata(
                "SELECT asset.name, queue.target_dag_id FROM asset_dag_run_queue AS queue "
                "JOIN asset ON asset.id = queue.asset_id"
            )
        )

    def clear_queue(self) -> None:
        with closing(sqlite3.connect(self.airflow.home / "airflow.db")) as db:
            db.execute("DELETE FROM asset_dag_run_queue")
            db.commit()

    def task_states(self, pipeline: str) -> dict[str, list[str]]:
        rows = self.metadata(
            "SELECT task_id, state FROM task_instance WHERE dag_id = "
            f"'{PACKAGE}_{pipeline}' ORDER BY start_date"
        )
        states: dict[str, list[str]] = {}
        for task_id, state in rows:
            states.setdefault(task_id, []).append(state)
        return states


def prepare_project(root: Path) -> Path:
    """The prod configuration with the test's categories, pacing, `until`, training sizes and
    monitoring thresholds, and the flag reader the DAGs call (airflow/flag.py)."""
    project = make_project(root)
    params_file = project / "conf" / "prod" / "parameters_ingestion.yml"
    params = yaml.safe_load(params_file.read_text())
    params["ingestion"].update(until=UNTIL.isoformat(), lookback_days=LOOKBACK.days)
    params_file.write_text(yaml.safe_dump(params))
    base = yaml.safe_load((PROJECT_ROOT / "conf" / "base" / "parameters_training.yml").read_text())
    training = base["training"]
    for key, value in TRAINING.items():
        training[key] = {**training[key], **value} if isinstance(value, dict) else value
    (project / "conf" / "prod" / "parameters_training.yml").write_text(
        yaml.safe_dump({"training": training})
    )
    monitoring = yaml.safe_load(
        (PROJECT_ROOT / "conf" / "base" / "parameters_monitoring.yml").read_text()
    )["monitoring"]
    # The champion is judged on papers it was trained on, so its live macro-F1 never drops: a
    # negative threshold makes every monitoring run recommend retraining (the flag's path).
    monitoring["quality"].update(max_macro_f1_drop=-1.0, min_papers=1, min_class_support=1)
    (project / "conf" / "prod" / "parameters_monitoring.yml").write_text(
        yaml.safe_dump({"monitoring": monitoring})
    )
    (project / "airflow").mkdir()
    shutil.copy(PROJECT_ROOT / "airflow" / "flag.py", project / "airflow")
    return project


@pytest.fixture(scope="module")
def postgres_schema_url(postgres_database: str) -> str:
    schema_name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema_name}"')
    return f"{postgres_database}?options=-csearch_path%3D{schema_name}"


@pytest.fixture(scope="module")
def deployment(
    airflow_python: Path,
    tmp_path_factory: pytest.TempPathFactory,
    corpus: list[dict],
    postgres_schema_url: str,
    document_server: DocumentServer,
) -> Iterator[Deployment]:
    client = redis.Redis.from_url(AIRFLOW_REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip(f"Redis is not reachable at {AIRFLOW_REDIS_URL}")
    client.flushdb()
    project = prepare_project(tmp_path_factory.mktemp("project"))
    mongo_database = f"arxiv_test_{uuid.uuid4().hex[:12]}"
    mongo = pymongo.MongoClient(document_server.url, serverSelectionTimeoutMS=10_000)
    with ArxivServer(corpus=corpus) as arxiv:
        env = {
            # Where the DAGs' tasks find the project and its virtualenv (this one).
            "ARXIV_KEDRO_PROJECT": str(project),
            "ARXIV_KEDRO_PYTHON": sys.executable,
            "DATABASE_URL": postgres_schema_url,
            "MONGO_URI": document_server.url,
            "MONGO_DB": mongo_database,
            "REDIS_URL": AIRFLOW_REDIS_URL,
            "ARXIV_API_URL": arxiv.url,
            "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
            # Only DAGs that are not paused are queued by the assets they wait for.
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        }
        airflow = Airflow(airflow_python, tmp_path_factory.mktemp("airflow"), env)
        airflow.ok("db", "migrate")
        airflow.ok("pools", "import", str(PROJECT_ROOT / "airflow" / "pools.json"))
        airflow.ok("dags", "reserialize")  # asset consumers are known before the first event
        try:
            yield Deployment(
                airflow,
                project,
                postgres_schema_url,
                mongo,
                mongo_database,
                arxiv,
                expected_ids(corpus, CATEGORIES, UNTIL - LOOKBACK, END),
            )
        finally:
            mongo.drop_database(mongo_database)
            mongo.close()
            client.flushdb()
            client.close()


def test_ingestion_dag_stores_the_new_papers_and_a_second_run_adds_nothing(
    deployment: Deployment,
) -> None:
    output = deployment.run("ingestion")

    url = deployment.database_url
    assert sorted(paper_ids(url)) == sorted(deployment.expected)
    assert f"new {len(deployment.expected)} /" in output  # Kedro's log, in the task's log
    assert deployment.mongo[deployment.mongo_database]["articles"].count_documents({}) == len(
        deployment.expected
    )
    assert {(a, d.removeprefix(f"{PACKAGE}_")) for a, d in deployment.queued()} >= {
        ("papers", "inference"),
        ("papers", "summarization"),
    }
    requests = len(deployment.arxiv.requests)
    deployment.clear_queue()

    output = deployment.run("ingestion")

    assert "new 0 / updated 0 /" in output
    assert sorted(paper_ids(url)) == sorted(deployment.expected)
    assert [status for status, _ in run_statuses(url)] == ["succeeded", "succeeded"]
    assert len(deployment.arxiv.requests) > requests  # it did ask arXiv again
    states = deployment.task_states("ingestion")
    assert states and all(runs == ["success", "success"] for runs in states.values()), states


def champion_version(project: Path) -> str | None:
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    try:
        return str(
            client.get_model_version_by_alias(registry.MODEL_NAME, registry.CHAMPION).version
        )
    except Exception:  # no registered model, or no alias yet
        return None


def predicted(url: str) -> dict[str, Any]:
    table = schema.predictions
    return dict(query(url, select(table.c.model_version, func.count()).group_by("model_version")))


def test_a_promoted_champion_queues_inference_which_labels_every_stored_paper(
    deployment: Deployment,
) -> None:
    assert champion_version(deployment.project) is None
    deployment.clear_queue()

    deployment.run("training")

    version = champion_version(deployment.project)
    assert version is not None
    assert deployment.task_states("training") == {
        "training": ["success"],
        "update-champion": ["success"],
    }
    assert ("champion", f"{PACKAGE}_inference") in deployment.queued()

    deployment.run("inference")

    assert predicted(deployment.database_url) == {version: len(deployment.expected)}


def test_a_training_that_keeps_the_champion_queues_nothing(deployment: Deployment) -> None:
    """Same papers, same evaluation: the gate keeps the champion, the flag task is skipped."""
    version = champion_version(deployment.project)
    deployment.clear_queue()

    deployment.run("training")

    assert champion_version(deployment.project) == version
    assert deployment.task_states("training")["update-champion"][-1] == "skipped"
    assert deployment.queued() == set()


@pytest.mark.skipif(
    not (PROJECT_ROOT / "airflow" / "dags" / f"{PACKAGE}_prod_monitoring_dag.py").exists(),
    reason="no monitoring pipeline is registered yet (issue 14); its DAG is generated with it",
)
def test_monitoring_dag_runs_on_what_ingestion_stored(deployment: Deployment) -> None:
    deployment.run("monitoring")

    assert all(
        states[-1] in ("success", "skipped")
        for states in deployment.task_states("monitoring").values()
    )


@pytest.mark.skipif(
    not (PROJECT_ROOT / "airflow" / "dags" / f"{PACKAGE}_prod_monitoring_dag.py").exists(),
    reason="no monitoring pipeline is registered yet (issue 14) to write retrain_recommended",
)
def test_a_monitoring_run_recommending_retraining_queues_the_training_dag(
    deployment: Deployment,
) -> None:
    """The `retrain` flag task reads the monitoring output saved by the run before it."""
    deployment.clear_queue()

    deployment.run("monitoring")

    flagged = deployment.task_states("monitoring")["update-retrain"][-1]
    queued = ("retrain", f"{PACKAGE}_training") in deployment.queued()
    assert (flagged, queued) in {("success", True), ("skipped", False)}
    assert flagged == "success", "prepare_project makes every monitoring run recommend retraining"
