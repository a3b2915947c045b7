"""The UI's API client against the API double: requests as docs/api.md says, errors mapped."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import date

import httpx
import pytest

from app.api import ApiClient, ApiError, ApiUnavailable
from tests.conftest import free_port
from tests.support.api_double import ApiDouble


@pytest.fixture
def client(double: ApiDouble) -> Iterator[ApiClient]:
    client = ApiClient(double.base_url)
    yield client
    client.close()


def test_papers_sends_only_the_filters_given(client: ApiClient, double: ApiDouble) -> None:
    page = client.papers(
        category="cs.CL", published_from=date(2025, 1, 1), published_to=date(2025, 1, 31),
        has_summary=True, limit=5,
    )  # fmt: skip
    assert [p["arxiv_id"] for p in page["items"]] == ["2501.01234"]
    client.papers()
    first, second = double.requests_to("GET", "/v1/papers")
    assert first.query == {
        "category": ["cs.CL"], "published_from": ["2025-01-01"], "published_to": ["2025-01-31"],
        "has_summary": ["true"], "limit": ["5"],
    }  # fmt: skip
    assert second.query == {"limit": ["20"]}


def test_pages_follow_next_cursor(client: ApiClient, double: ApiDouble) -> None:
    double.page_cap = 4
    first = client.papers()
    second = client.papers(cursor=first["next_cursor"])
    assert len(first["items"]) == 4 and second["next_cursor"] is None
    seen = [p["arxiv_id"] for p in first["items"] + second["items"]]
    assert len(set(seen)) == len(double.papers)


def test_search_and_categories_and_stats(client: ApiClient) -> None:
    hits = client.search('"gauge theories"')["items"]
    assert [h["arxiv_id"] for h in hits] == ["hep-th/9901001"] and hits[0]["score"] > 0
    assert client.categories()[0]["name"] == "Computation and Language"
    stats = client.stats()
    assert stats["papers_per_day"] and stats["model"]["per_class"]


def test_old_style_ids_keep_their_slash(client: ApiClient, double: ApiDouble) -> None:
    assert client.paper("hep-th/9901001")["title"].startswith("Brane Dynamics")
    assert client.paper("hep-th/9901001v1")["arxiv_id"] == "hep-th/9901001"
    paths = [r.path for r in double.requests]
    assert paths == ["/v1/papers/hep-th/9901001", "/v1/papers/hep-th/9901001v1"]


def test_api_key_is_sent_only_when_set(double: ApiDouble) -> None:
    double.api_keys = {"s3cret"}
    with pytest.raises(ApiError) as refused:
        ApiClient(double.base_url).classify("A title", "Qubits.")
    assert (refused.value.status, refused.value.detail) == (
        401, "an API key is required: send it in the X-API-Key header"
    )  # fmt: skip
    result = ApiClient(double.base_url, api_key="s3cret").classify("A title", "Qubits.")
    assert result["categories"][0]["name"] == "Quantum Physics"
    assert result["model"] == {"name": "arxiv-classifier", "version": "3"}
    without, with_key = double.requests_to("POST", "/v1/classify")
    assert "x-api-key" not in without.headers and with_key.headers["x-api-key"] == "s3cret"


def test_wrong_key_and_unknown_paper_carry_the_api_detail(
    client: ApiClient, double: ApiDouble
) -> None:
    double.api_keys = {"s3cret"}
    with pytest.raises(ApiError, match="403: this API key is not valid"):
        ApiClient(double.base_url, api_key="wrong").classify("t", "a")
    with pytest.raises(ApiError) as missing:
        client.paper("2501.99999")
    assert (
        missing.value.status == 404 and missing.value.detail == "no paper 2501.99999 in the store"
    )


def test_validation_errors_read_as_sentences(client: ApiClient) -> None:
    """FastAPI reports invalid parameters as a list of problems, not one string."""
    with pytest.raises(ApiError) as invalid:
        client.search("x" * 301)
    assert invalid.value.status == 422
    assert invalid.value.detail == "q: String should have 1 to 300 characters"


def test_api_down_is_unavailable_with_what_to_do() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ApiUnavailable) as down:
        ApiClient(url).stats()
    assert str(down.value) == (
        f"The arXiv-kedro API at {url} is not reachable: start it with `make serve`"
    )


def test_server_errors_are_unavailable_with_the_detail(
    client: ApiClient, double: ApiDouble
) -> None:
    double.outage = 503
    with pytest.raises(ApiUnavailable, match=r"could not answer \(503\): the paper store is not"):
        client.papers()
    double.outage, double.model = None, False
    with pytest.raises(ApiUnavailable, match="no champion model yet"):
        client.classify("A title", "An abstract.")


def test_a_silent_api_times_out() -> None:
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        client = ApiClient(url, timeout=httpx.Timeout(0.3))
        with pytest.raises(ApiUnavailable, match="did not answer in time"):
            client.categories()
