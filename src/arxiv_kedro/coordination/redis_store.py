"""A Redis connection with bounded timeouts, one key namespace and errors that name the server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis

from arxiv_kedro.stores import StoreError, masked


class RedisStore:
    """A Redis connection with bounded timeouts, keys under one namespace, clear errors."""

    def __init__(self, url: str, namespace: str = "arxiv-kedro", timeout_seconds: float = 5.0):
        self.url = url
        self.namespace = namespace
        self.client = redis.Redis.from_url(
            url, socket_connect_timeout=timeout_seconds, socket_timeout=timeout_seconds
        )

    def __repr__(self) -> str:
        return f"RedisStore({masked(self.url)!r}, namespace={self.namespace!r})"

    def key(self, *parts: str) -> str:
        return ":".join((self.namespace, *parts))

    @contextmanager
    def guard(self, action: str) -> Iterator[None]:
        """Turn Redis errors into a `StoreError` naming the server (password masked)."""
        try:
            yield
        except redis.RedisError as exc:
            raise StoreError(f"Redis at {masked(self.url)} failed to {action}: {exc}") from exc

    def ping(self) -> None:
        with self.guard("answer a ping"):
            self.client.ping()

    def close(self) -> None:
        self.client.close()
