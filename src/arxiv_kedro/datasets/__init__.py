"""Custom Kedro datasets: each loads or saves one kind of data through the sources and stores.
Nodes never receive a store client; service clients (arXiv API, LLM, the champion) are inputs."""

from arxiv_kedro.datasets.api_cache import ApiCacheDataset
from arxiv_kedro.datasets.arxiv import ArxivApiDataset, LandingZoneDataset, SnapshotDataset
from arxiv_kedro.datasets.documents import DocumentCollectionDataset, DocumentStoreDataset
from arxiv_kedro.datasets.llm_client import LlmClientDataset
from arxiv_kedro.datasets.redis_staging import RedisStagingDataset
from arxiv_kedro.datasets.registered_model import RegisteredModelDataset
from arxiv_kedro.datasets.relational import (
    IngestionRunDataset,
    LabeledPapersDataset,
    NewestPapersDataset,
    PaperBatchesDataset,
    PredictionsDataset,
    ReadModelDataset,
    UnlabeledPapersDataset,
    WatermarksDataset,
)
from arxiv_kedro.datasets.run_lock import RunLockDataset

__all__ = [
    "ApiCacheDataset",
    "ArxivApiDataset",
    "DocumentCollectionDataset",
    "DocumentStoreDataset",
    "IngestionRunDataset",
    "LabeledPapersDataset",
    "LandingZoneDataset",
    "LlmClientDataset",
    "NewestPapersDataset",
    "PaperBatchesDataset",
    "PredictionsDataset",
    "ReadModelDataset",
    "RedisStagingDataset",
    "RegisteredModelDataset",
    "RunLockDataset",
    "SnapshotDataset",
    "UnlabeledPapersDataset",
    "WatermarksDataset",
]
