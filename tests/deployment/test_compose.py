"""docker-compose.yaml as Compose itself reads it (`docker compose config`, no Docker engine
needed), checked against the code, .env.example and the README: every command, module, file,
port and variable it names exists and matches; no secret has a default; no database is
published; every published port is the documented one, on the host's loopback."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from kedro.framework.project import configure_project, pipelines

from serving.settings import Settings
from tests.conftest import PROJECT_ROOT
from tests.deployment.stack import (
    COMPOSE_FILE,
    ENV_EXAMPLE,
    docker_compose,
    example_variables,
    raw_compose,
    referenced_variables,
)

COMPOSE = raw_compose()
SERVICES = COMPOSE["services"]
# Host ports, as the original project published them: API, UI, MLflow, Airflow (issue 15).
HOST_PORTS = {"api": 8500, "app": 8501, "mlflow": 5050}
AIRFLOW_HOST_PORT = 8082
DATABASE_IMAGES = ("postgres:", "mongo:", "redis:")
# Variables read by Kedro itself rather than by the project's code.
KEDRO_VARIABLES = {"KEDRO_ENV", "KEDRO_DISABLE_TELEMETRY"}
SECRET = re.compile(r"PASSWORD|SECRET|TOKEN|(^|_)KEYS?$")


def project_services() -> dict[str, dict[str, Any]]:
    """The services of the project image (./Dockerfile): their commands are the project's.
    Others built here (Airflow's image, issue 15) run their own program."""

    def dockerfile(service: dict[str, Any]) -> str | None:
        build = service.get("build")
        if build is None:
            return None
        return "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")

    return {name: s for name, s in SERVICES.items() if dockerfile(s) == "Dockerfile"}


def databases() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in SERVICES.items()
        if service.get("image", "").startswith(DATABASE_IMAGES)
    }


def variables_the_code_reads() -> set[str]:
    """Every environment variable the project reads: `${env:NAME}` in conf/, os.environ in the
    code, the API's settings (API_* and their aliases), and Kedro's own."""
    found = set(KEDRO_VARIABLES)
    for path in (PROJECT_ROOT / "conf").rglob("*.yml"):
        found |= set(re.findall(r"\$\{env:(\w+)", path.read_text()))
    code = [*(PROJECT_ROOT / "src").rglob("*.py"), *(PROJECT_ROOT / "serving").rglob("*.py")]
    code += (PROJECT_ROOT / "app").rglob("*.py")
    for path in code:
        text = path.read_text()
        found |= set(re.findall(r"os\.(?:environ\.get|getenv)\(\s*\"(\w+)\"", text))
        found |= set(re.findall(r"os\.environ\[\"(\w+)\"\]", text))
    prefix = Settings.model_config.get("env_prefix", "")
    for name, info in Settings.model_fields.items():
        aliases = getattr(info.validation_alias, "choices", None)
        found |= set(aliases) if aliases else {f"{prefix}{name}".upper()}
    return found


# --- Compose reads it ------------------------------------------------------------------------


def test_compose_resolves_the_stack_with_an_env_made_from_the_example(
    config: dict[str, Any],
) -> None:
    assert set(config["services"]) == set(SERVICES)
    for name, service in config["services"].items():
        text = str(service).replace("$${", "")  # `$$` escapes a variable the container expands
        assert "${" not in text, f"{name}: a variable was left uninterpolated"


def test_new_env_fills_every_secret_and_the_ui_sends_a_key_the_api_accepts(
    env_file: Path, config: dict[str, Any]
) -> None:
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    required = {name for name, value in example_variables().items() if value == ""}
    assert required and all(len(values[name]) >= 32 for name in required)
    assert len({values[name] for name in required - {"API_KEY"}}) == len(required) - 1
    services = config["services"]
    assert services["app"]["environment"]["API_KEY"] in services["api"]["environment"][
        "API_KEYS"
    ].split(",")
    assert env_file.stat().st_mode & 0o077 == 0, ".env must be readable by its owner only"


def test_new_env_never_overwrites_an_existing_env(env_file: Path) -> None:
    before = env_file.read_text()
    again = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "deploy" / "new_env.py"), str(env_file)],
        capture_output=True,
        text=True,
    )
    assert again.returncode != 0 and "exists" in again.stderr
    assert env_file.read_text() == before


def test_without_the_secrets_compose_refuses_to_start_and_names_each_one() -> None:
    """The example as copied (`cp .env.example .env`) leaves every secret empty: compose stops
    with the message of each `${NAME:?message}`, and those are exactly the example's secrets."""
    result = docker_compose(ENV_EXAMPLE, "config", "--quiet")

    assert result.returncode != 0
    missing = set(re.findall(r"required variable (\w+) is missing a value", result.stderr))
    empty = {name for name, value in example_variables().items() if value == ""}
    assert (
        missing
        == empty
        == {
            "POSTGRES_PASSWORD",
            "MONGO_PASSWORD",
            "REDIS_PASSWORD",
            "API_KEYS",
            "API_KEY",
            "AIRFLOW_ADMIN_PASSWORD",
            "AIRFLOW_FERNET_KEY",
            "AIRFLOW_SECRET_KEY",
        }
    )
    assert "set POSTGRES_PASSWORD in .env" in result.stderr


