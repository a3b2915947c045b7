"""The deployment tests' fixtures: a .env made as an operator makes it (deploy/new_env.py), the
stack as `docker compose config` resolves it, and the images made outside Docker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROJECT_ROOT
from tests.deployment.stack import BuildContext, LocalImage, compose_config

PROJECT_DOCKERFILE = PROJECT_ROOT / "Dockerfile"
AIRFLOW_DOCKERFILE = PROJECT_ROOT / "Dockerfile.airflow"


@pytest.fixture(scope="session")
def env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """.env as `python3 deploy/new_env.py` writes it from .env.example: fresh secrets."""
    path = tmp_path_factory.mktemp("stack") / ".env"
    subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "deploy" / "new_env.py"), str(path)],
        check=True,
        capture_output=True,
    )
    return path


@pytest.fixture(scope="session")
def config(env_file: Path) -> dict[str, Any]:
    """The stack as Compose resolves it with `env_file`."""
    return compose_config(env_file)


@pytest.fixture(scope="session")
def project_image(tmp_path_factory: pytest.TempPathFactory) -> LocalImage:
    """The project image's files made here by its own Dockerfile's steps: /opt/venv from
    requirements.lock (deploy/install.py; a minute or two), /app from the build context."""
    root = tmp_path_factory.mktemp("project-image")
    context = BuildContext.of(PROJECT_ROOT, PROJECT_DOCKERFILE)
    return LocalImage.build(PROJECT_DOCKERFILE, context, root, root / "build.log")


@pytest.fixture(scope="session")
def airflow_image(tmp_path_factory: pytest.TempPathFactory) -> LocalImage:
    """The Airflow image's files made here by its Dockerfile's steps: /opt/airflow from
    airflow/requirements.lock, /opt/venv (the project) from requirements.lock."""
    root = tmp_path_factory.mktemp("airflow-image")
    context = BuildContext.of(PROJECT_ROOT, AIRFLOW_DOCKERFILE)
    return LocalImage.build(AIRFLOW_DOCKERFILE, context, root, root / "build.log")
