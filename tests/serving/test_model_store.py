"""The API loads the champion without writing to the MLflow artifact store (which a deployment
may mount read-only)."""

from __future__ import annotations

from pathlib import Path

from arxiv_kedro.classification import registry
from tests.serving.conftest import Champion


def files(root: Path) -> dict[Path, tuple[int, int]]:
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*") if p.is_file()}


def test_loading_the_champion_writes_nothing_to_the_artifact_store(champion: Champion) -> None:
    store = Path(champion.uri.removeprefix("sqlite:///")).parent / "mlruns"
    before = files(store)

    for _ in range(2):  # the API loads it at every start
        model = registry.load(version=champion.version)

    assert model.version == champion.version
    assert files(store) == before