# --- variables --------------------------------------------------------------------------------


def test_every_variable_compose_reads_is_in_env_example_and_nothing_more() -> None:
    referenced = referenced_variables(COMPOSE_FILE.read_text())
    assert set(referenced) == set(example_variables())


def test_no_secret_has_a_default() -> None:
    """A secret is required (`${NAME:?…}`) or optional and empty by default (`${NAME:-}`)."""
    referenced = referenced_variables(COMPOSE_FILE.read_text())
    secrets = {name for name in referenced if SECRET.search(name)}
    assert {"POSTGRES_PASSWORD", "MONGO_PASSWORD", "REDIS_PASSWORD", "API_KEYS"} <= secrets
    for name in secrets:
        for usage in referenced[name]:
            assert usage.startswith(":?") or usage == ":-", f"${{{name}{usage}}}: a default"
    for name, value in example_variables().items():
        if SECRET.search(name):
            assert not value, f".env.example must not suggest a value for {name}"


def test_secrets_stay_out_of_git() -> None:
    for path in (".env", "conf/local/credentials.yml"):
        ignored = subprocess.run(
            ["git", "check-ignore", "--quiet", path], cwd=PROJECT_ROOT, check=False
        )
        assert ignored.returncode == 0, f"{path} is not git-ignored"


def test_every_variable_given_to_a_project_service_is_read_by_the_code() -> None:
    """A misspelt variable would be silently ignored (the seed's API never saw its data)."""
    read = variables_the_code_reads()
    for name, service in project_services().items():
        unknown = set(service.get("environment") or {}) - read
        assert not unknown, f"{name}: nothing reads {sorted(unknown)}"


# --- ports and addresses ----------------------------------------------------------------------


def test_no_database_publishes_a_port_and_each_checks_its_health() -> None:
    assert set(databases()) == {"postgres", "mongo", "redis"}
    for name, service in databases().items():
        assert "ports" not in service, f"{name} must not be published"
        assert "healthcheck" in service, f"{name} needs a health check"


def test_published_ports_are_the_original_ones_on_the_loopback_only(
    config: dict[str, Any],
) -> None:
    published = {}
    for name, service in config["services"].items():
        for port in service.get("ports") or []:
            assert port["host_ip"] == "127.0.0.1", f"{name}: published beyond the loopback"
            published[name] = int(port["published"])
    assert {name: published[name] for name in HOST_PORTS} == HOST_PORTS
    others = set(published) - set(HOST_PORTS)
    assert all(published[name] == AIRFLOW_HOST_PORT for name in others), others


def test_the_readme_gives_each_published_url(config: dict[str, Any]) -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    for name, service in config["services"].items():
        for port in service.get("ports") or []:
            assert f"http://127.0.0.1:{port['published']}" in readme, name


def test_each_server_listens_where_its_ports_and_peers_expect_it(config: dict[str, Any]) -> None:
    """`--port`/`--server.port` is the container port compose publishes, the health check asks
    that port, and every `http://<service>:<port>` a peer uses is a port the service listens on."""
    services = config["services"]
    listening: dict[str, set[int]] = {}
    for name, service in services.items():
        command = [str(arg) for arg in service.get("command") or []]
        flags = {"--port", "--server.port"}
        ports = {int(command[i + 1]) for i, arg in enumerate(command[:-1]) if arg in flags}
        listening[name] = ports
        for published in service.get("ports") or []:
            assert int(published["target"]) in ports, f"{name}: publishes a port it does not use"
        test = " ".join((service.get("healthcheck") or {}).get("test") or [])
        for port in re.findall(r"//(?:127\.0\.0\.1|localhost):(\d+)", test):
            assert int(port) in ports, f"{name}: its health check asks port {port}"
    defaults = {"postgres": 5432, "mongo": 27017, "redis": 6379}
    for name in databases():
        listening[name] = {defaults[name]}
    text = str(services)
    for host, port in re.findall(r"[a-z+]+://(?:[^@/\s'\"]*@)?([\w-]+):(\d+)", text):
        if host in services:
            assert int(port) in listening[host], f"{host}:{port}: nothing listens there"


def test_each_postgres_database_a_service_uses_is_created(config: dict[str, Any]) -> None:
    """POSTGRES_DB, or a CREATE DATABASE in a script mounted in docker-entrypoint-initdb.d."""
    postgres = config["services"]["postgres"]
    created = {postgres["environment"]["POSTGRES_DB"]}
    for volume in postgres.get("volumes") or []:
        if volume["target"].startswith("/docker-entrypoint-initdb.d/"):
            script = Path(volume["source"]).read_text()
            created |= set(re.findall(r"CREATE DATABASE (\w+)", script))
    used = set(re.findall(r"@postgres:5432/(\w+)", str(config["services"])))
    assert {"arxiv", "mlflow"} <= used <= created


