"""`RegisteredModelDataset`: the classifier version holding an alias in the MLflow registry."""

from __future__ import annotations

from typing import Any, NoReturn

from kedro.io import AbstractDataset, DatasetError

from arxiv_kedro.classification import registry


class RegisteredModelDataset(AbstractDataset[None, "registry.RegisteredVersion | None"]):
    """Loads the model version holding `alias` (its tags; the model itself with `.load()`), or
    None when no version holds it yet. The registry is MLflow's, wherever the run's tracking
    URI points (`conf/*/mlflow.yml`, `MLFLOW_TRACKING_URI`).

    Example catalog entry::

        champion:
          type: arxiv_kedro.datasets.RegisteredModelDataset
          name: arxiv-classifier
          alias: champion
    """

    def __init__(
        self,
        name: str = registry.MODEL_NAME,
        alias: str = registry.CHAMPION,
        metadata: dict[str, Any] | None = None,
    ):
        self.name, self.alias, self.metadata = name, alias, metadata

    def load(self) -> registry.RegisteredVersion | None:
        return registry.champion_version(self.name, self.alias)

    def save(self, data: None) -> NoReturn:
        raise DatasetError("RegisteredModelDataset is read-only: training registers models")

    def _describe(self) -> dict[str, Any]:
        return {"name": self.name, "alias": self.alias}
