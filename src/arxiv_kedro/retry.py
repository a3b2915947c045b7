"""What the HTTP clients (arXiv API, LLM) share about retrying: the server's `Retry-After`."""

from __future__ import annotations

import time
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