# --- commands, modules, files -------------------------------------------------------------------


def test_every_service_has_a_pinned_image_or_a_build_of_this_repository() -> None:
    for name, service in SERVICES.items():
        if "build" in service:
            context = service["build"] if isinstance(service["build"], str) else None
            context = context or service["build"]["context"]
            dockerfile = "Dockerfile"
            if isinstance(service["build"], dict):
                dockerfile = service["build"].get("dockerfile", dockerfile)
            assert (PROJECT_ROOT / context / dockerfile).is_file(), name
        else:
            image = service["image"]
            assert re.search(r":\d+(\.\d+)+", image), f"{name}: {image} is not a pinned version"


def test_dependencies_volumes_and_mounted_files_exist(config: dict[str, Any]) -> None:
    for name, service in config["services"].items():
        for dependency in service.get("depends_on") or {}:
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
        for volume in service.get("volumes") or []:
            if volume["type"] == "bind":
                assert Path(volume["source"]).exists(), f"{name}: {volume['source']} is missing"
            else:
                assert volume["source"] in COMPOSE["volumes"], f"{name}: {volume['source']}"


def test_the_jobs_run_registered_pipelines_and_servers_run_existing_modules() -> None:
    configure_project("arxiv_kedro")
    for name, service in project_services().items():
        command = service["command"]
        if command[:2] == ["kedro", "run"]:
            pipeline = command[command.index("--pipeline") + 1]
            assert pipeline in pipelines, f"{name}: no pipeline {pipeline!r}"
            assert command[command.index("--env") + 1] == "prod"
            assert service["healthcheck"] == {"disable": True}, f"{name} is a job"
        elif command[0] == "uvicorn":
            module, _, attribute = command[1].partition(":")
            assert (PROJECT_ROOT / (module.replace(".", "/") + ".py")).is_file(), name
            assert attribute == "app"
        elif command[0] == "streamlit":
            assert (PROJECT_ROOT / command[command.index("run") + 1]).is_file(), name
        for argument in command:
            if str(argument).startswith("deploy/"):
                assert (PROJECT_ROOT / argument).is_file(), f"{name}: {argument}"


def test_health_checks_use_the_shipped_script() -> None:
    for name, service in project_services().items():
        test = (service.get("healthcheck") or {}).get("test")
        if test:
            assert test[:3] == ["CMD", "python", "deploy/healthcheck.py"], name


def test_the_api_serves_the_prod_stores_behind_keys_and_the_ui_talks_to_it_only() -> None:
    api, ui = SERVICES["api"], SERVICES["app"]
    environment = api["environment"]
    assert environment["KEDRO_ENV"] == "prod"
    assert {"DATABASE_URL", "MONGO_URI", "REDIS_URL", "MLFLOW_TRACKING_URI"} <= set(environment)
    assert re.fullmatch(r"\$\{API_KEYS:\?[^}]+\}", environment["API_KEYS"]), "keys are required"
    assert ui["environment"]["API_URL"] == "http://api:8500" and "api" in ui["depends_on"]
    assert not {"DATABASE_URL", "MONGO_URI", "REDIS_URL"} & set(ui["environment"]), "API only"


def test_mlflow_keeps_its_registry_in_postgres_and_every_job_tracks_to_it() -> None:
    command = SERVICES["mlflow"]["command"]
    backend = command[command.index("--backend-store-uri") + 1]
    assert urlsplit(backend).scheme == "postgresql+psycopg" and backend.endswith("/mlflow")
    hosts = command[command.index("--allowed-hosts") + 1].split(",")
    assert {"mlflow:5000", "127.0.0.1:5050", "localhost:5050"} <= set(hosts)
    for name, service in project_services().items():
        if service["command"][:2] == ["kedro", "run"]:
            assert service["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000", name
    for job in ("training", "inference"):
        assert "mlflow" in SERVICES[job]["depends_on"]


def test_one_image_serves_every_project_service() -> None:
    images = {service["image"] for service in project_services().values()}
    assert images == {"${ARXIV_KEDRO_IMAGE:-arxiv-kedro}:${ARXIV_KEDRO_VERSION:-local}"}


@pytest.mark.parametrize("path", ["docker-compose.yaml", ".github/dependabot.yml"])
def test_yaml_files_parse(path: str) -> None:
    assert yaml.safe_load((PROJECT_ROOT / path).read_text())


def test_every_source_folder_is_a_package_so_non_editable_installs_ship_it() -> None:
    """The image installs the project without -e: folders without __init__.py vanish."""
    source = PROJECT_ROOT / "src" / "arxiv_kedro"
    for folder in {path.parent for path in source.rglob("*.py")}:
        if "__pycache__" not in folder.parts:
            assert (folder / "__init__.py").exists(), f"{folder} is not a package"
