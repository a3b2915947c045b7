"""Custom Kedro datasets: thin adapters from the catalog to the sources and stores."""

from arxiv_kedro.datasets.paper_source import PaperSourceDataset
from arxiv_kedro.datasets.paper_store import PaperStoreDataset

__all__ = ["PaperSourceDataset", "PaperStoreDataset"]
