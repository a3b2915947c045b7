"""`PaperSourceDataset`: the source of raw arXiv records for a run, the API or a snapshot."""

from __future__ import annotations

from typing import Any, NoReturn

from kedro.io import AbstractDataset, DatasetError

from arxiv_kedro.sources.arxiv_api import MIN_DELAY_SECONDS, ArxivApiClient
from arxiv_kedro.sources.snapshot import SnapshotFile
from arxiv_kedro.stores import masked
from arxiv_kedro.stores.coordination import RedisStore, RedisTokenBucket


class PaperSourceDataset(AbstractDataset[None, "ArxivApiClient | SnapshotFile"]):
    """Loads a `SnapshotFile` when `snapshot` names a file, otherwise an `ArxivApiClient`.

    Loading does no I/O: the ingestion node asks the source for batches. The dataset cannot be
    saved.

    Example catalog entry::

        paper_source:
          type: arxiv_kedro.datasets.PaperSourceDataset
          snapshot: ${env:ARXIV_SNAPSHOT,""}   # empty: use the API
          api:
            url: ${env:ARXIV_API_URL,https://export.arxiv.org/api/query}
            page_size: 2000
            delay_seconds: 3
            timeout_seconds: 60
            max_retries: 4
          shared_rate_limit: ${env:REDIS_URL,""}   # conf/prod: the limit holds across processes
    """

    def __init__(
        self,
        api: dict[str, Any] | None = None,
        snapshot: str | None = None,
        snapshot_batch_size: int = 5000,
        shared_rate_limit: str | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        self.api = dict(api or {})
        self.snapshot = snapshot or None
        self.snapshot_batch_size = snapshot_batch_size
        self.shared_rate_limit = shared_rate_limit or None
        self.metadata = metadata

    def load(self) -> ArxivApiClient | SnapshotFile:
        if self.snapshot:
            return SnapshotFile(self.snapshot, batch_size=self.snapshot_batch_size)
        limiter = None
        if self.shared_rate_limit:  # one request per delay_seconds for every process on Redis
            delay = self.api.get("delay_seconds", MIN_DELAY_SECONDS)
            store = RedisStore(self.shared_rate_limit)
            limiter = RedisTokenBucket(store, "arxiv-api", rate=1 / delay)
        return ArxivApiClient(**self.api, rate_limiter=limiter)

    def save(self, data: None) -> NoReturn:
        raise DatasetError("PaperSourceDataset is read-only")

    def _describe(self) -> dict[str, Any]:
        if self.snapshot:
            return {"snapshot": self.snapshot}
        shared = masked(self.shared_rate_limit) if self.shared_rate_limit else None
        return {"api": self.api, "shared_rate_limit": shared}
