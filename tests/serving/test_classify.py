"""POST /v1/classify and /v1/classify/batch with the champion the training pipeline registered;
503 when there is none."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient

from arxiv_kedro.classification import registry
from tests.conftest import free_port
from tests.serving.conftest import Champion, World


def unseen_items(world: World) -> list[dict[str, str]]:
    """Title and abstract of papers newer than any the model was trained on."""
    unseen = world.corpus.unseen
    return [{"title": t, "abstract": a} for t, a in zip(unseen.title, unseen.abstract, strict=True)]


def check_categories(
    categories: list[dict[str, Any]], champion: Champion, official_names: dict[str, str]
) -> None:
    assert len(categories) == 3
    assert len({c["category"] for c in categories}) == 3
    assert {c["category"] for c in categories} <= set(champion.labels)
    assert [c["name"] for c in categories] == [official_names[c["category"]] for c in categories]
    probabilities = [c["probability"] for c in categories]
    assert all(0 <= p <= 1 for p in probabilities)
    assert probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) <= 1 + 1e-3  # each is rounded to 4 decimals


def test_an_abstract_gets_three_named_categories_from_the_champion(
    client: TestClient, world: World, champion: Champion, official_names: dict[str, str]
) -> None:
    response = client.post("/v1/classify", json=unseen_items(world)[0])

    assert response.status_code == 200
    answer = response.json()
    check_categories(answer["categories"], champion, official_names)
    assert answer["model"] == {"name": registry.MODEL_NAME, "version": champion.version}


def test_unseen_papers_get_sensible_categories(
    client: TestClient, world: World, champion: Champion, official_names: dict[str, str]
) -> None:
    labels = list(world.corpus.unseen.label)

    response = client.post("/v1/classify/batch", json={"items": unseen_items(world)})

    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == len(labels)
    best = [result["categories"][0]["category"] for result in results]
    for result in results:
        check_categories(result["categories"], champion, official_names)
    assert sum(b == label for b, label in zip(best, labels, strict=True)) >= 0.8 * len(labels)
    # computer science is never taken for astrophysics, nor the other way round
    assert [b.split(".")[0] for b in best] == [label.split(".")[0] for label in labels]
    assert response.json()["model"] == {"name": registry.MODEL_NAME, "version": champion.version}


def test_a_batch_answers_in_order_like_single_requests(client: TestClient, world: World) -> None:
    items = unseen_items(world)[::4]

    batch = client.post("/v1/classify/batch", json={"items": items}).json()["results"]
    reversed_batch = client.post("/v1/classify/batch", json={"items": items[::-1]}).json()

    singles = [client.post("/v1/classify", json=item).json()["categories"] for item in items]
    assert [result["categories"] for result in batch] == singles
    assert reversed_batch["results"][::-1] == batch


def test_a_batch_of_256_is_answered_in_order(client: TestClient, world: World) -> None:
    unseen = unseen_items(world)
    items = [
        {
            "title": f"{unseen[i % len(unseen)]['title']} ({i})",
            "abstract": unseen[i % 40]["abstract"],
        }
        for i in range(256)
    ]

    forward = client.post("/v1/classify/batch", json={"items": items})
    backward = client.post("/v1/classify/batch", json={"items": items[::-1]})

    assert forward.status_code == backward.status_code == 200
    assert len(forward.json()["results"]) == 256
    assert backward.json()["results"][::-1] == forward.json()["results"]


def long_text(chars: int) -> str:
    return ("word " * chars)[:chars]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"items": [{"title": "t", "abstract": "a"}] * 257}, "items"),
        ({"items": []}, "items"),
        ({}, "items"),
        ({"items": "papers"}, "items"),
        ({"items": [{"title": "t"}]}, "abstract"),
        ({"items": [{"title": "t", "abstract": "a", "label": "cs.CL"}]}, "label"),
        ({"items": [{"title": "t", "abstract": "a"}], "model": "mine"}, "model"),
        ({"items": [{"title": "t", "abstract": long_text(20_001)}]}, "abstract"),
        ({"items": [{"title": long_text(1_001), "abstract": "a"}]}, "title"),
        ({"items": [{"title": "", "abstract": "a"}]}, "title"),
        ({"items": [{"title": "t", "abstract": None}]}, "abstract"),
        ({"items": [{"title": 1, "abstract": ["a"]}]}, "title"),
    ],
)
def test_a_bad_batch_is_rejected(client: TestClient, body: dict, problem: str) -> None:
    response = client.post("/v1/classify/batch", json=body)

    assert response.status_code == 422, response.text
    assert problem in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"title": "t"}, "abstract"),
        ({"abstract": "a"}, "title"),
        ({"title": "t", "abstract": "a", "categories": ["cs.CL"]}, "categories"),
        ({"title": "t", "abstract": long_text(20_001)}, "abstract"),
        ({"title": long_text(1_001), "abstract": "a"}, "title"),
        ({"title": "t", "abstract": ""}, "abstract"),
        ({"title": {"$ne": 1}, "abstract": "a"}, "title"),
        ([{"title": "t", "abstract": "a"}], "body"),
        (None, "body"),
    ],
)
def test_a_bad_request_is_rejected(client: TestClient, body: Any, problem: str) -> None:
    response = client.post("/v1/classify", json=body)

    assert response.status_code == 422, response.text
    assert problem in response.json()["detail"]


@pytest.mark.parametrize("content", [b"not json", b'{"title": "t", "abstract": ', b"\xff\xfe"])
def test_a_body_that_is_no_json_is_rejected(client: TestClient, content: bytes) -> None:
    response = client.post(
        "/v1/classify", content=content, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 422, response.text


def test_the_longest_texts_are_accepted(client: TestClient) -> None:
    body = {"title": long_text(1_000), "abstract": long_text(20_000)}

    response = client.post("/v1/classify", json=body)

    assert response.status_code == 200


def test_odd_text_is_classified(client: TestClient) -> None:
    for text in ("🚀", "\x00", "量子 Ελληνικά", "' OR 1=1 --", " "):
        response = client.post("/v1/classify", json={"title": text, "abstract": text})

        assert response.status_code == 200, (text, response.text)
        assert len(response.json()["categories"]) == 3


@pytest.fixture
def registry_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A registry without a champion: no database at all, or an empty one."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    if request.param == "empty":
        assert MlflowClient(uri, uri).search_registered_models() == []
    return uri


@pytest.mark.parametrize("registry_uri", ["missing", "empty"], indirect=True)
def test_without_a_champion_classify_is_unavailable(
    start: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch, registry_uri: str
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry_uri)
    api = start()

    single = api.post("/v1/classify", json={"title": "t", "abstract": "a"})
    batch = api.post("/v1/classify/batch", json={"items": [{"title": "t", "abstract": "a"}]})
    ready = api.get("/health/ready")
    stats = api.get("/v1/stats")

    for response in (single, batch):
        assert response.status_code == 503
        detail = response.json()["detail"]
        assert f"no {registry.MODEL_NAME}@{registry.CHAMPION}" in detail
        assert "kedro run --pipeline training" in detail
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["model"]["ok"] is False
    assert "kedro run --pipeline training" in checks["model"]["detail"]
    assert all(checks[name]["ok"] for name in ("papers", "documents", "cache"))
    assert stats.status_code == 200
    assert stats.json()["model"] is None
    assert api.get("/v1/papers").status_code == 200  # the data does not need a model


def test_an_unreachable_registry_is_unavailable(
    start: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    api = start()

    response = api.post("/v1/classify", json={"title": "t", "abstract": "a"})

    assert response.status_code == 503
    assert "registry" in response.json()["detail"]
