"""`kedro viz build` on the project: the graph it draws shows ingestion's steps and the datasets
that connect ingestion to inference, summarization and training."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_kedro_run import PROJECT_ROOT, kedro_env

pytestmark = pytest.mark.slow
KEDRO = Path(sys.executable).parent / "kedro"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("viz")
    shutil.copy(PROJECT_ROOT / "pyproject.toml", project)
    shutil.copytree(PROJECT_ROOT / "conf" / "base", project / "conf" / "base")
    (project / "conf" / "local").mkdir()
    (project / "src").mkdir()  # the package itself is installed (editable) in the venv
    result = subprocess.run(
        [str(KEDRO), "viz", "build"],
        cwd=project,
        env=kedro_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return project / "build"


def graph(built: Path, pipeline: str) -> tuple[dict[str, str], set[tuple[str, str]]]:
    """The pipeline as kedro-viz drew it: node name -> type, and edges between names."""
    drawn = json.loads((built / "api" / "pipelines" / pipeline).read_text())
    names = {node["id"]: node["name"] for node in drawn["nodes"]}
    kinds = {node["name"]: node["type"] for node in drawn["nodes"]}
    return kinds, {(names[e["source"]], names[e["target"]]) for e in drawn["edges"]}


def test_the_build_is_a_site_with_every_pipeline(built: Path) -> None:
    assert (built / "index.html").is_file()
    assert {p.name for p in (built / "api" / "pipelines").iterdir()} >= {
        "__default__", "all", "ingestion", "backfill", "training", "inference", "summarization",
    }  # fmt: skip


def test_ingestion_is_drawn_in_its_steps(built: Path) -> None:
    kinds, edges = graph(built, "ingestion")

    steps = ["plan_ingestion", "fetch_pages", "store_fetched_papers", "report_ingestion"]
    assert all(kinds[step] == "task" for step in steps)
    assert {
        ("ingestion_watermarks", "plan_ingestion"),
        ("plan_ingestion", "ingestion_plan"),
        ("arxiv_api", "fetch_pages"),
        ("fetch_pages", "raw_pages"),
        ("raw_pages", "store_fetched_papers"),
        ("store_fetched_papers", "articles"),
        ("store_fetched_papers", "papers"),
        ("papers", "report_ingestion"),
    } <= edges


def test_papers_connect_ingestion_to_inference_summarization_and_training(built: Path) -> None:
    kinds, edges = graph(built, "all")

    assert kinds["papers"] == "data"  # papers@batches, @unlabeled, @newest, @labeled: one dataset
    assert ("store_fetched_papers", "papers") in edges
    readers = {target for source, target in edges if source == "papers"}
    assert {"predict_pending", "summarize_papers", "split_by_time"} <= readers
