"""The retry policy both HTTP clients (arXiv API, LLM) follow: exponential backoff with jitter,
the server's `Retry-After` honoured exactly, and a bound on how long a caller will wait."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any


def retry_after_seconds(headers: Any) -> float | None:
    """`Retry-After` as seconds (delta-seconds or an HTTP date); None when absent or invalid.

    `headers`: any case-insensitive mapping (requests', httpx's) or a dict with lower-case keys.
    """
    value = headers.get("retry-after") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class GiveUp(Exception):
    """No more retries: the message says why (attempts exhausted, or the server asks for a
    longer wait than the policy allows)."""


@dataclass(frozen=True)
class Backoff:
    """Retry `max_retries` times after the first attempt; wait `base_seconds` × 2^attempt (+ up to
    25 % jitter, so clients that failed together do not retry together), at most
    `max_wait_seconds`. A server's `Retry-After` is obeyed as given — never shortened: when it
    asks for more than `max_wait_seconds`, the caller gives up instead of retrying early."""

    max_retries: int = 4
    base_seconds: float = 2.0
    max_wait_seconds: float = 300.0

    def wait(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to sleep after failed attempt number `attempt` (0-based); `GiveUp` if none."""
        if attempt >= self.max_retries:
            raise GiveUp(f"gave up after {attempt + 1} attempts")
        if retry_after is not None:
            if retry_after > self.max_wait_seconds:
                raise GiveUp(
                    f"the server asks to wait {retry_after:.0f} s, more than the "
                    f"{self.max_wait_seconds:g} s allowed (max_wait_seconds)"
                )
            return retry_after
        delay = self.base_seconds * 2**attempt * random.uniform(1.0, 1.25)
        return min(delay, self.max_wait_seconds)
