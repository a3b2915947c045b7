"""Atom feeds (validated against RFC 4287's RELAX NG schema) and the daily digest, over both
worlds."""

from __future__ import annotations

from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from tests.serving.conftest import OLD_STYLE_ID, World
from tests.serving.test_papers import ids, walk
from tests.support.atom import ATOM, valid_atom


def feed(client: TestClient, path: str, **params: object) -> list[dict]:
    """The entries of a valid Atom feed, checked also for what the schema's schematron rules
    and datatypes say (libxml2 checks no datatype inside interleaves)."""
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/atom+xml"
    root = valid_atom(response.content)
    assert root.find(f"{ATOM}link[@rel='self']").get("href") == str(response.url)
    datetime.fromisoformat(root.findtext(f"{ATOM}updated"))
    entries = []
    for entry in root.iter(f"{ATOM}entry"):
        for name in ("published", "updated"):
            datetime.fromisoformat(entry.findtext(f"{ATOM}{name}"))
        entries.append(
            {
                "arxiv_id": entry.findtext(f"{ATOM}id").removeprefix("https://arxiv.org/abs/"),
                "title": entry.findtext(f"{ATOM}title"),
                "summary": entry.findtext(f"{ATOM}summary"),
                "authors": [a.findtext(f"{ATOM}name") for a in entry.iter(f"{ATOM}author")],
                "categories": [c.get("term") for c in entry.iter(f"{ATOM}category")],
            }
        )
    assert len({e["arxiv_id"] for e in entries}) == len(entries)
    return entries


@pytest.mark.parametrize("category", ["astro-ph.CO", "cs.CL", "hep-ph"])
def test_a_category_feed_holds_its_newest_papers(
    client: TestClient, world: World, category: str
) -> None:
    entries = feed(client, f"/feeds/categories/{category}")

    listed = client.get("/v1/papers", params={"category": category, "limit": 50}).json()
    assert [e["arxiv_id"] for e in entries] == ids(listed["items"])
    for entry in entries:
        paper = world.corpus.papers[entry["arxiv_id"]]
        assert entry["summary"] == " ".join(paper.abstract.split())
        assert entry["authors"] == list(paper.authors)
        assert category in entry["categories"] == list(paper.categories)


def test_a_saved_search_feed_holds_its_newest_matches(client: TestClient) -> None:
    entries = feed(client, "/feeds/search", q="galaxy", category="astro-ph.GA")

    found = walk(client, "/v1/search", q="galaxy", category="astro-ph.GA", sort="newest")
    assert 0 < len(entries) == min(50, len(found))
    assert [e["arxiv_id"] for e in entries] == ids(found)[:50]


def unlisted(world: World) -> str:
    """A category of arXiv's no stored paper is in."""
    listed = {c for p in world.corpus.papers.values() for c in p.categories}
    return next(c for c in ("q-fin.TR", "nlin.CG", "math.HO", "econ.TH") if c not in listed)


def test_a_feed_of_a_category_without_papers_is_valid_and_empty(
    client: TestClient, world: World
) -> None:
    assert feed(client, f"/feeds/categories/{unlisted(world)}") == []


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/feeds/search", {"q": "*"}),
        ("/feeds/search", {"q": "co:42"}),
        ("/feeds/search", {}),
        ("/feeds/categories/not a category", {}),
    ],
)
def test_a_feed_that_cannot_mean_anything_is_rejected(
    client: TestClient, path: str, params: dict
) -> None:
    response = client.get(path, params=params)

    assert response.status_code == 422
    assert response.json()["detail"]


# --- the digest -------------------------------------------------------------------------------


@pytest.mark.parametrize("category", ["astro-ph.CO", "astro-ph.GA", "cs.CV", "hep-ph"])
def test_the_digest_splits_the_last_announcement_as_arxiv_does(
    client: TestClient, world: World, category: str
) -> None:
    found = client.get(f"/v1/digest/{category}").json()

    papers = [p for p in world.corpus.papers.values() if category in p.categories]
    day = max(max(p.published, p.updated) for p in papers).date()
    assert found["day"] == day.isoformat()
    new = {p.arxiv_id for p in papers if p.published.date() == day}
    replaced = {
        p.arxiv_id
        for p in papers
        if p.updated.date() == day and p.version > 1 and p.published.date() < day
    }
    assert set(ids(found["new"]) + ids(found["cross_lists"])) == new
    assert set(ids(found["replacements"])) == replaced
    assert all(item["primary_category"] == category for item in found["new"])
    assert all(item["cross_list"] for item in found["cross_lists"])
    assert new | replaced


def test_a_day_s_digest_lists_a_replacement_as_one(client: TestClient) -> None:
    """hep-th/9809096 v1 appeared on 1998-09-14, v2 on 1998-11-09."""
    replaced = client.get("/v1/digest/hep-ph", params={"day": "1998-11-09"}).json()
    appeared = client.get("/v1/digest/hep-th", params={"day": "1998-09-14"}).json()

    assert (replaced["day"], ids(replaced["replacements"])) == ("1998-11-09", [OLD_STYLE_ID])
    assert replaced["new"] == replaced["cross_lists"] == []
    assert (ids(appeared["new"]), appeared["replacements"]) == ([OLD_STYLE_ID], [])


def test_the_digest_of_a_category_without_papers_is_not_found(
    client: TestClient, world: World
) -> None:
    category = unlisted(world)
    response = client.get(f"/v1/digest/{category}")

    assert response.status_code == 404
    assert category in response.json()["detail"]
