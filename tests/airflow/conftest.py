"""Airflow 3 from its own virtualenv (`make test` installs .venv-airflow): a scratch AIRFLOW_HOME
with a SQLite metadata database per test module, and the generated DAGs of airflow/dags."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROJECT_ROOT
from tests.test_kedro_run import kedro_env

AIRFLOW_VENV = Path(os.environ.get("AIRFLOW_VENV", PROJECT_ROOT / ".venv-airflow"))
AIRFLOW_PYTHON = AIRFLOW_VENV / "bin" / "python"
DAGS = PROJECT_ROOT / "airflow" / "dags"
PACKAGE = "arxiv_kedro"


def airflow_env(home: Path, **extra: str) -> dict[str, str]:
    """A process environment for Airflow in `home`: its own config, SQLite metadata, the
    project's DAG folder, and none of the caller's AIRFLOW_* settings."""
    env = {k: v for k, v in kedro_env().items() if not k.startswith("AIRFLOW")}
    return {
        **env,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        **extra,
    }


@pytest.fixture(scope="session")
def airflow_python() -> Path:
    if not AIRFLOW_PYTHON.exists():
        pytest.skip(f"Airflow's virtualenv is missing ({AIRFLOW_VENV}): `make test` installs it")
    return AIRFLOW_PYTHON


def inspect_dags(python: Path, folder: Path, home: Path) -> dict[str, Any]:
    """A DAG folder as Airflow's DagBag imports it (tests/airflow/inspect_dags.py)."""
    report = home / "dags.json"
    script = Path(__file__).with_name("inspect_dags.py")
    result = subprocess.run(
        [str(python), str(script), str(folder), str(report)],
        env=airflow_env(home),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    return json.loads(report.read_text())


@pytest.fixture(scope="session")
def dag_report(airflow_python: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """airflow/dags as Airflow imports it."""
    return inspect_dags(airflow_python, DAGS, tmp_path_factory.mktemp("airflow-home"))


class Airflow:
    """The `airflow` command of the Airflow virtualenv, on one scratch AIRFLOW_HOME."""

    def __init__(self, python: Path, home: Path, env: dict[str, str]):
        self.executable = python.parent / "airflow"
        self.home = home
        self.env = airflow_env(home, **env)

    def __call__(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.executable), *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
        log = self.home / "commands.log"
        with log.open("a") as output:
            output.write(f"$ airflow {' '.join(args)}\n{result.stdout}\n")
        return result

    def ok(self, *args: str, timeout: float = 600) -> str:
        result = self(*args, timeout=timeout)
        assert result.returncode == 0, f"airflow {' '.join(args)}:\n{result.stdout[-8000:]}"
        return result.stdout


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("airflow")
