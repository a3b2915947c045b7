"""Where the REST API keeps serialized responses: Redis (shared, invalidated by the pipelines) or
this process's memory (bounded, briefly)."""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any, Protocol

from arxiv_kedro.coordination.redis_store import RedisStore


class Cache(Protocol):
    """Where the REST API keeps serialized responses: Redis in prod, this process's memory else."""

    def get(self, key: str) -> str | None: ...
    def set(self, key: str, value: str, ttl_seconds: float) -> None: ...
    def invalidate(self, prefix: str = "") -> int: ...


_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")  # SCAN MATCH patterns are globs


class RedisCache:
    """Text values under `<namespace>:cache:<key>` with a TTL."""

    def __init__(self, store: RedisStore):
        self.store = store

    def get(self, key: str) -> str | None:
        with self.store.guard("read the cache"):
            value = self.store.client.get(self.store.key("cache", key))
        return None if value is None else value.decode()

    def set(self, key: str, value: str, ttl_seconds: float) -> None:
        with self.store.guard("write the cache"):
            self.store.client.set(self.store.key("cache", key), value, px=int(ttl_seconds * 1000))

    def invalidate(self, prefix: str = "") -> int:
        """Drop the entries whose key starts with `prefix`; returns how many."""
        pattern = _GLOB_SPECIAL.sub(r"\\\1", self.store.key("cache", prefix)) + "*"  # literal
        removed = 0
        with self.store.guard("invalidate the cache"):
            for keys in _batches(self.store.client.scan_iter(match=pattern, count=500), 500):
                removed += self.store.client.unlink(*keys)
        return removed


class LocalCache:
    """The embedded default: the same contract in this process's memory, holding at most
    `max_entries` (the least recently used go first)."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            expires, value = self._entries.get(key, (0.0, None))
            if expires <= time.monotonic():
                self._entries.pop(key, None)
                return None
            self._entries.move_to_end(key)
        return value

    def set(self, key: str, value: str, ttl_seconds: float) -> None:
        with self._lock:
            self._entries[key] = (time.monotonic() + ttl_seconds, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def invalidate(self, prefix: str = "") -> int:
        with self._lock:
            doomed = [key for key in self._entries if key.startswith(prefix)]
            for key in doomed:
                del self._entries[key]
        return len(doomed)


def _batches(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
