"""A small client of the arXiv-kedro REST API (docs/api.md): the only way the UI reaches data."""

from __future__ import annotations

import os
from datetime import date
from typing import Any
from urllib.parse import quote

import httpx

DEFAULT_URL = "http://127.0.0.1:8500"
# Connecting to a local API is instant when it is up; a short connect timeout makes "down" quick.
TIMEOUT = httpx.Timeout(15.0, connect=3.0)


class ApiUnavailable(Exception):
    """The API is not reachable or failed (5xx); the message says what to do."""


class ApiError(Exception):
    """The API refused the request (4xx); `detail` is its explanation."""

    def __init__(self, status: int, detail: str):
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class ApiClient:
    """Calls the API with timeouts; errors become `ApiUnavailable` or `ApiError`."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        api_key: str | None = None,
        timeout: httpx.Timeout = TIMEOUT,
    ):
        self.base_url = base_url.rstrip("/")
        headers = {"Accept": "application/json"}
        if api_key:
            headers["X-API-Key"] = api_key
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    @classmethod
    def from_env(cls) -> ApiClient:
        """`API_URL` (default http://127.0.0.1:8500) and the optional `API_KEY`."""
        return cls(os.environ.get("API_URL") or DEFAULT_URL, os.environ.get("API_KEY") or None)

    def papers(
        self,
        *,
        category: str | None = None,
        published_from: date | None = None,
        published_to: date | None = None,
        has_summary: bool | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """One page of papers, newest first: `{"items": [...], "next_cursor": ...}`."""
        params = {
            **_filters(category, published_from, published_to, has_summary),
            "limit": limit,
            "cursor": cursor,
        }
        return self._request("GET", "/v1/papers", params=params)

    def search(
        self,
        q: str,
        *,
        category: str | None = None,
        published_from: date | None = None,
        published_to: date | None = None,
        has_summary: bool | None = None,
        sort: str = "relevance",
        limit: int = 20,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """One page of papers matching `q` and the filters, with `total` and a `hint` when `q`
        holds nothing to look for."""
        params = {
            "q": q,
            **_filters(category, published_from, published_to, has_summary),
            "sort": sort,
            "limit": limit,
            "cursor": cursor,
        }
        return self._request("GET", "/v1/search", params=params)

    def paper(self, arxiv_id: str) -> dict[str, Any]:
        """One paper in full; old-style ids keep their slash in the path, as the API expects."""
        return self._request("GET", f"/v1/papers/{arxiv_id}")

    def similar(self, arxiv_id: str, limit: int = 10) -> list[dict[str, Any]]:
        return self._request("GET", f"/v1/papers/{arxiv_id}/similar", params={"limit": limit})[
            "items"
        ]

    def author(self, name: str, *, limit: int = 20, cursor: str | None = None) -> dict[str, Any]:
        """One page of an author's papers, newest first, with their `total`."""
        path = f"/v1/authors/{quote(name, safe='')}/papers"
        return self._request("GET", path, params={"limit": limit, "cursor": cursor})

    def tags(self) -> list[dict[str, Any]]:
        """The library: each tag with its papers."""
        return self._request("GET", "/v1/me/tags")["items"]

    def tag(self, tag: str, arxiv_id: str) -> None:
        self._request("PUT", f"/v1/me/tags/{quote(tag, safe='')}/{arxiv_id}")

    def untag(self, tag: str, arxiv_id: str) -> None:
        self._request("DELETE", f"/v1/me/tags/{quote(tag, safe='')}/{arxiv_id}")

    def recommendations(self, tag: str | None = None, limit: int = 20) -> dict[str, Any]:
        return self._request("GET", "/v1/me/recommendations", params={"tag": tag, "limit": limit})

    def digest(self, category: str, day: date | None = None) -> dict[str, Any]:
        """The category's papers announced on `day` (default: its last announcement), split into
        `new`, `cross_lists` and `replacements` as arXiv lists them; `day` is the day shown."""
        params = {"day": day.isoformat() if day else None}
        return self._request("GET", f"/v1/digest/{category}", params=params)

    def feed_url(self, category: str) -> str:
        return f"{self.base_url}/feeds/categories/{category}"

    def classify(self, title: str, abstract: str) -> dict[str, Any]:
        """The three likeliest categories of a title and abstract, and the model that said so."""
        return self._request("POST", "/v1/classify", json={"title": title, "abstract": abstract})

    def categories(self) -> list[dict[str, Any]]:
        """Every category with its name, group and counts, most papers first."""
        return self._request("GET", "/v1/categories")["items"]

    def stats(self, days: int = 90) -> dict[str, Any]:
        """Totals, freshness, papers per day (over `days`) and the champion model's evaluation."""
        return self._request("GET", "/v1/stats", params={"days": days})

    def monitoring_latest(self) -> dict[str, Any]:
        """The newest monitoring run: live quality, drift, feed alarms, checks, retrain."""
        return self._request("GET", "/v1/monitoring/latest")

    def monitoring_runs(self, limit: int = 90) -> list[dict[str, Any]]:
        """The newest `limit` monitoring runs, newest first."""
        return self._request("GET", "/v1/monitoring/runs", params={"limit": limit})["items"]

    def monitoring_report(self, run_id: str) -> str:
        """The run's Evidently report, a standalone HTML page."""
        return self._request("GET", f"/v1/monitoring/{run_id}/report.html", html=True)

    def close(self) -> None:
        self._http.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        json: Any = None,
        html: bool = False,
    ) -> Any:
        if params is not None:
            params = {k: v for k, v in params.items() if v is not None}
        try:
            response = self._http.request(method, path, params=params, json=json)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ApiUnavailable(
                f"The arXiv-kedro API at {self.base_url} is not reachable: "
                "start it with `make serve`"
            ) from exc
        except httpx.TimeoutException as exc:
            raise ApiUnavailable(
                f"The arXiv-kedro API at {self.base_url} did not answer in time: "
                "it may be busy, try again in a moment"
            ) from exc
        except httpx.HTTPError as exc:
            raise ApiUnavailable(
                f"The arXiv-kedro API at {self.base_url} could not be reached ({exc})"
            ) from exc
        if response.status_code >= 500:
            raise ApiUnavailable(
                f"The arXiv-kedro API at {self.base_url} could not answer "
                f"({response.status_code}): {_detail(response)}"
            )
        if response.status_code >= 400:
            raise ApiError(response.status_code, _detail(response))
        if html:
            return response.text
        if response.status_code == 204:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ApiUnavailable(
                f"{self.base_url} did not answer with JSON: is API_URL the arXiv-kedro API?"
            ) from exc


def _filters(
    category: str | None,
    published_from: date | None,
    published_to: date | None,
    has_summary: bool | None,
) -> dict[str, str | None]:
    return {
        "category": category,
        "published_from": published_from.isoformat() if published_from else None,
        "published_to": published_to.isoformat() if published_to else None,
        "has_summary": None if has_summary is None else str(has_summary).lower(),
    }


def _detail(response: httpx.Response) -> str:
    """The API's `detail`: every error it answers carries one (docs/api.md)."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, str) and detail:
        return detail
    return response.reason_phrase or f"HTTP {response.status_code}"
