"""The generated DAGs as Airflow 3 imports them: one per pipeline (and variant), the tasks of its
nodes, schedules, pools, retries with backoff, timeouts; nothing read at import time."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.airflow.conftest import PACKAGE, inspect_dags
from tests.conftest import PROJECT_ROOT

BASE = yaml.safe_load((PROJECT_ROOT / "conf" / "base" / "airflow.yml").read_text())
PROD = yaml.safe_load((PROJECT_ROOT / "conf" / "prod" / "airflow.yml").read_text())
NEW_YORK = "America/New_York"


def registered_pipelines() -> dict[str, list[str]]:
    """Pipeline name -> its node names, for the pipelines the project registers with a DAG."""
    from kedro.framework.project import pipelines
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(PROJECT_ROOT)
    without = {"__default__", *BASE["without_dag"]}
    return {
        name: [node.name for node in pipeline.nodes]
        for name, pipeline in pipelines.items()
        if name not in without
    }


PIPELINES = registered_pipelines()


def kedro_command(task: dict[str, Any]) -> list[str]:
    """The arguments after `python` in a task's command."""
    prefix = (
        'cd "${ARXIV_KEDRO_PROJECT:?set ARXIV_KEDRO_PROJECT to the Kedro project directory}" && '
        'exec "${ARXIV_KEDRO_PYTHON:?set ARXIV_KEDRO_PYTHON to the project virtualenv python}" '
    )
    assert task["command"].startswith(prefix)
    return shlex.split(task["command"].removeprefix(prefix))


def node_tasks(dag: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t: task for t, task in dag["tasks"].items() if "-m" in kedro_command(task)}


def test_every_dag_imports_without_errors(dag_report: dict[str, Any]) -> None:
    assert dag_report["import_errors"] == {}
    assert not dag_report["kedro_imported"]  # no Kedro session: Airflow's venv has no Kedro
    expected = {f"{PACKAGE}_{name}" for name in PIPELINES} | {f"{PACKAGE}_ingestion_catchup"}
    assert set(dag_report["dags"]) == expected


def test_a_dag_reading_a_variable_at_import_time_is_an_import_error(
    airflow_python: Path, tmp_path: Path
) -> None:
    """The check above can fail: the same inspection on a DAG that reads configuration early."""
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "eager_dag.py").write_text(
        "from airflow.sdk import Variable, dag\n"
        "LIMIT = Variable.get('limit')\n"
        "@dag(schedule=None)\n"
        "def eager():\n"
        "    pass\n"
        "eager()\n"
    )

    report = inspect_dags(airflow_python, dags, tmp_path)

    [error] = report["import_errors"].values()
    assert "a DAG read an Airflow Variable or Connection while it was imported" in error
    assert report["dags"] == {}


@pytest.mark.parametrize("pipeline", sorted(PIPELINES))
def test_each_node_runs_once_in_a_task_of_its_pipeline(
    dag_report: dict[str, Any], pipeline: str
) -> None:
    dag = dag_report["dags"][f"{PACKAGE}_{pipeline}"]
    ran = []
    for task in node_tasks(dag).values():
        command = kedro_command(task)
        assert command[:8] == [
            "-m",
            "kedro",
            "run",
            "--env",
            "prod",
            "--pipeline",
            pipeline,
            "--nodes",
        ]
        ran += command[8].split(",")
    assert sorted(ran) == sorted(PIPELINES[pipeline])


def test_retries_backoff_timeouts_and_one_run_at_a_time(dag_report: dict[str, Any]) -> None:
    defaults = BASE["default"]
    for dag_id, dag in dag_report["dags"].items():
        settings = {**defaults, **BASE.get(dag_id.removeprefix(f"{PACKAGE}_").split("_")[0], {})}
        assert (dag["max_active_runs"], dag["catchup"]) == (1, False), dag_id
        for task_id, task in dag["tasks"].items():
            assert task["retries"] == settings["retries"] > 0, task_id
            assert task["retry_delay"] == settings["retry_delay_minutes"] * 60
            assert task["retry_exponential_backoff"] == 2.0  # doubles
            assert task["max_retry_delay"] == 3600
            assert task["execution_timeout"] == settings["execution_timeout_minutes"] * 60
    for task in dag_report["dags"][f"{PACKAGE}_ingestion"]["tasks"].values():
        assert task["execution_timeout"] == 7200


