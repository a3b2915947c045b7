"""Custom Kedro datasets: thin adapters from the catalog to the sources and stores."""

from arxiv_kedro.datasets.api_cache import ApiCacheDataset
from arxiv_kedro.datasets.document_store import DocumentStoreDataset
from arxiv_kedro.datasets.llm_client import LlmClientDataset
from arxiv_kedro.datasets.paper_source import PaperSourceDataset
from arxiv_kedro.datasets.paper_store import PaperStoreDataset
from arxiv_kedro.datasets.redis_staging import RedisStagingDataset
from arxiv_kedro.datasets.registered_model import RegisteredModelDataset
from arxiv_kedro.datasets.run_lock import RunLockDataset

__all__ = [
    "ApiCacheDataset",
    "DocumentStoreDataset",
    "LlmClientDataset",
    "PaperSourceDataset",
    "PaperStoreDataset",
    "RedisStagingDataset",
    "RegisteredModelDataset",
    "RunLockDataset",
]
