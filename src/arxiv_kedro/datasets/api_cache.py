"""`ApiCacheDataset`: the REST API's cache of hot reads, which the pipelines invalidate."""

from __future__ import annotations

from typing import Any, NoReturn

from kedro.io import AbstractDataset, DatasetError

from arxiv_kedro.coordination.cache import RedisCache
from arxiv_kedro.coordination.redis_store import RedisStore
from arxiv_kedro.stores import masked


class ApiCacheDataset(AbstractDataset[None, RedisCache]):
    """Loads the `RedisCache` the API keeps hot reads in. The API reads this catalog entry to
    find its cache; `hooks.CacheInvalidationHook` empties the cache after every node that wrote
    to a store, so readers never wait for a TTL to see new papers, predictions or summaries.
    Without the entry (conf/base) the API caches in its own memory, briefly.

    Example catalog entry::

        api_cache:                          # conf/prod
          type: arxiv_kedro.datasets.ApiCacheDataset
          redis_url: ${env:REDIS_URL,redis://redis:6379/0}
    """

    def __init__(
        self, redis_url: str, namespace: str = "arxiv-kedro", metadata: dict[str, Any] | None = None
    ):
        self.redis_url, self.namespace = redis_url, namespace
        self.metadata = metadata
        self._cache: RedisCache | None = None

    def load(self) -> RedisCache:
        if self._cache is None:
            self._cache = RedisCache(RedisStore(self.redis_url, self.namespace))
        return self._cache

    def save(self, data: None) -> NoReturn:
        raise DatasetError("ApiCacheDataset is read-only")

    def _describe(self) -> dict[str, Any]:
        return {"redis_url": masked(self.redis_url), "namespace": self.namespace}
