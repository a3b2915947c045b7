"""A container's health check: exit 0 when URL answers 200 within the timeout, else 1.

    python deploy/healthcheck.py [URL]    # default: the REST API's liveness, the image's CMD

Standard library only, so that every image of the project can run it (curl is not installed).
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8500/health"
TIMEOUT_SECONDS = 4  # under the HEALTHCHECK timeout, so a hung server counts as a failure


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


if __name__ == "__main__":
    url = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_URL
    if not healthy(url):
        print(f"unhealthy: {url} did not answer 200", file=sys.stderr)
        sys.exit(1)
