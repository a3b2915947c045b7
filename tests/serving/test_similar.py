"""GET /v1/papers/{arxiv_id}/similar over both worlds: nearest neighbours by the words of titles
and abstracts."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.serving.conftest import OLD_STYLE_ID, World
from tests.serving.test_papers import ids, stored_order


def similar(client: TestClient, arxiv_id: str, **params: object) -> list[dict]:
    response = client.get(f"/v1/papers/{arxiv_id}/similar", params=params)
    assert response.status_code == 200, response.text
    assert response.json()["arxiv_id"] == arxiv_id.rsplit("v", 1)[0]
    return response.json()["items"]


def test_similar_papers_are_other_stored_papers_best_first(
    client: TestClient, world: World
) -> None:
    arxiv_id = stored_order(world)[0]

    items = similar(client, arxiv_id)

    assert len(items) == 10
    assert arxiv_id not in ids(items)
    scores = [item["score"] for item in items]
    assert scores == sorted(scores, reverse=True)
    assert all(0 < s <= 1 for s in scores)
    for item in items[:3]:
        detail = client.get(f"/v1/papers/{item['arxiv_id']}").json()
        assert {k: v for k, v in item.items() if k != "score"} == {
            k: detail[k] for k in item if k != "score"
        }


def test_similarity_is_symmetric(client: TestClient, world: World) -> None:
    arxiv_id = stored_order(world)[5]
    [nearest] = similar(client, arxiv_id, limit=1)

    back = {i["arxiv_id"]: i["score"] for i in similar(client, nearest["arxiv_id"], limit=50)}

    assert back[arxiv_id] == nearest["score"]


@pytest.mark.parametrize("archive", ["astro-ph", "cs"])
def test_neighbours_share_the_subject(client: TestClient, world: World, archive: str) -> None:
    """Most neighbours of a paper are of its archive, far above its share of the store."""
    papers = world.corpus.papers
    of_archive = [a for a in stored_order(world) if papers[a].primary_category.startswith(archive)]
    share = len(of_archive) / len(papers)

    neighbours = [
        papers[item["arxiv_id"]].primary_category
        for arxiv_id in of_archive[:20]
        for item in similar(client, arxiv_id, limit=5)
    ]

    same = sum(c.startswith(archive) for c in neighbours) / len(neighbours)
    assert same > max(0.8, share), (same, share)


def test_a_version_suffix_and_an_old_style_id(client: TestClient) -> None:
    assert ids(similar(client, f"{OLD_STYLE_ID}v2", limit=3)) == ids(
        similar(client, OLD_STYLE_ID, limit=3)
    )


@pytest.mark.parametrize(("path", "status"), [("2401.00001", 404), ("not-an-id", 422)])
def test_an_unknown_or_invalid_paper(client: TestClient, path: str, status: int) -> None:
    response = client.get(f"/v1/papers/{path}/similar")

    assert response.status_code == status
    assert response.json()["detail"]


@pytest.mark.parametrize("limit", ["0", "51"])
def test_limit_out_of_bounds_is_rejected(client: TestClient, limit: str) -> None:
    response = client.get(f"/v1/papers/{OLD_STYLE_ID}/similar", params={"limit": limit})

    assert response.status_code == 422
