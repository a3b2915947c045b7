"""Every Dockerfile, read by BuildKit's own parser: pinned base, lockfile install, non-root, a
health check, nothing copied that the build context lacks or that must stay out of it; and the
project image's runtime environment, made here by its own steps (no Docker engine needed)."""

from __future__ import annotations

import re
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import pytest

from tests.conftest import PROJECT_ROOT, free_port
from tests.deployment.conftest import PROJECT_DOCKERFILE
from tests.deployment.stack import BuildContext, LocalImage, copied_sources, dockerfiles, stages

DOCKERFILES = dockerfiles()
HEALTHCHECK = PROJECT_ROOT / "deploy" / "healthcheck.py"
# What must never reach an image builder (secrets, data, local environments).
NEVER_SENT = [
    ".env",
    "conf/local/credentials.yml",
    ".venv/bin/python",
    ".git/config",
    "data/03_primary/arxiv.db",
    "mlflow.db",
    "mlruns/0/meta.yaml",
    "tests/conftest.py",
    "notebooks/explore.ipynb",
]
DEV_ONLY = ("pytest", "ruff", "playwright", "nx_27017", "schemathesis", "nbclient", "ipykernel")


def ids(paths: list[Path]) -> list[str]:
    return [str(path.relative_to(PROJECT_ROOT)) for path in paths]


def context_of(dockerfile: Path) -> BuildContext:
    """Each Dockerfile builds from the repository root (compose's and CI's `context: .`)."""
    return BuildContext.of(PROJECT_ROOT, dockerfile)


def test_the_project_has_its_dockerfile() -> None:
    assert PROJECT_DOCKERFILE in DOCKERFILES


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=ids(DOCKERFILES))
def test_every_base_image_is_pinned_by_digest(dockerfile: Path) -> None:
    names: set[str] = set()
    for stage in stages(dockerfile):
        if stage.base not in names:
            assert re.search(r"^[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}$", stage.base), stage.base
        if stage.name:
            names.add(stage.name)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=ids(DOCKERFILES))
def test_the_image_runs_as_a_user_and_checks_its_health(dockerfile: Path) -> None:
    final = stages(dockerfile)[-1]
    user = final.last("USER")
    assert user is not None and user.value[0].split(":")[0] not in ("root", "0")
    assert final.last("HEALTHCHECK") is not None


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=ids(DOCKERFILES))
def test_dependencies_come_from_the_lockfile(dockerfile: Path) -> None:
    """requirements.lock is copied in, and a RUN installs with it (itself, or a copied script
    that reads it)."""
    copied = {source for stage in stages(dockerfile) for source, _ in copied_sources(stage)}
    assert "requirements.lock" in copied
    scripts = [s for s in copied if (PROJECT_ROOT / s).is_file() and s.endswith((".py", ".sh"))]
    readers = {s for s in scripts if "requirements.lock" in (PROJECT_ROOT / s).read_text()}
    runs = [run.value[0] for stage in stages(dockerfile) for run in stage.all("RUN")]
    assert any("requirements.lock" in run or any(s in run for s in readers) for run in runs)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=ids(DOCKERFILES))
def test_every_copied_file_exists_and_reaches_the_builder(dockerfile: Path) -> None:
    """A copied file must reach the builder; a copied folder may lose what .dockerignore keeps
    out of it (conf/local/), not everything."""
    context = context_of(dockerfile)
    for stage in stages(dockerfile):
        for source, _ in copied_sources(stage):
            files = context.files(source)
            assert files, f"COPY {source}: nothing there"
            sent = [f for f in files if context.sends(f)]
            assert sent, f"COPY {source}: .dockerignore keeps it out of the build context"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=ids(DOCKERFILES))
def test_secrets_data_and_environments_never_reach_the_builder(dockerfile: Path) -> None:
    context = context_of(dockerfile)
    assert [path for path in NEVER_SENT if context.sends(path)] == []
    for stage in stages(dockerfile):
        for command in (*stage.all("ARG"), *stage.all("ENV")):
            for word in command.value:
                assert not re.search(r"PASSWORD|SECRET|TOKEN|API_KEY", word), command.original


def test_the_project_image_builds_in_one_stage_and_runs_from_another() -> None:
    build, runtime = stages(PROJECT_DOCKERFILE)[1:]
    assert any("deploy/install.py" in run.value[0] for run in build.all("RUN"))
    copied = [c for c in runtime.all("COPY") if "--from=build" in c.flags]
    assert [c.value for c in copied] == [("/opt/venv", "/opt/venv")]
    assert not any("pip" in run.value[0] for run in runtime.all("RUN")), "no installs at run time"
    assert runtime.env()["PATH"].startswith("/opt/venv/bin:")


def test_the_project_image_serves_the_api_by_default_and_checks_that_port() -> None:
    runtime = stages(PROJECT_DOCKERFILE)[-1]
    command = list(runtime.last("CMD").value)
    port = command[command.index("--port") + 1]
    assert runtime.last("EXPOSE").value == (port,)
    healthcheck = list(runtime.last("HEALTHCHECK").value)
    assert healthcheck == ["CMD", "python", "deploy/healthcheck.py"]
    assert f"http://127.0.0.1:{port}/health" in HEALTHCHECK.read_text()
    module = command[command.index("uvicorn") + 1].split(":")[0]
    assert (PROJECT_ROOT / (module.replace(".", "/") + ".py")).is_file()


# --- the health check script -------------------------------------------------------------------


class _Answer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/health" else 503
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


def healthcheck(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), url], capture_output=True, text=True, timeout=30
    )


def test_the_health_check_passes_on_200_only() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert healthcheck(f"{base}/health").returncode == 0
        failing = healthcheck(f"{base}/ready")
        assert failing.returncode == 1 and "did not answer 200" in failing.stderr
    finally:
        server.shutdown()
        server.server_close()
    assert healthcheck(f"http://127.0.0.1:{free_port()}/health").returncode == 1


# --- the runtime environment, made here -----------------------------------------------------------


@pytest.mark.slow
def test_the_runtime_environment_has_the_locked_runtime_packages_only(
    project_image: LocalImage,
) -> None:
    venv = project_image.paths["/opt/venv"]
    frozen = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "freeze", "--all"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    locked = {
        line.split("==")[0].lower().replace("_", "-"): line
        for line in (PROJECT_ROOT / "requirements.lock").read_text().splitlines()
        if "==" in line
    }
    installed = {re.split(r"==| @ ", line)[0].lower().replace("_", "-"): line for line in frozen}
    project = installed.pop("arxiv-kedro")
    assert not project.startswith("-e"), f"the project is installed editable: {project}"
    for tool in ("pip", "setuptools", "wheel"):
        installed.pop(tool, None)
    assert {name: line for name, line in installed.items() if locked.get(name) != line} == {}
    assert not {name.replace("_", "-") for name in DEV_ONLY} & set(installed)


@pytest.mark.slow
def test_the_runtime_environment_has_every_command_compose_runs(
    project_image: LocalImage, config: dict
) -> None:
    venv_bin = project_image.paths["/opt/venv"] / "bin"
    for name, service in config["services"].items():
        build = service.get("build") or {}
        if build.get("dockerfile") == "Dockerfile" and service.get("command"):
            assert (venv_bin / service["command"][0]).is_file(), name
    assert (venv_bin / "alembic").is_file()  # README: migrations by hand
    assert (project_image.workdir / "deploy" / "healthcheck.py").is_file()
    assert not (project_image.workdir / "conf" / "local").exists()
