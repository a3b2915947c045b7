"""`make dags`: the committed DAGs are what generation makes; generation refuses DAGs that would
lose data between tasks or ordering through transcoded datasets."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Node, Pipeline
from kedro_datasets.json import JSONDataset

from tests.conftest import PROJECT_ROOT
from tests.test_kedro_run import kedro_env

AIRFLOW_DIR = PROJECT_ROOT / "airflow"


def load_module(name: str):
    """A script of airflow/ (a folder of scripts, not a package of the project)."""
    spec = importlib.util.spec_from_file_location(f"airflow_{name}", AIRFLOW_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


generate = load_module("generate")
flag = load_module("flag")


def identity(*values):
    return values[0]


def json_dataset(tmp_path: Path, name: str) -> JSONDataset:
    return JSONDataset(filepath=str(tmp_path / f"{name}.json"))


@pytest.mark.slow
def test_the_committed_dags_are_what_make_dags_generates(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(AIRFLOW_DIR / "generate.py"), "--check"],
        cwd=PROJECT_ROOT,
        env=kedro_env(MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}"),
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, f"{result.stderr[-5000:]}\nRun `make dags` and commit."
    assert "match the pipelines" in result.stdout


def test_a_change_shows_as_a_difference(tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    generate.write({"x_dag.py": "old\n", "pools.json": "{}\n"}, dags)

    diffs = generate.differences({"x_dag.py": "new\n", "pools.json": "{}\n"}, dags)

    assert len(diffs) == 1 and "-old" in diffs[0] and "+new" in diffs[0]


def test_generation_removes_the_dag_of_a_pipeline_that_is_gone(tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    generate.write({"a_dag.py": "a\n", "b_dag.py": "b\n", "pools.json": "{}\n"}, dags)
    generate.write({"a_dag.py": "a\n", "pools.json": "{}\n"}, dags)

    assert sorted(p.name for p in dags.iterdir()) == ["a_dag.py"]


def test_tasks_follow_transcoded_datasets_that_kedro_airflow_misses(tmp_path: Path) -> None:
    pipeline = Pipeline(
        [
            Node(identity, "source", "papers@write", name="store"),
            Node(identity, "papers@read", "selected", name="select"),
            Node(identity, "selected", "report", name="summarize"),
        ]
    )
    catalog = DataCatalog(
        {
            "source": json_dataset(tmp_path, "source"),
            "papers@write": json_dataset(tmp_path, "papers"),
            "papers@read": json_dataset(tmp_path, "papers"),
            "report": json_dataset(tmp_path, "report"),
        }
    )

    groups = {g.name: g for g in generate.group_nodes(pipeline, catalog)}

    assert {name: g.nodes for name, g in groups.items()} == {
        "store": ["store"],
        "select_summarize": ["select", "summarize"],  # joined by the memory dataset `selected`
    }
    assert groups["select_summarize"].dependencies == ["store"]
    assert generate.check_hand_offs("p", pipeline, list(groups.values()), catalog) == []


def test_a_memory_dataset_between_tasks_fails_generation(tmp_path: Path) -> None:
    """`papers@read` is not in the catalog (a MemoryDataset): the reading task, a process of
    its own, would find nothing."""
    pipeline = Pipeline(
        [
            Node(identity, "source", "papers@write", name="store"),
            Node(identity, "papers@read", "report", name="report"),
        ]
    )
    catalog = DataCatalog(
        {
            "source": json_dataset(tmp_path, "source"),
            "papers@write": json_dataset(tmp_path, "papers"),
            "report": json_dataset(tmp_path, "report"),
        }
    )
    groups = generate.group_nodes(pipeline, catalog)

    problems = generate.check_hand_offs("p", pipeline, groups, catalog)

    assert problems == [
        "pipeline 'p': 'papers@read' goes from task of 'store' to task of 'report' as a "
        "MemoryDataset; declare it in the catalog (a store, a file on a shared volume, or "
        "RedisStagingDataset)"
    ]


def test_a_pipeline_input_kept_in_memory_fails_generation(tmp_path: Path) -> None:
    pipeline = Pipeline([Node(identity, ["source", "params:x"], "report", name="report")])
    catalog = DataCatalog(
        {"source": MemoryDataset([1]), "report": json_dataset(tmp_path, "report")}
    )

    problems = generate.check_hand_offs("p", pipeline, [], catalog)

    assert problems == [
        "pipeline 'p': its input 'source' is not a persisted catalog entry, so no task can load it"
    ]


def test_a_task_takes_the_pool_of_what_it_reads_and_never_two(tmp_path: Path) -> None:
    pools = {"arxiv": {"datasets": ["source"]}, "mistral": {"datasets": ["llm"]}}
    pipeline = Pipeline([Node(identity, ["source", "llm"], "report", name="both")])
    fetch = Pipeline([Node(identity, "source@raw", "report", name="fetch")])
    [both], [fetching] = pipeline.group_nodes_by(None), fetch.group_nodes_by(None)

    assert generate.task_pool("p", fetching, fetch, pools) == "arxiv"
    with pytest.raises(generate.GenerationError, match=r"needs pools \['arxiv', 'mistral'\]"):
        generate.task_pool("p", both, pipeline, pools)


@pytest.mark.parametrize(
    ("spec", "source"),
    [
        (None, "None"),
        (
            {"cron": "30 20 * * 0-4", "timezone": "America/New_York"},
            "CronTriggerTimetable('30 20 * * 0-4', timezone='America/New_York')",
        ),
        ({"assets_any": ["papers"]}, "PAPERS"),
        ({"assets_any": ["papers", "champion"]}, "(PAPERS | CHAMPION)"),
        ({"assets_all": ["papers", "predictions"]}, "(PAPERS & PREDICTIONS)"),
    ],
)
def test_schedules(spec: dict | None, source: str) -> None:
    assert generate.schedule_source("x", spec) == source


def test_a_schedule_of_another_shape_fails_generation() -> None:
    with pytest.raises(generate.GenerationError, match=r"schedules\.x: expected"):
        generate.schedule_source("x", {"cron": "0 6 * * 6"})  # no timezone: UTC by accident


@pytest.mark.parametrize(
    ("data", "field", "value"),
    [
        (True, None, True),
        (False, None, False),
        ({"promote": True, "reason": "better"}, "promote", True),
        ({"drift": {"retrain_recommended": False}}, "drift.retrain_recommended", False),
    ],
)
def test_a_flag_is_a_saved_boolean(data, field: str | None, value: bool) -> None:
    assert flag.flag_value(data, field) is value


@pytest.mark.parametrize(
    ("data", "field", "error"),
    [
        ({"promote": "yes"}, "promote", "expected true or false, got 'yes'"),
        ({"reason": "x"}, "promote", "the saved output has no field 'promote'"),
        (None, None, "expected true or false, got None"),
    ],
)
def test_a_flag_that_is_not_a_boolean_fails_the_task(data, field: str | None, error: str) -> None:
    with pytest.raises((KeyError, TypeError), match=error):
        flag.flag_value(data, field)


def test_a_saved_retrain_recommendation_is_wired_to_the_training_dag(tmp_path: Path) -> None:
    """What the monitoring pipeline needs to start training: save `retrain_recommended`, a
    mapping whose `retrain` field the flag task reads (conf/base/airflow.yml)."""
    config = {
        **yaml.safe_load((PROJECT_ROOT / "conf" / "base" / "airflow.yml").read_text()),
        **yaml.safe_load((PROJECT_ROOT / "conf" / "prod" / "airflow.yml").read_text()),
    }
    monitoring = Pipeline(
        [
            Node(identity, "papers@read", "drift_report", name="measure_drift"),
            Node(identity, "drift_report", "retrain_recommended", name="recommend"),
        ]
    )
    catalog = DataCatalog(
        {
            "papers@read": json_dataset(tmp_path, "papers"),
            "drift_report": json_dataset(tmp_path, "drift"),
            "retrain_recommended": json_dataset(tmp_path, "retrain"),
        }
    )
    training = Pipeline([Node(identity, "papers@read", "champion_decision", name="train")])
    catalog["champion_decision"] = json_dataset(tmp_path, "decision")

    monitored = generate.dag_file("monitoring", monitoring, catalog, config, "pkg", "prod")
    trained = generate.dag_file("training", training, catalog, config, "pkg", "prod")

    assert monitored.flags == [
        generate.Flag("update-retrain", "retrain", "retrain_recommended", "retrain", "recommend")
    ]
    assert trained.dags[0].schedule == "RETRAIN"
    assert generate.check_config(config, ["monitoring", "training"], [monitored, trained]) == []
