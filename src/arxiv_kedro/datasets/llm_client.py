"""`LlmClientDataset`: the chat-completion client, or None when no API key is configured."""

from __future__ import annotations

from typing import Any, NoReturn

from kedro.io import AbstractDataset, DatasetError

from arxiv_kedro.coordination.rate_limit import LocalTokenBucket, RedisTokenBucket
from arxiv_kedro.coordination.redis_store import RedisStore
from arxiv_kedro.llm.client import LlmClient


class LlmClientDataset(AbstractDataset[None, "LlmClient | None"]):
    """Loads an `LlmClient`, or None without an API key (the pipelines then work offline).

    `requests_per_second` is shared by every process through Redis when `redis_url` is set,
    else by the threads of this process. The key is never logged or shown.

    Example catalog entry::

        llm:
          type: arxiv_kedro.datasets.LlmClientDataset
          api_key: ${env:MISTRAL_API_KEY,""}
          server_url: ${env:MISTRAL_SERVER_URL,""}   # empty: Mistral's API
          model: mistral-small-latest
          requests_per_second: 5
    """

    def __init__(
        self,
        api_key: str = "",
        model: str = "mistral-small-latest",
        server_url: str = "",
        timeout_seconds: float = 60.0,
        max_retries: int = 4,
        backoff_seconds: float = 2.0,
        max_wait_seconds: float = 120.0,
        requests_per_second: float = 5.0,
        redis_url: str = "",
        metadata: dict[str, Any] | None = None,
    ):
        self._api_key, self.model, self.server_url = api_key, model, server_url
        self._options = {
            "timeout_seconds": timeout_seconds,
            "max_retries": max_retries,
            "backoff_seconds": backoff_seconds,
            "max_wait_seconds": max_wait_seconds,
        }
        self.requests_per_second, self.redis_url = requests_per_second, redis_url
        self.metadata = metadata

    def load(self) -> LlmClient | None:
        if not self._api_key:
            return None
        if self.redis_url:
            store = RedisStore(self.redis_url)
            limiter = RedisTokenBucket(store, "llm", rate=self.requests_per_second)
        else:
            limiter = LocalTokenBucket(rate=self.requests_per_second)
        return LlmClient(
            self._api_key,
            model=self.model,
            server_url=self.server_url or None,
            rate_limiter=limiter,
            **self._options,
        )

    def save(self, data: None) -> NoReturn:
        raise DatasetError("LlmClientDataset is read-only")

    def _describe(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "server_url": self.server_url or "(Mistral)",
            "api_key": "***" if self._api_key else "(none: offline)",
        }
