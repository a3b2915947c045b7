"""docker-compose.yaml and the Dockerfile are valid, safe, and their commands run outside Docker."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yaml").read_text())
SERVICES = COMPOSE["services"]
VENV_BIN = Path(shutil.which("kedro") or PROJECT_ROOT / ".venv/bin/kedro").parent


def _dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", path.read_text())  # join continuation lines
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(maxsplit=1)[0].upper(), line.split(maxsplit=1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_every_service_has_an_image_or_a_build_context():
    for name, service in SERVICES.items():
        assert "image" in service or "build" in service, name
        if "build" in service:
            context = PROJECT_ROOT / (
                service["build"]
                if isinstance(service["build"], str)
                else service["build"]["context"]
            )
            assert (context / "Dockerfile").is_file(), name
        else:
            assert ":" in service["image"] and not service["image"].endswith(":latest"), name


def test_dependencies_and_volumes_are_declared():
    for name, service in SERVICES.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in COMPOSE.get("volumes", {}), f"{name}: undeclared volume {source}"


def test_no_default_passwords_and_no_exposed_databases():
    text = (PROJECT_ROOT / "docker-compose.yaml").read_text()
    passwords = list(re.finditer(r"\$\{(\w+_PASSWORD)([^}]*)\}", text))
    assert {m.group(1) for m in passwords} == {
        "POSTGRES_PASSWORD",
        "MONGO_PASSWORD",
        "REDIS_PASSWORD",
    }
    for match in passwords:
        assert match.group(2).startswith(":?"), f"{match.group(1)} must be required, not defaulted"
    for database in ("postgres", "mongo", "redis"):
        assert "ports" not in SERVICES[database], f"{database} must not be published"
        assert "healthcheck" in SERVICES[database], f"{database} needs a healthcheck"


def test_the_ingestion_job_gets_every_store_from_the_environment():
    environment = SERVICES["ingestion"]["environment"]
    assert {"DATABASE_URL", "MONGO_URI", "MONGO_DB", "REDIS_URL"} <= set(environment)
    assert set(SERVICES["ingestion"]["depends_on"]) == {"postgres", "mongo", "redis"}


def test_project_commands_run_outside_docker():
    """Each command of a service built from this repo is a console script of the venv."""
    for name, service in SERVICES.items():
        if "build" in service:
            command = service["command"]
            assert (VENV_BIN / command[0]).exists(), f"{name}: {command[0]} is not installed"


def test_dockerfile_is_pinned_installs_from_the_lock_and_drops_root():
    instructions = _dockerfile_instructions(PROJECT_ROOT / "Dockerfile")
    kinds = [kind for kind, _ in instructions]
    assert kinds[0] == "FROM" and re.match(r"python:3\.11[\w.-]*$", instructions[0][1])
    for kind, argument in instructions:
        if kind == "COPY":
            for source in argument.split()[:-1]:
                assert (PROJECT_ROOT / source).exists(), f"COPY {source}: missing"
    assert any("-c requirements.lock" in arg for kind, arg in instructions if kind == "RUN")
    assert ("USER", "arxiv") in instructions


@pytest.mark.parametrize("ignored", [".env", "conf/local/credentials.yml"])
def test_secrets_files_are_git_ignored(ignored: str):
    patterns = (PROJECT_ROOT / ".gitignore").read_text().splitlines()
    name = Path(ignored).name
    assert any(p.strip() in (name, ignored, "conf/**/*credentials*") for p in patterns)


def test_mlflow_server_has_its_own_database_and_every_job_tracks_to_it():
    command = SERVICES["mlflow"]["command"]
    backend = command[command.index("--backend-store-uri") + 1]
    assert backend.startswith("postgresql+psycopg://") and backend.endswith("@postgres:5432/mlflow")
    init = [v for v in SERVICES["postgres"]["volumes"] if "docker-entrypoint-initdb.d" in v]
    script = PROJECT_ROOT / init[0].split(":", 1)[0]
    assert "CREATE DATABASE mlflow" in script.read_text()
    for job in ("ingestion", "training", "inference"):
        assert SERVICES[job]["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    for job in ("training", "inference"):
        assert "mlflow" in SERVICES[job]["depends_on"]
    assert all(p.startswith("127.0.0.1:") for p in SERVICES["mlflow"]["ports"])


def test_every_source_folder_is_a_package_so_non_editable_installs_ship_it():
    """The Dockerfile installs the project without -e: folders without __init__.py vanish."""
    source = PROJECT_ROOT / "src" / "arxiv_kedro"
    for folder in {path.parent for path in source.rglob("*.py")}:
        if "__pycache__" not in folder.parts:
            assert (folder / "__init__.py").exists(), f"{folder} is not a package"


def test_the_api_serves_the_prod_stores_behind_keys_and_the_ui_talks_to_it():
    api, ui = SERVICES["api"], SERVICES["app"]
    environment = api["environment"]
    assert environment["KEDRO_ENV"] == "prod"
    assert {"DATABASE_URL", "MONGO_URI", "REDIS_URL", "MLFLOW_TRACKING_URI"} <= set(environment)
    assert re.fullmatch(r"\$\{API_KEYS:\?[^}]+\}", environment["API_KEYS"]), "keys are required"
    module, _, attribute = api["command"][api["command"].index("uvicorn") + 1].partition(":")
    assert (PROJECT_ROOT / (module.replace(".", "/") + ".py")).is_file() and attribute == "app"
    assert (PROJECT_ROOT / ui["command"][ui["command"].index("run") + 1]).is_file()
    assert ui["environment"]["API_URL"] == "http://api:8500" and "api" in ui["depends_on"]
    assert not {"DATABASE_URL", "MONGO_URI", "REDIS_URL"} & set(ui["environment"]), "API only"
    for service in (api, ui):
        assert all(p.startswith("127.0.0.1:") for p in service["ports"])
    assert "healthcheck" in api
