"""Custom Kedro datasets: each loads or saves one kind of data through the sources and stores.
Nodes never receive a store client; service clients (arXiv API, LLM, the champion) are inputs.

Each dataset's module is imported when the catalog first names it, so an ingestion run does not
load the model's or MLflow's libraries."""

from importlib import import_module
from typing import Any

_MODULES = {
    "ApiCacheDataset": "api_cache",
    "ArxivApiDataset": "arxiv",
    "DocumentCollectionDataset": "documents",
    "DocumentStoreDataset": "documents",
    "IngestionRunDataset": "relational",
    "LabeledPapersDataset": "relational",
    "LandingZoneDataset": "arxiv",
    "LlmClientDataset": "llm_client",
    "MonitoredPapersDataset": "monitoring",
    "MonitoringMlflowDataset": "monitoring",
    "MonitoringRunsDataset": "monitoring",
    "NewestPapersDataset": "relational",
    "PaperBatchesDataset": "relational",
    "PredictionsDataset": "relational",
    "ReadModelDataset": "relational",
    "RedisStagingDataset": "redis_staging",
    "RegisteredModelDataset": "registered_model",
    "RunLockDataset": "run_lock",
    "SnapshotDataset": "arxiv",
    "UnlabeledPapersDataset": "relational",
    "WatermarksDataset": "relational",
}
__all__ = sorted(_MODULES)


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_MODULES[name]}"), name)
