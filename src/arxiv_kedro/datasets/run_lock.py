"""`RunLockDataset`: the lock that keeps two runs of a pipeline from overlapping."""

from __future__ import annotations

from typing import Any, NoReturn

from kedro.io import AbstractDataset, DatasetError

from arxiv_kedro.coordination.locks import FileLock, RedisLock
from arxiv_kedro.coordination.redis_store import RedisStore
from arxiv_kedro.stores import masked


class RunLockDataset(AbstractDataset[None, "RedisLock | FileLock"]):
    """Loads an (unacquired) lock: on Redis when `redis_url` is set, shared by every machine of
    the deployment; otherwise a file lock, shared by the processes of this machine.
    `hooks.IngestionRunHook` holds it while a pipeline writes paper batches; a second run fails
    at once with `LockHeld`.

    Example catalog entries::

        ingestion_lock:
          type: arxiv_kedro.datasets.RunLockDataset
          name: ingestion
          path: data/03_primary/ingestion.lock
          redis_url: ${globals:redis_url}   # empty: the file lock
    """

    def __init__(
        self,
        name: str,
        path: str | None = None,
        redis_url: str | None = None,
        ttl_seconds: float = 60.0,
        namespace: str = "arxiv-kedro",
        metadata: dict[str, Any] | None = None,
    ):
        if not (path or redis_url):
            raise DatasetError("RunLockDataset needs a file `path` or a `redis_url`")
        self.name, self.path, self.redis_url = name, path, redis_url
        self.ttl_seconds, self.namespace = ttl_seconds, namespace
        self.metadata = metadata

    def load(self) -> RedisLock | FileLock:
        if self.redis_url:
            return RedisLock(
                RedisStore(self.redis_url, self.namespace), self.name, self.ttl_seconds
            )
        return FileLock(self.path, self.name)

    def save(self, data: None) -> NoReturn:
        raise DatasetError("RunLockDataset is read-only")

    def _describe(self) -> dict[str, Any]:
        where = {"redis_url": masked(self.redis_url)} if self.redis_url else {"path": self.path}
        return {"name": self.name, **where}
