"""A library per API key: tags (in the relational store, migration 0005) and recommendations
learned from them, over both worlds."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from arxiv_kedro.stores import schema
from tests.serving.conftest import OLD_STYLE_ID, World
from tests.serving.test_papers import ids, stored_order


def new_key() -> str:
    return f"key-{uuid.uuid4().hex}"


def as_user(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def tags_of(app: TestClient, key: str) -> dict[str, list[str]]:
    response = app.get("/v1/me/tags", headers=as_user(key))
    assert response.status_code == 200, response.text
    return {item["tag"]: ids(item["papers"]) for item in response.json()["items"]}


@pytest.fixture
def keys() -> tuple[str, str]:
    return new_key(), new_key()


@pytest.fixture
def app(start: Callable[..., TestClient], keys: tuple[str, str]) -> TestClient:
    return start(keys=keys)


def test_a_user_tags_papers_and_sees_only_their_own_tags(
    app: TestClient, world: World, keys: tuple[str, str]
) -> None:
    mine, theirs = keys
    newest = stored_order(world)[:3]

    for arxiv_id in newest:
        response = app.put(f"/v1/me/tags/to read/{arxiv_id}", headers=as_user(mine))
        assert response.status_code == 200, response.text
        assert response.json() == {"tag": "to read", "arxiv_id": arxiv_id}
    app.put(f"/v1/me/tags/classics/{OLD_STYLE_ID}v2", headers=as_user(mine))
    app.put(f"/v1/me/tags/classics/{OLD_STYLE_ID}", headers=as_user(mine))  # again: no change
    app.put(f"/v1/me/tags/theirs/{newest[0]}", headers=as_user(theirs))

    assert tags_of(app, mine) == {"classics": [OLD_STYLE_ID], "to read": newest[::-1]}
    assert tags_of(app, theirs) == {"theirs": [newest[0]]}


def test_untagging_removes_only_that_tag(
    app: TestClient, world: World, keys: tuple[str, str]
) -> None:
    key, _ = keys
    arxiv_id = stored_order(world)[0]
    for tag in ("a", "b"):
        app.put(f"/v1/me/tags/{tag}/{arxiv_id}", headers=as_user(key))

    removed = app.delete(f"/v1/me/tags/a/{arxiv_id}", headers=as_user(key))
    again = app.delete(f"/v1/me/tags/a/{arxiv_id}", headers=as_user(key))

    assert removed.status_code == 204
    assert again.status_code == 404 and "not tagged" in again.json()["detail"]
    assert tags_of(app, key) == {"b": [arxiv_id]}


def test_tags_are_stored_and_outlive_the_api(
    start: Callable[..., TestClient], world: World, keys: tuple[str, str]
) -> None:
    key, _ = keys
    arxiv_id = stored_order(world)[1]
    start(keys=keys).put(f"/v1/me/tags/kept/{arxiv_id}", headers=as_user(key))

    assert tags_of(start(keys=keys), key) == {"kept": [arxiv_id]}
    with world.papers.engine.connect() as conn:
        users = conn.execute(
            select(schema.library_tags.c.user_id).where(schema.library_tags.c.tag == "kept")
        ).scalars()
        stored = [u for u in users if key not in u]
    assert len(stored) >= 1  # a hash of the key, never the key


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("PUT", "/v1/me/tags/x/2401.00001", 404),
        ("PUT", "/v1/me/tags/x/not-an-id", 422),
        ("PUT", "/v1/me/tags/%20space-first/2401.00001", 422),
        ("PUT", f"/v1/me/tags/{'x' * 65}/{OLD_STYLE_ID}", 422),
        ("DELETE", f"/v1/me/tags/never/{OLD_STYLE_ID}", 404),
    ],
)
def test_bad_requests_are_explained(
    app: TestClient, keys: tuple[str, str], method: str, path: str, status: int
) -> None:
    response = app.request(method, path, headers=as_user(keys[0]))

    assert response.status_code == status
    assert response.json()["detail"]


@pytest.mark.parametrize(("key", "status"), [(None, 401), ("wrong-key", 403)])
def test_a_library_needs_a_valid_key(app: TestClient, key: str | None, status: int) -> None:
    headers = {} if key is None else as_user(key)
    for method, path in [
        ("GET", "/v1/me/tags"),
        ("GET", "/v1/me/recommendations"),
        ("PUT", f"/v1/me/tags/x/{OLD_STYLE_ID}"),
        ("DELETE", f"/v1/me/tags/x/{OLD_STYLE_ID}"),
    ]:
        assert app.request(method, path, headers=headers).status_code == status


def test_without_api_keys_everyone_shares_one_library(start: Callable[..., TestClient]) -> None:
    app = start()
    tag = f"shared-{uuid.uuid4().hex[:8]}"

    app.put(f"/v1/me/tags/{tag}/{OLD_STYLE_ID}")

    assert app.get("/v1/me/tags").json()["items"]
    assert tag in {item["tag"] for item in app.get("/v1/me/tags").json()["items"]}
    app.delete(f"/v1/me/tags/{tag}/{OLD_STYLE_ID}")


# --- recommendations ----------------------------------------------------------------------------


@pytest.mark.parametrize(("tag", "archive"), [("cosmology", "astro-ph"), ("nlp", "cs.CL")])
def test_recommendations_follow_what_the_user_tagged(
    app: TestClient, world: World, keys: tuple[str, str], tag: str, archive: str
) -> None:
    key, _ = keys
    papers = world.corpus.papers
    liked = [a for a in stored_order(world) if papers[a].primary_category.startswith(archive)]
    for arxiv_id in liked[10:30]:
        app.put(f"/v1/me/tags/{tag}/{arxiv_id}", headers=as_user(key))
    app.put(f"/v1/me/tags/other/{OLD_STYLE_ID}", headers=as_user(key))

    found = app.get(
        "/v1/me/recommendations", params={"tag": tag, "limit": 20}, headers=as_user(key)
    ).json()

    assert (found["tag"], found["tagged"], found["hint"]) == (tag, 20, None)
    items = found["items"]
    assert len(items) == 20 and not set(ids(items)) & set(liked[10:30])
    scores = [item["score"] for item in items]
    assert scores == sorted(scores, reverse=True)
    share = len(liked) / len(papers)
    alike = sum(item["primary_category"].startswith(archive) for item in items) / len(items)
    assert alike >= max(0.9, share), (alike, share)


def test_recommendations_without_tags_give_a_hint(app: TestClient, keys: tuple[str, str]) -> None:
    everything = app.get("/v1/me/recommendations", headers=as_user(keys[0])).json()
    one_tag = app.get(
        "/v1/me/recommendations", params={"tag": "none"}, headers=as_user(keys[1])
    ).json()

    for found in (everything, one_tag):
        assert (found["items"], found["tagged"]) == ([], 0)
        assert "tag papers" in found["hint"]
