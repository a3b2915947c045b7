"""Rolling the champion back: `python -m arxiv_kedro.classification.champion` on a real MLflow
registry (SQLite), as an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from arxiv_kedro.classification import registry

pytestmark = pytest.mark.slow  # each command starts a Python process that imports MLflow


@pytest.fixture
def registry_uri(tmp_path: Path) -> str:
    """A registry holding versions 1, 2 and 3 of the classifier, version 3 the champion."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(registry.MODEL_NAME)
    for number, score in enumerate(("0.71", "0.74", "0.69"), start=1):
        model = tmp_path / f"model-{number}"
        model.mkdir()
        client.create_model_version(
            registry.MODEL_NAME, str(model), tags={"evaluation.macro_f1": score}
        )
    client.set_registered_model_alias(registry.MODEL_NAME, registry.CHAMPION, "3")
    return uri


def champion_cli(uri: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    env.pop("MLFLOW_REGISTRY_URI", None)
    return subprocess.run(
        [sys.executable, "-m", "arxiv_kedro.classification.champion", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def champion_of(uri: str) -> str:
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    return str(client.get_model_version_by_alias(registry.MODEL_NAME, registry.CHAMPION).version)


def test_listing_marks_the_champion_and_shows_each_versions_score(registry_uri: str) -> None:
    listed = champion_cli(registry_uri)

    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["3", "2", "1"]
    assert lines[0].endswith("@champion") and "macro_f1=0.69" in lines[0]
    assert "macro_f1=0.74" in lines[1] and "@champion" not in lines[1]


def test_set_rolls_the_alias_back_to_an_earlier_version(registry_uri: str) -> None:
    rolled = champion_cli(registry_uri, "set", "2")

    assert rolled.returncode == 0, rolled.stderr
    assert rolled.stdout.strip() == "@champion: version 3 -> version 2"
    assert champion_of(registry_uri) == "2"
    assert "@champion" in champion_cli(registry_uri).stdout.splitlines()[1]


def test_an_unknown_version_is_refused_and_the_champion_stays(registry_uri: str) -> None:
    refused = champion_cli(registry_uri, "set", "9")

    assert refused.returncode == 1
    assert "no version 9 of 'arxiv-classifier'" in refused.stderr
    assert champion_of(registry_uri) == "3"


def test_a_wrong_command_shows_the_usage(registry_uri: str) -> None:
    wrong = champion_cli(registry_uri, "rollback")

    assert wrong.returncode == 2 and "champion set 3" in wrong.stderr
