"""`RedisStagingDataset`: hand-off of intermediate data between steps run as separate processes."""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset, DatasetError

from arxiv_kedro.coordination.redis_store import RedisStore
from arxiv_kedro.coordination.staging import decode_staged, encode_staged
from arxiv_kedro.stores import masked


class RedisStagingDataset(AbstractDataset[Any, Any]):
    """Stores one value under `<namespace>:staging:<key>` with a TTL: pandas DataFrames as Arrow
    IPC, anything JSON-serializable as JSON — never pickle, so a reader never runs code from
    the store. `load` of a missing (or expired) key is an error naming it.

    This is how Airflow tasks, each its own `kedro run --nodes ...` process, pass data on;
    the embedded default uses ordinary file datasets instead.

    Example catalog entry::

        fetched_batch:
          type: arxiv_kedro.datasets.RedisStagingDataset
          key: ingestion/fetched_batch
          url: ${env:REDIS_URL,redis://redis:6379/0}
          ttl_seconds: 86400
    """

    def __init__(
        self,
        key: str,
        url: str,
        ttl_seconds: float = 86_400,
        namespace: str = "arxiv-kedro",
        metadata: dict[str, Any] | None = None,
    ):
        self.key, self.url = key, url
        self.ttl_seconds = ttl_seconds
        self.namespace = namespace
        self.metadata = metadata
        self._store: RedisStore | None = None

    @property
    def _redis(self) -> RedisStore:
        if self._store is None:
            self._store = RedisStore(self.url, self.namespace)
        return self._store

    def load(self) -> Any:
        store = self._redis
        with store.guard(f"read staged {self.key!r}"):
            blob = store.client.get(store.key("staging", self.key))
        if blob is None:
            raise DatasetError(f"nothing staged under {self.key!r} at {masked(self.url)}")
        return decode_staged(blob)

    def save(self, data: Any) -> None:
        store = self._redis
        blob = encode_staged(data)
        with store.guard(f"stage {self.key!r}"):
            store.client.set(store.key("staging", self.key), blob, px=int(self.ttl_seconds * 1000))

    def _exists(self) -> bool:
        store = self._redis
        with store.guard(f"look up staged {self.key!r}"):
            return bool(store.client.exists(store.key("staging", self.key)))

    def _describe(self) -> dict[str, Any]:
        return {"key": self.key, "url": masked(self.url), "ttl_seconds": self.ttl_seconds}
