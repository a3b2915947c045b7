"""Airflow in docker-compose.yaml and Dockerfile.airflow: Celery workers on the stack's Redis,
metadata in its PostgreSQL, the UI on 127.0.0.1:8082, an init service, the generated DAGs, the
tested Airflow and the project's virtualenv in the image, and commands that Airflow's CLI knows.
tests/deployment starts them all outside Docker."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.airflow.conftest import airflow_env
from tests.conftest import PROJECT_ROOT

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yaml").read_text())
SERVICES = COMPOSE["services"]
AIRFLOW = {name: s for name, s in SERVICES.items() if name.startswith("airflow-")}
DOCKERFILE = (PROJECT_ROOT / "Dockerfile.airflow").read_text()
IMAGE_PROJECT = "/opt/arxiv-kedro"


def lock_version(package: str) -> str:
    lock = (PROJECT_ROOT / "airflow" / "requirements.lock").read_text()
    return re.search(rf"^{package}==(\S+)$", lock, re.MULTILINE).group(1)


def dockerfile_env() -> dict[str, str]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    pairs = [m for line in text.splitlines() if line.startswith("ENV ") for m in line.split()[1:]]
    return dict(pair.split("=", 1) for pair in pairs)


def test_the_stack_runs_every_airflow_3_component_from_one_image() -> None:
    assert set(AIRFLOW) == {
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-worker",
    }
    for name, service in AIRFLOW.items():
        assert service["build"] == {"context": ".", "dockerfile": "Dockerfile.airflow"}, name
        assert (
            service["image"]
            == "${ARXIV_KEDRO_IMAGE:-arxiv-kedro}-airflow:${ARXIV_KEDRO_VERSION:-local}"
        ), name
    for name in set(AIRFLOW) - {"airflow-init"}:
        assert AIRFLOW[name]["depends_on"]["airflow-init"] == {
            "condition": "service_completed_successfully"
        }
        assert "healthcheck" in AIRFLOW[name], name


def test_the_image_is_the_tested_airflow_with_the_project_in_its_own_virtualenv() -> None:
    version = lock_version("apache-airflow")
    assert "pip install -r airflow/requirements.lock" in DOCKERFILE
    make = (PROJECT_ROOT / "Makefile").read_text()
    assert f"AIRFLOW_VERSION := {version}" in make
    for provider in ("celery", "fab", "postgres"):  # what compose's configuration uses
        lock_version(f"apache-airflow-providers-{provider}")
    env = dockerfile_env()
    assert env["ARXIV_KEDRO_PROJECT"] == IMAGE_PROJECT
    assert env["ARXIV_KEDRO_PYTHON"] == "/opt/venv/bin/python"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == f"{IMAGE_PROJECT}/airflow/dags"
    assert "python deploy/install.py /opt/venv deps" in DOCKERFILE


def test_celery_on_the_stack_redis_and_metadata_in_its_postgresql() -> None:
    env = AIRFLOW["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert re.fullmatch(
        r"redis://:\$\{REDIS_PASSWORD:\?[^}]+\}@redis:6379/1", env["AIRFLOW__CELERY__BROKER_URL"]
    )
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres:5432/airflow")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].endswith("@postgres:5432/airflow")
    assert "CREATE DATABASE airflow" in (PROJECT_ROOT / "deploy" / "postgres-init.sql").read_text()
    for secret in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET"):
        assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", env[secret]), f"{secret} must be required"


def test_tasks_reach_the_project_stores_with_the_project_settings() -> None:
    worker = AIRFLOW["airflow-worker"]
    for variable in ("DATABASE_URL", "MONGO_URI", "REDIS_URL", "MLFLOW_TRACKING_URI"):
        assert worker["environment"][variable] == SERVICES["ingestion"]["environment"][variable]
    assert {"postgres", "redis", "mongo", "mlflow"} <= set(worker["depends_on"])
    assert any(v.startswith("reports:") for v in worker["volumes"])  # shared by the workers


def test_workers_scale_and_only_the_ui_is_published_on_the_loopback() -> None:
    worker = AIRFLOW["airflow-worker"]
    assert "container_name" not in worker and "ports" not in worker  # --scale airflow-worker=N
    published = {name: s["ports"] for name, s in AIRFLOW.items() if "ports" in s}
    assert published == {"airflow-apiserver": ["127.0.0.1:8082:8080"]}
    assert AIRFLOW["airflow-apiserver"]["command"] == ["airflow", "api-server", "--port", "8080"]


def test_the_init_service_migrates_creates_the_admin_and_the_pools_from_env() -> None:
    init = AIRFLOW["airflow-init"]
    script_path = init["command"][1]
    assert init["command"][0] == "bash" and script_path.startswith(f"{IMAGE_PROJECT}/airflow/")
    script = (PROJECT_ROOT / "airflow" / Path(script_path).name).read_text()
    assert "airflow db migrate" in script
    assert 'airflow pools import "$ARXIV_KEDRO_PROJECT/airflow/pools.json"' in script
    assert '--password "$AIRFLOW_ADMIN_PASSWORD"' in script
    assert init["environment"]["AIRFLOW_ADMIN_PASSWORD"].startswith("${AIRFLOW_ADMIN_PASSWORD:?")
    assert init["restart"] == "no"
    result = subprocess.run(["bash", "-n", str(PROJECT_ROOT / "airflow" / "init.sh")], check=False)
    assert result.returncode == 0


@pytest.mark.parametrize("service", sorted(set(AIRFLOW) - {"airflow-init"}))
def test_each_command_is_one_of_airflow_3(
    service: str, airflow_python: Path, tmp_path: Path
) -> None:
    """Each server's command is a command of the tests' Airflow (the image's: same lock)."""
    program, *command = AIRFLOW[service]["command"]
    assert program == "airflow"
    result = subprocess.run(
        [str(airflow_python.parent / "airflow"), *command, "--help"],
        env=airflow_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
