"""A dependable chat-completion client over the `mistralai` SDK.

Any endpoint speaking Mistral's `POST /v1/chat/completions` works (`server_url`: Mistral, or a
self-hosted llama.cpp / vLLM server). The SDK's own retries are off: this client retries 429,
5xx, timeouts and dropped connections with exponential backoff (plus jitter) that honours
`Retry-After`, waits its turn at a shared rate limiter, and classifies what it cannot fix:

- `LlmAuthError` (401/403): the key is wrong or lacks rights — stop the run.
- `LlmUnavailable` (429/5xx/network, retries exhausted): try again later; the work stays pending.
- `LlmRequestError` (other 4xx): this request is wrong; record the failure with its reason.
- `LlmInvalidOutput`: the answer is not the JSON asked for (after one more try).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx2
from mistralai.client import Mistral
from mistralai.client.errors import MistralError, NoResponseError
from mistralai.client.utils.retries import RetryConfig
from pydantic import BaseModel, ValidationError

from arxiv_kedro.coordination.rate_limit import RateLimiter
from arxiv_kedro.retry import Backoff, GiveUp, retry_after_seconds

logger = logging.getLogger(__name__)
T = TypeVar("T", bound=BaseModel)
RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class LlmError(Exception):
    """Base class; `reason` is safe to store and log (never contains the key)."""

    def __init__(self, reason: str, status: int | None = None):
        super().__init__(reason)
        self.reason, self.status = reason, status
        self.usage, self.attempts = Usage(), 0  # what was paid before the error


class LlmAuthError(LlmError):
    pass


class LlmUnavailable(LlmError):
    pass


class LlmRequestError(LlmError):
    pass


class LlmInvalidOutput(LlmError):
    pass


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )

    def cost(self, prices: dict[str, float]) -> float:
        """Cost given `prices` per million tokens: {"input": …, "output": …}."""
        return (
            self.prompt_tokens * prices.get("input", 0.0)
            + self.completion_tokens * prices.get("output", 0.0)
        ) / 1e6


@dataclass(frozen=True)
class Completion:
    value: BaseModel
    usage: Usage  # every attempt's tokens, the invalid ones included: they were paid for
    model: str
    attempts: int


class LlmClient:
    """Structured chat completions with retries, backoff, rate limiting and error classes."""

    def __init__(
        self,
        api_key: str,
        *,
        model: str = "mistral-small-latest",
        server_url: str | None = None,
        timeout_seconds: float = 60.0,
        max_retries: int = 4,
        backoff_seconds: float = 2.0,
        max_wait_seconds: float = 120.0,
        rate_limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if not api_key:
            raise LlmAuthError("no API key: set MISTRAL_API_KEY")
        self.model, self.server_url = model, server_url
        self.backoff = Backoff(max_retries, backoff_seconds, max_wait_seconds)
        self.rate_limiter, self._sleep = rate_limiter, sleep
        self._sdk = Mistral(
            api_key=api_key,
            server_url=server_url or None,
            timeout_ms=int(timeout_seconds * 1000),
            retry_config=RetryConfig("none", None, False),
        )

    def __repr__(self) -> str:
        return f"LlmClient(model={self.model!r}, server_url={self.server_url!r})"

    def close(self) -> None:
        self._sdk.__exit__(None, None, None)

    # --- one structured answer -----------------------------------------------------------

    def complete(
        self,
        messages: list[dict[str, str]],
        schema: type[T],
        *,
        max_tokens: int = 800,
        temperature: float = 0.2,
    ) -> Completion:
        """Ask for a JSON object and validate it against `schema`; an invalid answer is asked
        once more, then raises `LlmInvalidOutput`."""
        usage, attempts = Usage(), 0
        for attempt in (1, 2):
            try:
                response = self._call(messages, max_tokens, temperature)
                attempts += 1
                if response.usage is not None:
                    usage += Usage(response.usage.prompt_tokens or 0,
                                   response.usage.completion_tokens or 0)  # fmt: skip
                text = response.choices[0].message.content
                if not isinstance(text, str):
                    raise ValueError("the answer has no text content")
                value = schema.model_validate(json.loads(_strip_fences(text)))
            except (IndexError, ValueError, ValidationError, AttributeError) as exc:
                reason = f"invalid structured answer: {str(exc).splitlines()[0][:300]}"
                if attempt == 1:
                    logger.info("LLM %s: %s; asking once more", self.model, reason)
                    continue
                error = LlmInvalidOutput(reason)
                error.usage, error.attempts = usage, attempts
                raise error from exc
            except LlmInvalidOutput as exc:  # an unreadable response body
                attempts += 1
                if attempt == 1:
                    logger.info("LLM %s: %s; asking once more", self.model, exc.reason)
                    continue
                exc.usage, exc.attempts = usage, attempts
                raise
            except LlmError as exc:
                exc.usage, exc.attempts = usage, attempts
                raise
            return Completion(value, usage, response.model or self.model, attempts)
        raise AssertionError("unreachable")

    def _call(self, messages: list[dict[str, str]], max_tokens: int, temperature: float) -> Any:
        for attempt in range(self.backoff.max_retries + 1):
            if self.rate_limiter is not None:
                self.rate_limiter.acquire()
            try:
                return self._sdk.chat.complete(
                    model=self.model,
                    messages=messages,
                    max_tokens=max_tokens,
                    temperature=temperature,
                    response_format={"type": "json_object"},
                )
            except MistralError as exc:
                status = exc.status_code
                if status in (401, 403):
                    raise LlmAuthError(
                        f"the LLM endpoint refused the API key (HTTP {status}): "
                        "check MISTRAL_API_KEY and its rights",
                        status,
                    ) from exc
                if status not in RETRYABLE_STATUS and status < 500:
                    if 200 <= status < 300:  # a 2xx the SDK could not read: malformed JSON
                        raise LlmInvalidOutput(f"unreadable response: {exc.message[:300]}") from exc
                    raise LlmRequestError(
                        f"HTTP {status}: {_error_detail(exc.body)}", status
                    ) from exc
                failure, wait_hint = f"HTTP {status}", retry_after_seconds(exc.headers)
            except (httpx2.TimeoutException, httpx2.TransportError, NoResponseError) as exc:
                failure, wait_hint, status = type(exc).__name__, None, None
            try:
                wait = self.backoff.wait(attempt, wait_hint)
            except GiveUp as exc:
                raise LlmUnavailable(f"{failure}; {exc}", status) from None
            logger.warning(
                "LLM %s: %s; retry %d/%d in %.1f s",
                self.model, failure, attempt + 1, self.backoff.max_retries, wait,
            )  # fmt: skip
            self._sleep(wait)
        raise AssertionError("unreachable")


def _strip_fences(text: str) -> str:
    """Models sometimes wrap JSON in a ```json fence despite the response format."""
    text = text.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    return text


def _error_detail(body: str | None) -> str:
    try:
        payload = json.loads(body or "")
        detail = payload.get("message") or payload.get("detail") or payload.get("error") or payload
    except (ValueError, AttributeError):
        detail = body
    return str(detail)[:300] or "no detail"
