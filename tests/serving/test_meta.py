"""GET /v1/categories and /v1/stats: counts against the store and the ingested records, names
from arXiv's taxonomy, the champion's evaluation."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from arxiv_kedro.classification import registry
from arxiv_kedro.stores import schema
from tests.serving.conftest import Champion, World
from tests.serving.test_papers import iso


def stored_counts(world: World) -> tuple[Counter[str], Counter[str]]:
    """(papers per primary category, cross-lists per category), counted in the store."""
    links = schema.paper_categories
    query = select(links.c.category, links.c.is_primary, func.count()).group_by(
        links.c.category, links.c.is_primary
    )
    primary: Counter[str] = Counter()
    cross: Counter[str] = Counter()
    with world.papers.engine.connect() as conn:
        for category, is_primary, n in conn.execute(query):
            (primary if is_primary else cross)[category] += n
    return primary, cross


def test_categories_count_primary_papers_and_cross_lists(
    client: TestClient, world: World, official_names: dict[str, str]
) -> None:
    papers = world.corpus.papers.values()
    primary = Counter(paper.primary_category for paper in papers)
    cross = Counter(c for paper in papers for c in paper.categories[1:])

    response = client.get("/v1/categories")

    assert response.status_code == 200
    items = response.json()["items"]
    assert {i["category"]: i["papers"] for i in items} == {c: primary[c] for c in primary | cross}
    assert {i["category"]: i["cross_listed"] for i in items} == {
        c: cross[c] for c in primary | cross
    }
    assert (primary, cross) == stored_counts(world)
    order = [(-i["papers"], -i["cross_listed"], i["category"]) for i in items]
    assert order == sorted(order)  # most papers first
    assert items[0]["category"] == "cs.CV"
    for item in items:
        assert item["name"] == official_names.get(item["category"], item["category"])
    by_id = {i["category"]: i for i in items}
    assert by_id["cs.LG"]["name"] == "Machine Learning"  # today's name, not browse's "Learning"
    assert by_id["hep-th"] == {
        "category": "hep-th",
        "name": "High Energy Physics - Theory",
        "group": "Physics",
        "papers": 1,  # the old-style paper; astro-ph papers cross-list hep-th
        "cross_listed": cross["hep-th"],
    }
    assert by_id["cs.CL"]["group"] == "Computer Science"
    assert by_id["hep-ph"]["papers"] == 0 and by_id["hep-ph"]["cross_listed"] >= 1


def test_stats_agree_with_the_store(client: TestClient, world: World) -> None:
    papers = world.corpus.papers
    newest = max(paper.published for paper in papers.values())

    response = client.get("/v1/stats")

    assert response.status_code == 200
    stats = response.json()
    assert stats["papers"] == len(papers) == world.papers.count()
    assert stats["predictions"] == len(papers)
    assert stats["summaries"] == len(world.summaries()) > 250
    assert stats["quarantined"] == 0
    assert stats["latest_published"] == iso(newest)
    run = stats["last_ingestion"]
    second = len(world.corpus.second.read_text().splitlines())
    assert (run["status"], run["source"], run["new"], run["updated"]) == (
        "succeeded",
        "snapshot",
        second,
        0,
    )
    assert run["quarantined"] == 0
    assert run["started_at"] <= run["finished_at"]


@pytest.mark.parametrize("span", [None, 7, 20_000])
def test_papers_per_day_cover_the_days_up_to_the_newest_paper(
    client: TestClient, world: World, span: int | None
) -> None:
    papers = world.corpus.papers.values()
    newest = max(paper.published for paper in papers)
    recent = [p for p in papers if p.published > newest - timedelta(days=span or 90)]
    expected = Counter((str(p.published.date()), p.primary_category) for p in recent)

    params = {} if span is None else {"days": span}
    per_day = client.get("/v1/stats", params=params).json()["papers_per_day"]

    assert {(d["day"], d["category"]): d["papers"] for d in per_day} == expected
    assert sum(d["papers"] for d in per_day) == len(recent)
    assert len(per_day) == len(expected)  # one entry per day and category
    days = [d["day"] for d in per_day]
    assert days == sorted(days)
    assert days[-1] == str(newest.date())
    assert days[0] >= str((newest - timedelta(days=span or 90)).date())


def test_stats_describe_the_champion(
    client: TestClient, champion: Champion, official_names: dict[str, str]
) -> None:
    stats = client.get("/v1/stats").json()
    model = stats["model"]

    assert (model["name"], model["version"]) == (registry.MODEL_NAME, champion.version)
    report = champion.evaluation
    for name in ("accuracy", "macro_f1", "top3_accuracy", "ece"):
        assert model["metrics"][name] == pytest.approx(report["metrics"][name])
    assert model["metrics"]["accuracy"] > 0.8
    assert [c["category"] for c in model["per_class"]] == sorted(champion.labels)
    for scores in model["per_class"]:
        expected = report["per_class"][scores["category"]]
        assert scores["name"] == official_names[scores["category"]]
        for name in ("precision", "recall", "f1"):
            assert scores[name] == pytest.approx(expected[name])
        assert scores["support"] == expected["support"] > 0
    assert model["trained_through"][:10] == stats["latest_published"][:10]


def test_the_docs_page_loads_swagger_ui_from_the_api_itself(client: TestClient) -> None:
    page = client.get("/docs")

    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"} <= set(assets)
    assert all(a.startswith("/") for a in assets), assets  # nothing from a CDN
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    assert "SwaggerUIBundle" in client.get("/docs/assets/swagger-ui-bundle.js").text
