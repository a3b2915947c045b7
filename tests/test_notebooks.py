"""notebooks/: committed without outputs, and each runs top to bottom (nbclient, a real kernel)
on a small project of real papers: the training test's ~2,850 papers of the daily snapshot
ingested by `kedro run`, a champion trained by `kedro run --pipeline training`, offline
summaries by `kedro run --pipeline summarization`. The executed copies are kept in
test-artifacts/notebooks/ for a look."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tests.pipelines.training.test_pipeline import LABELS, set_training, training_selection
from tests.test_kedro_run import PROJECT_ROOT, kedro_env, kedro_run

NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "notebooks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_notebooks_have_no_outputs(path: Path) -> None:
    """Outputs belong to whoever runs a notebook, not to git (they hold data, and rot)."""
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"cell {index}"


def test_there_is_the_exploration_notebook() -> None:
    assert PROJECT_ROOT / "notebooks" / "explore.ipynb" in NOTEBOOKS


@pytest.fixture(scope="module")
def explored(tmp_path_factory: pytest.TempPathFactory, daily_snapshot: Path) -> dict[str, Any]:
    """A project like the repository's, filled by its own pipelines through `kedro run`."""
    project = tmp_path_factory.mktemp("notebook-project")
    shutil.copy(PROJECT_ROOT / "pyproject.toml", project)
    shutil.copytree(PROJECT_ROOT / "conf" / "base", project / "conf" / "base")
    (project / "conf" / "local").mkdir()
    (project / "src").mkdir()  # the package itself is installed (editable) in the venv
    shutil.copytree(PROJECT_ROOT / "notebooks", project / "notebooks")
    selected, _ = training_selection(daily_snapshot)
    snapshot = project / "snapshot.jsonl"
    snapshot.write_text("".join(selected), encoding="utf-8")
    set_training(project)
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}"}
    for args in ((), ("--pipeline", "training"), ("--pipeline", "summarization")):
        result = kedro_run(project, *args, ARXIV_SNAPSHOT=str(snapshot), **env)
        assert result.returncode == 0, result.stdout[-4000:]
    # as the store keeps them: whitespace normalized
    titles = [" ".join(json.loads(line)["title"].split()) for line in selected]
    return {"project": project, "env": env, "papers": len(selected), "titles": titles}


def outputs(cell: Any) -> str:
    """What a code cell showed: its printed text, results and displays (text forms)."""
    shown = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            shown.append(output.text)
        elif output.output_type in ("execute_result", "display_data"):
            data = output.data
            shown.append(data.get("text/markdown") or data.get("text/plain", ""))
    return "\n".join(shown)


def images(cell: Any) -> int:
    return sum("image/png" in output.get("data", {}) for output in cell.get("outputs", []))


@pytest.mark.slow
def test_the_exploration_notebook_runs_on_a_project_of_real_papers(
    explored: dict[str, Any],
) -> None:
    project = explored["project"]
    path = project / "notebooks" / "explore.ipynb"
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )

    try:
        client.execute(env=kedro_env(**explored["env"]))
    except CellExecutionError as error:
        pytest.fail(f"{error.ename}: {error.evalue}\n{error}")
    finally:  # what it showed, up to the failing cell if any
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, ARTIFACTS / path.name)
    cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    text = {index: outputs(cell) for index, cell in enumerate(cells)}
    every = "\n".join(text.values())
    assert f"{explored['papers']:,} papers, {len(LABELS)} categories" in every
    assert "arxiv-classifier version 1, trained through" in every
    per_class = next(t for t in text.values() if "precision" in t and "support" in t)
    assert all(label in per_class for label in LABELS)
    # the weekly papers, the F1 per category, the confusion matrix
    assert sum(images(cell) for cell in cells) == 3
    summaries = next(t for t in text.values() if "translations:" in t)
    assert any(title in summaries for title in explored["titles"])
    assert "extractive" in summaries
    prediction = text[len(cells) - 1]
    assert "probability_3" in prediction and any(label in prediction for label in LABELS)
