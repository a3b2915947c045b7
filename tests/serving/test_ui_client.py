"""The UI's API client (app/api.py) against the real API process over the embedded world:
requests as docs/api.md says, answers as the store holds them, errors mapped."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import date

import httpx
import pytest

from app.api import ApiClient, ApiError, ApiUnavailable
from arxiv_kedro.classification import registry
from tests.conftest import free_port
from tests.serving.conftest import API_KEY, OLD_STYLE_ID, Champion, World
from tests.serving.test_papers import stored_order, summary_kinds


@pytest.fixture
def client(embedded_api: str) -> Iterator[ApiClient]:
    client = ApiClient(embedded_api)
    yield client
    client.close()


def ids(page: dict) -> list[str]:
    return [item["arxiv_id"] for item in page["items"]]


def test_papers_sends_only_the_filters_given(client: ApiClient, embedded: World) -> None:
    since, until = date(2025, 8, 1), date(2025, 9, 30)
    llm, extractive = summary_kinds(embedded)
    papers = embedded.corpus.papers
    wanted = [
        arxiv_id
        for arxiv_id in stored_order(embedded)
        if "cs.CL" in papers[arxiv_id].categories
        and since <= papers[arxiv_id].published.date() <= until
        and arxiv_id in llm | extractive
    ]

    page = client.papers(
        category="cs.CL", published_from=since, published_to=until, has_summary=True, limit=5
    )

    assert len(wanted) > 5
    assert ids(page) == wanted[:5] and page["next_cursor"]
    assert ids(client.papers()) == stored_order(embedded)[:20]  # no filter, 20 a page


def test_pages_follow_next_cursor(client: ApiClient, embedded: World) -> None:
    listed = {a for a, paper in embedded.corpus.papers.items() if "hep-th" in paper.categories}
    pages = [client.papers(category="hep-th", limit=7)]
    while pages[-1]["next_cursor"]:
        pages.append(client.papers(category="hep-th", limit=7, cursor=pages[-1]["next_cursor"]))

    seen = [arxiv_id for page in pages for arxiv_id in ids(page)]
    assert len(pages) > 2 and all(len(page["items"]) == 7 for page in pages[:-1])
    assert seen == [a for a in stored_order(embedded) if a in listed]


def test_search_and_categories_and_stats(
    client: ApiClient, embedded: World, champion: Champion
) -> None:
    hits = client.search('"conformally invariant"')
    assert ids(hits) == [OLD_STYLE_ID] and hits["items"][0]["score"] > 0
    assert hits["next_cursor"] is None
    categories = client.categories()
    assert categories[0]["category"] == "cs.CV"
    assert categories[0]["name"] == "Computer Vision and Pattern Recognition"
    stats = client.stats()
    assert stats["papers"] == len(embedded.corpus.records) and stats["papers_per_day"]
    assert stats["model"]["version"] == champion.version
    assert [c["category"] for c in stats["model"]["per_class"]] == sorted(champion.labels)


def test_old_style_ids_keep_their_slash(client: ApiClient, embedded: World) -> None:
    paper = client.paper(OLD_STYLE_ID)
    assert paper["title"] == embedded.corpus.papers[OLD_STYLE_ID].title
    assert client.paper(f"{OLD_STYLE_ID}v1")["arxiv_id"] == OLD_STYLE_ID


def test_digest_of_the_last_announcement_or_of_a_day(client: ApiClient) -> None:
    last = client.digest("hep-ph")
    assert last["category"] == "hep-ph" and last["day"] > "1998-11-09"
    assert last["new"] or last["cross_lists"] or last["replacements"]

    day = client.digest("hep-ph", date(1998, 11, 9))  # hep-th/9809096 v2, cross-listed in hep-ph

    assert day["day"] == "1998-11-09" and day["new"] == day["cross_lists"] == []
    assert [p["arxiv_id"] for p in day["replacements"]] == [OLD_STYLE_ID]
    with pytest.raises(ApiError) as unknown:
        client.digest("q-fin.TR")  # no stored paper is in it
    assert unknown.value.status == 404 and "q-fin.TR" in unknown.value.detail


def test_api_key_is_sent_only_when_set(
    embedded_api: str, embedded: World, champion: Champion
) -> None:
    title, abstract = embedded.corpus.unseen[["title", "abstract"]].iloc[0]
    with pytest.raises(ApiError) as refused:
        ApiClient(embedded_api).classify(title, abstract)
    assert (refused.value.status, refused.value.detail) == (
        401, "this endpoint needs an API key in the X-API-Key header"
    )  # fmt: skip

    result = ApiClient(embedded_api, api_key=API_KEY).classify(title, abstract)

    categories = result["categories"]
    assert len(categories) == 3 and {c["category"] for c in categories} <= set(champion.labels)
    assert all(c["name"] for c in categories)
    assert result["model"] == {"name": registry.MODEL_NAME, "version": champion.version}


def test_wrong_key_and_unknown_paper_carry_the_api_detail(
    client: ApiClient, embedded_api: str
) -> None:
    with pytest.raises(ApiError) as wrong:
        ApiClient(embedded_api, api_key="wrong").classify("t", "a")
    assert str(wrong.value) == "403: this API key is not valid"
    with pytest.raises(ApiError) as missing:
        client.paper("2501.99999")
    assert (missing.value.status, missing.value.detail) == (
        404, "no paper 2501.99999 in the store"
    )  # fmt: skip


def test_validation_errors_carry_the_api_detail(client: ApiClient) -> None:
    with pytest.raises(ApiError) as invalid:
        client.search("x" * 301)
    assert invalid.value.status == 422
    assert invalid.value.detail == "query.q: String should have at most 300 characters"


def test_api_down_is_unavailable_with_what_to_do() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ApiUnavailable) as down:
        ApiClient(url).stats()
    assert str(down.value) == (
        f"The arXiv-kedro API at {url} is not reachable: start it with `make serve`"
    )


def test_server_errors_are_unavailable_with_the_detail(modelless_api: str) -> None:
    client = ApiClient(modelless_api)
    assert client.categories()  # the data does not need a model
    with pytest.raises(ApiUnavailable) as failed:
        client.classify("A title", "An abstract.")
    assert f"could not answer (503): no {registry.MODEL_NAME}@{registry.CHAMPION}" in str(
        failed.value
    )


def test_a_silent_api_times_out() -> None:
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        client = ApiClient(url, timeout=httpx.Timeout(0.3))
        with pytest.raises(ApiUnavailable, match="did not answer in time"):
            client.categories()