def test_ingestion_runs_after_each_arxiv_announcement_and_catches_up_weekly(
    dag_report: dict[str, Any],
) -> None:
    daily = dag_report["dags"][f"{PACKAGE}_ingestion"]
    weekly = dag_report["dags"][f"{PACKAGE}_ingestion_catchup"]

    assert daily["schedule"] == {
        "type": "CronTriggerTimetable",
        "cron": "30 20 * * 0-4",  # Sunday-Thursday, 30 min after the 20:00 announcement
        "timezone": NEW_YORK,
    }
    assert weekly["schedule"]["cron"] == "0 6 * * 6" and weekly["schedule"]["timezone"] == NEW_YORK
    for task in node_tasks(weekly).values():
        assert kedro_command(task)[-2:] == ["--params", "ingestion.overlap_hours=720"]
    for task in node_tasks(daily).values():
        assert "--params" not in kedro_command(task)
    for dag in (daily, weekly):
        tasks = node_tasks(dag).values()
        fetching = [t for t in tasks if t["pool"] == "arxiv"]  # the task asking arXiv
        assert len(fetching) == 1 and {t["pool"] for t in tasks} <= {"arxiv", "default_pool"}
        assert [t["outlets"] for t in tasks if t["outlets"]] == [["papers"]]


def asset_names(schedule: dict[str, Any]) -> list[str]:
    return re.findall(r"Asset\(name='([\w-]+)'", schedule.get("assets", ""))


def test_the_other_pipelines_start_on_the_assets_ingestion_and_training_update(
    dag_report: dict[str, Any],
) -> None:
    dags = dag_report["dags"]
    inference, training = dags[f"{PACKAGE}_inference"], dags[f"{PACKAGE}_training"]
    summarization = dags[f"{PACKAGE}_summarization"]

    assert inference["schedule"]["assets"].startswith("AssetAny(")
    assert asset_names(inference["schedule"]) == ["papers", "champion"]
    assert asset_names(summarization["schedule"]) == ["papers"]
    assert asset_names(training["schedule"]) == ["retrain"]
    assert [t["outlets"] for t in node_tasks(inference).values()] == [["predictions"]]
    assert [t["pool"] for t in node_tasks(summarization).values()] == ["mistral"]
    if f"{PACKAGE}_monitoring" in dags:
        monitoring = dags[f"{PACKAGE}_monitoring"]
        assert monitoring["schedule"]["assets"].startswith("AssetAll(")
        assert asset_names(monitoring["schedule"]) == ["papers", "predictions"]


def test_a_new_champion_is_announced_only_when_the_gate_promotes(
    dag_report: dict[str, Any],
) -> None:
    training = dag_report["dags"][f"{PACKAGE}_training"]
    [trained] = node_tasks(training)  # kedro-mlflow logs the model at the end of the whole run
    flag = training["tasks"]["update-champion"]

    assert flag["upstream"] == [trained]
    assert flag["outlets"] == ["champion"]
    assert flag["skip_on_exit_code"] == [99]  # skipped: no asset event, no re-inference
    assert kedro_command(flag) == [
        *("airflow/flag.py", "--env", "prod", "champion_decision", "--field", "promote")
    ]
    assert training["tasks"][trained]["outlets"] == []


def test_pools_file_matches_the_configuration() -> None:
    pools = json.loads((PROJECT_ROOT / "airflow" / "pools.json").read_text())

    assert pools["arxiv"]["slots"] == 1
    assert pools["mistral"]["slots"] == PROD["pool_slots"]["mistral"]
    assert set(pools) == set(BASE["pools"])
