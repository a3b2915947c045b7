"""The model registry side: the champion, and a fast entry point to predict with it.

    from arxiv_kedro.classification.registry import load
    classifier = load()                      # models:/arxiv-classifier@champion, loaded once
    classifier.predict(frame)                # DataFrame[title, abstract] -> OUTPUT_COLUMNS

`MLFLOW_TRACKING_URI` chooses the tracking server (default: `sqlite:///mlflow.db`, beside the
project), as it does for the pipelines.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from arxiv_kedro.classification.model import TextClassifier, check_input
from arxiv_kedro.stores import masked

MODEL_NAME = "arxiv-classifier"
CHAMPION = "champion"
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def _uri() -> str:
    # Inside `kedro run`, kedro-mlflow has already set the URI from conf/*/mlflow.yml.
    return mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else tracking_uri()


def client() -> MlflowClient:
    uri = _uri()
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@dataclass(frozen=True)
class RegisteredVersion:
    """A registered model version: what the registry knows, the model loaded on demand."""

    name: str
    version: str
    tags: dict[str, str]
    run_id: str | None = None

    def load(self) -> Classifier:
        return load(self.name, version=self.version)


def champion_version(name: str = MODEL_NAME, alias: str = CHAMPION) -> RegisteredVersion | None:
    """The registered version holding `alias`, or None when there is none (yet)."""
    uri = _uri()
    database = uri.removeprefix("sqlite:///")
    if database != uri and not Path(database).exists():
        return None  # no local registry yet: don't create one just to find it empty
    try:
        found = client().get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise
    return RegisteredVersion(name, str(found.version), dict(found.tags), found.run_id)


@dataclass(frozen=True)
class Classifier:
    """A registered model version, loaded once, predicting batches in-process."""

    name: str
    version: str
    model: TextClassifier
    run_id: str | None = None

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`OUTPUT_COLUMNS` for each row of a DataFrame with `title` and `abstract`."""
        return self.model.predict_top3(check_input(frame))


def load(
    name: str = MODEL_NAME, *, alias: str = CHAMPION, version: str | None = None
) -> Classifier:
    """Load `models:/<name>@<alias>` (or a given version); raises LookupError if absent."""
    uri = _uri()
    registry = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        found = (
            registry.get_model_version(name, version)
            if version is not None
            else registry.get_model_version_by_alias(name, alias)
        )
    except MlflowException as exc:
        wanted = f"version {version}" if version is not None else f"alias @{alias}"
        raise LookupError(
            f"no model {name!r} {wanted} in the registry at {masked(uri)}: "
            "train one with `kedro run --pipeline training`"
        ) from exc
    # A copy is loaded: loading `models:/…` straight from a local artifact store writes
    # `registered_model_meta` into the store, which may be read-only (e.g. mounted in the API).
    with tempfile.TemporaryDirectory(prefix="arxiv-model-") as copy:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=registry.get_model_version_download_uri(name, found.version),
            dst_path=copy,
            tracking_uri=uri,
        )
        pyfunc = mlflow.pyfunc.load_model(local)
        # The pyfunc model runs a Kedro pipeline per call; the entry point calls the model.
        model = pyfunc.unwrap_python_model().loaded_catalog.load("classifier")
    return Classifier(name=name, version=str(found.version), model=model, run_id=found.run_id)
