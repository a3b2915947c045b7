"""`RunLockDataset`: the lock that keeps two runs of a pipeline from overlapping."""

from __future__ import annotations

from typing import Any, NoReturn

from kedro.io import AbstractDataset, DatasetError

from arxiv_kedro.stores import masked
from arxiv_kedro.stores.coordination import FileLock, RedisLock, RedisStore


class RunLockDataset(AbstractDataset[None, "RedisLock | FileLock"]):
    """Loads an (unacquired) lock: on Redis when `redis_url` is set, shared by every machine of
    the deployment; otherwise a file lock, shared by the processes of this machine. The node
    holds it with ``with lock:``; a second run fails at once with `LockHeld`.

    Example catalog entries::

        ingestion_lock:                     # conf/base
          type: arxiv_kedro.datasets.RunLockDataset
          name: ingestion
          path: data/03_primary/ingestion.lock

        ingestion_lock:                     # conf/prod
          type: arxiv_kedro.datasets.RunLockDataset
          name: ingestion
          redis_url: ${env:REDIS_URL,redis://redis:6379/0}
    """

    def __init__(
        self,
        name: str,
        path: str | None = None,
        redis_url: str | None = None,
        ttl_seconds: float = 60.0,
        metadata: dict[str, Any] | None = None,
    ):
        if not (path or redis_url):
            raise DatasetError("RunLockDataset needs a file `path` or a `redis_url`")
        self.name, self.path, self.redis_url = name, path, redis_url
        self.ttl_seconds = ttl_seconds
        self.metadata = metadata

    def load(self) -> RedisLock | FileLock:
        if self.redis_url:
            return RedisLock(RedisStore(self.redis_url), self.name, self.ttl_seconds)
        return FileLock(self.path, self.name)

    def save(self, data: None) -> NoReturn:
        raise DatasetError("RunLockDataset is read-only")

    def _describe(self) -> dict[str, Any]:
        where = {"redis_url": masked(self.redis_url)} if self.redis_url else {"path": self.path}
        return {"name": self.name, **where}
