"""GET /v1/papers and /v1/papers/{arxiv_id} over both worlds, checked against the store and the
snapshot records the papers were ingested from."""

from __future__ import annotations

import base64
import json
import re
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from arxiv_kedro.classification import registry
from arxiv_kedro.stores import schema
from tests.serving.conftest import OLD_STYLE_ID, Champion, World
from tests.support.mistral_server import summary_text, translation_text

LANGUAGES = {"en": "English", "fr": "French", "es": "Spanish", "de": "German"}
AUGUST = "2025-08-01T00:00:00+00:00"


def walk(client: TestClient, path: str = "/v1/papers", **params: Any) -> list[dict[str, Any]]:
    """Every item of every page, following next_cursor."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(2_000):
        page_params = params if cursor is None else {**params, "cursor": cursor}
        response = client.get(path, params=page_params)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("next_cursor never ran out")


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["arxiv_id"] for item in items]


def stored_order(world: World) -> list[str]:
    """Every paper in the store, newest first (then the latest stored first)."""
    papers = schema.papers
    query = select(papers.c.arxiv_id).order_by(papers.c.published.desc(), papers.c.id.desc())
    with world.papers.engine.connect() as conn:
        return list(conn.execute(query).scalars())


def cursor_of(position: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def iso(moment: Any) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# --- the list -----------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [37, 100])
def test_the_pages_hold_every_paper_once_newest_first(
    client: TestClient, world: World, limit: int
) -> None:
    items = walk(client, limit=limit)

    assert ids(items) == stored_order(world)
    assert sorted(ids(items)) == sorted(world.corpus.records)
    published = [item["published"] for item in items]
    assert published == sorted(published, reverse=True)
    assert published[-1] == "1998-09-14T15:38:16Z"  # the old-style paper is the oldest


def test_a_page_without_parameters(client: TestClient, world: World) -> None:
    page = client.get("/v1/papers").json()

    assert ids(page["items"]) == stored_order(world)[:20]
    assert page["next_cursor"] is not None


def test_list_items_are_the_ingested_papers_with_their_prediction(
    client: TestClient, world: World, official_names: dict[str, str]
) -> None:
    items = client.get("/v1/papers", params={"limit": 100}).json()["items"]

    for item in items:
        paper = world.corpus.papers[item["arxiv_id"]]
        assert item["version"] == paper.version
        assert item["title"] == paper.title
        assert item["authors"] == list(paper.authors)
        assert item["primary_category"] == paper.primary_category
        assert item["categories"][0] == paper.primary_category
        assert sorted(item["categories"]) == sorted(paper.categories)
        assert item["published"] == iso(paper.published)
        assert item["updated"] == iso(paper.updated)
        assert item["abs_url"] == f"https://arxiv.org/abs/{paper.arxiv_id}"
        assert item["pdf_url"] == f"https://arxiv.org/pdf/{paper.arxiv_id}v{paper.version}"
        predicted = item["predicted_category"]
        assert predicted["name"] == official_names[predicted["category"]]
        assert 0 < predicted["probability"] <= 1
    # the top prediction is the detail's first category
    detail = client.get(f"/v1/papers/{items[0]['arxiv_id']}").json()
    assert items[0]["predicted_category"] == detail["prediction"]["categories"][0]


@pytest.mark.parametrize("category", ["cs.CL", "astro-ph.GA", "hep-ph", "hep-th"])
def test_a_category_holds_its_primary_papers_and_its_cross_lists(
    client: TestClient, world: World, category: str
) -> None:
    listed = {a for a, paper in world.corpus.papers.items() if category in paper.categories}

    items = walk(client, category=category, limit=100)

    assert ids(items) == [a for a in stored_order(world) if a in listed]
    primaries = {item["primary_category"] for item in items}
    assert category in {c for item in items for c in item["categories"]}
    assert primaries - {category}, "no cross-listed paper: the filter reads primaries only"


def test_a_category_nobody_uses_is_empty(client: TestClient) -> None:
    response = client.get("/v1/papers", params={"category": "math.AG"})

    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


def published_days(world: World) -> dict[str, date]:
    return {a: paper.published.date() for a, paper in world.corpus.papers.items()}


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, 0), (0, None), (None, 0), (-3, 2), (None, -1), (1, None)],
    ids=["one day", "from", "to", "a week", "before", "after"],
)
def test_publication_dates_are_inclusive(
    client: TestClient, world: World, start: int | None, end: int | None
) -> None:
    days = published_days(world)
    middle = sorted(days.values())[len(days) // 2]  # a listing day with papers
    first = None if start is None else middle + timedelta(days=start)
    last = None if end is None else middle + timedelta(days=end)
    params = {"published_from": first, "published_to": last}
    params = {name: str(day) for name, day in params.items() if day is not None}
    expected = {
        a
        for a, day in days.items()
        if (first is None or first <= day) and (last is None or day <= last)
    }

    items = walk(client, limit=100, **params)

    assert ids(items) == [a for a in stored_order(world) if a in expected]
    assert expected


def test_the_old_paper_is_found_by_its_day(client: TestClient) -> None:
    items = walk(client, published_from="1998-09-14", published_to="1998-09-14")

    assert ids(items) == [OLD_STYLE_ID]


def test_published_from_after_published_to_is_a_bad_request(client: TestClient) -> None:
    response = client.get(
        "/v1/papers", params={"published_from": "2025-09-02", "published_to": "2025-09-01"}
    )

    assert response.status_code == 400
    assert "published_from is after published_to" in response.json()["detail"]


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
def test_extreme_dates_are_answered(client: TestClient, world: World, day: str) -> None:
    for name in ("published_from", "published_to"):
        response = client.get("/v1/papers", params={name: day, "limit": 1})

        assert response.status_code == 200, response.text


@pytest.mark.parametrize("value", ["yesterday", "2025-13-01", "2025-02-30", "1"])
def test_a_date_that_is_no_date_is_rejected(client: TestClient, value: str) -> None:
    response = client.get("/v1/papers", params={"published_from": value})

    assert response.status_code == 422
    assert "published_from" in response.json()["detail"]


def summary_kinds(world: World) -> tuple[set[str], set[str]]:
    """(papers with an LLM summary and translations, papers with an extractive one)."""
    summaries = world.summaries()
    llm = {a for a, d in summaries.items() if d["status"] == "complete"}
    return llm, set(summaries) - llm


def test_has_summary_splits_the_papers(client: TestClient, world: World) -> None:
    llm, extractive = summary_kinds(world)
    order = stored_order(world)

    with_summary = walk(client, has_summary="true", limit=20)
    without = walk(client, has_summary="false", limit=100)

    assert ids(with_summary) == [a for a in order if a in llm | extractive]
    assert ids(without) == [a for a in order if a not in llm | extractive]
    assert len(llm) == 5 and len(extractive) > 250
    for item in with_summary:
        expected = ["en", "fr", "es", "de"] if item["arxiv_id"] in llm else ["en"]
        assert item["summary_languages"] == expected
    assert all(item["summary_languages"] == [] for item in without)


def test_filters_combine(client: TestClient, world: World) -> None:
    llm, extractive = summary_kinds(world)
    days = published_days(world)
    since = sorted(days.values())[len(days) // 2]
    expected = {
        a
        for a, paper in world.corpus.papers.items()
        if "cs.CL" in paper.categories and days[a] >= since and a in llm | extractive
    }

    items = walk(client, category="cs.CL", published_from=str(since), has_summary="true", limit=3)

    assert ids(items) == [a for a in stored_order(world) if a in expected]
    assert expected


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten", "1.5"])
def test_limit_out_of_bounds_is_rejected(client: TestClient, limit: str) -> None:
    response = client.get("/v1/papers", params={"limit": limit})

    assert response.status_code == 422
    assert "limit" in response.json()["detail"]


@pytest.mark.parametrize("limit", [1, 100])
def test_limit_bounds_are_accepted(client: TestClient, limit: int) -> None:
    page = client.get("/v1/papers", params={"limit": limit}).json()

    assert len(page["items"]) == limit


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("", id="empty"),
        pytest.param("garbage", id="not base64 JSON"),
        pytest.param("%%%", id="not base64"),
        pytest.param(base64.urlsafe_b64encode(b"\xff\xfe").decode(), id="not UTF-8"),
        pytest.param(cursor_of({"offset": 20}), id="a search cursor"),
        pytest.param(cursor_of(["2025-09-01T00:00:00+00:00", 1]), id="a list"),
        pytest.param(cursor_of({"published": "yesterday", "id": 1}), id="no date"),
        pytest.param(cursor_of({"published": AUGUST, "id": "1"}), id="id a string"),
        pytest.param(cursor_of({"published": AUGUST, "id": True}), id="id a boolean"),
        pytest.param(cursor_of({"published": AUGUST, "id": 1.5}), id="id a float"),
        pytest.param(cursor_of({"published": AUGUST, "id": 2**70}), id="id too large"),
        pytest.param(cursor_of({"published": AUGUST, "id": -(2**70)}), id="id too small"),
        pytest.param(cursor_of({"published": AUGUST, "id": 1, "more": 1}), id="extra field"),
    ],
)
def test_a_forged_cursor_is_a_bad_request(client: TestClient, cursor: str) -> None:
    response = client.get("/v1/papers", params={"cursor": cursor})

    assert response.status_code == 400, response.text
    assert "cursor" in response.json()["detail"]


def test_an_overlong_cursor_is_rejected(client: TestClient) -> None:
    response = client.get("/v1/papers", params={"cursor": "a" * 201})

    assert response.status_code == 422


# --- injection through the query ----------------------------------------------------------------


@pytest.mark.parametrize(
    "category",
    ["cs.CL' OR '1'='1", "cs.CL;--", "cs.CL%", "cs.*", "CS.CL", "cs.CL\x00", "' OR 1=1 --"],
)
def test_a_category_that_is_no_category_is_rejected(client: TestClient, category: str) -> None:
    response = client.get("/v1/papers", params={"category": category})

    assert response.status_code == 422
    assert "category" in response.json()["detail"]


@pytest.mark.parametrize(
    "params",
    [
        {"has_summary[$ne]": "1"},
        {"category[$ne]": "cs.CL"},
        {"category[$gt]": "", "published_from[$lt]": "x"},
        {"$where": "1 == 1"},
    ],
)
def test_operator_shaped_parameters_are_ignored(
    client: TestClient, world: World, params: dict[str, str]
) -> None:
    page = client.get("/v1/papers", params={**params, "limit": 100}).json()

    assert ids(page["items"]) == stored_order(world)[:100]


@pytest.mark.parametrize("value", ['{"$ne": 1}', "[$ne]", "1 OR 1=1"])
def test_operator_shaped_values_are_rejected(client: TestClient, value: str) -> None:
    response = client.get("/v1/papers", params={"has_summary": value})

    assert response.status_code == 422


# --- one paper ----------------------------------------------------------------------------------


def test_a_paper_in_full(
    client: TestClient, world: World, champion: Champion, official_names: dict[str, str]
) -> None:
    llm, _ = summary_kinds(world)
    arxiv_id = sorted(llm)[0]
    paper = world.corpus.papers[arxiv_id]

    response = client.get(f"/v1/papers/{arxiv_id}")

    assert response.status_code == 200
    found = response.json()
    assert found["arxiv_id"] == arxiv_id
    assert (found["title"], found["abstract"]) == (paper.title, paper.abstract)
    assert found["authors"] == list(paper.authors)
    assert (found["doi"], found["journal_ref"], found["comments"]) == (
        paper.doi,
        paper.journal_ref,
        paper.comments,
    )
    assert found["arxiv_categories"][0] == {
        "category": paper.primary_category,
        "name": official_names[paper.primary_category],
        "primary": True,
    }
    assert sorted(c["category"] for c in found["arxiv_categories"]) == sorted(paper.categories)
    assert [c["primary"] for c in found["arxiv_categories"]].count(True) == 1
    prediction = found["prediction"]
    assert (prediction["model_name"], prediction["model_version"]) == (
        registry.MODEL_NAME,
        champion.version,
    )
    predicted = prediction["categories"]
    assert len(predicted) == 3
    assert len({c["category"] for c in predicted}) == 3
    assert {c["category"] for c in predicted} <= set(champion.labels)
    assert [c["name"] for c in predicted] == [official_names[c["category"]] for c in predicted]
    probabilities = [c["probability"] for c in predicted]
    assert probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) <= 1 + 1e-3
    assert found["predicted_category"] == predicted[0]
    summary = found["summary"]
    assert (summary["version"], summary["status"]) == (paper.version, "complete")
    assert list(summary["texts"]) == list(LANGUAGES)
    for code, text in summary["texts"].items():
        assert text["language"] == LANGUAGES[code]
        assert (text["status"], text["method"], text["model"]) == (
            "done",
            "llm",
            "mistral-small-latest",
        )
        expected = (
            summary_text(paper.title) if code == "en" else translation_text(code, paper.title)
        )
        assert text["text"] == expected
    assert found["summary_languages"] == list(LANGUAGES)


def test_an_extractive_summary_waits_for_its_translations(client: TestClient, world: World) -> None:
    _, extractive = summary_kinds(world)
    arxiv_id = sorted(extractive)[0]
    stored = world.summaries()[arxiv_id]

    found = client.get(f"/v1/papers/{arxiv_id}").json()

    assert found["summary"]["status"] == "partial"
    english = found["summary"]["texts"]["en"]
    assert english == {
        "language": "English",
        "text": stored["summary"]["text"],
        "status": "done",
        "method": "extractive",
        "model": None,
    }
    assert english["text"] and english["text"] in " ".join(found["abstract"].split())
    for code in ("fr", "es", "de"):
        assert found["summary"]["texts"][code]["status"] == "pending"
        assert found["summary"]["texts"][code]["text"] is None
        assert found["summary"]["texts"][code]["language"] == LANGUAGES[code]
    assert found["summary_languages"] == ["en"]


def test_a_paper_without_summary(client: TestClient, world: World) -> None:
    llm, extractive = summary_kinds(world)
    arxiv_id = next(a for a in stored_order(world) if a not in llm | extractive)

    found = client.get(f"/v1/papers/{arxiv_id}").json()

    assert found["summary"] is None
    assert found["summary_languages"] == []
    assert found["prediction"] is not None


@pytest.mark.parametrize("suffix", ["", "v1", "v2"])
def test_an_old_style_id_with_or_without_a_version(
    client: TestClient, suffix: str, official_names: dict[str, str]
) -> None:
    response = client.get(f"/v1/papers/{OLD_STYLE_ID}{suffix}")

    assert response.status_code == 200
    found = response.json()
    assert (found["arxiv_id"], found["version"]) == (OLD_STYLE_ID, 2)
    assert found["abs_url"] == f"https://arxiv.org/abs/{OLD_STYLE_ID}"
    assert found["pdf_url"] == f"https://arxiv.org/pdf/{OLD_STYLE_ID}v2"
    assert found["arxiv_categories"] == [
        {"category": "hep-th", "name": official_names["hep-th"], "primary": True},
        {"category": "cond-mat.stat-mech", "name": "Statistical Mechanics", "primary": False},
        {"category": "hep-ph", "name": official_names["hep-ph"], "primary": False},
    ]
    assert official_names["hep-th"] == "High Energy Physics - Theory"
    assert found["published"] == "1998-09-14T15:38:16Z"
    assert found["updated"] == "1998-11-09T09:01:00Z"


def test_a_new_style_id_with_a_version(client: TestClient, world: World) -> None:
    arxiv_id = stored_order(world)[0]
    latest = world.corpus.papers[arxiv_id].version

    plain = client.get(f"/v1/papers/{arxiv_id}").json()
    versioned = client.get(f"/v1/papers/{arxiv_id}v{latest}").json()

    assert versioned == plain


@pytest.mark.parametrize("suffix", ["v3", "v17"])
def test_a_version_that_does_not_exist_is_not_found_naming_the_latest(
    client: TestClient, suffix: str
) -> None:
    response = client.get(f"/v1/papers/{OLD_STYLE_ID}{suffix}")

    assert response.status_code == 404
    assert "latest is v2" in response.json()["detail"]


def test_versions_list_each_version_with_the_dates_known(client: TestClient) -> None:
    found = client.get(f"/v1/papers/{OLD_STYLE_ID}").json()

    assert found["versions"] == [
        {"version": 1, "date": found["published"]},
        {"version": 2, "date": found["updated"]},
    ]


def test_bibtex_cites_the_paper_as_arxiv_exports_it(client: TestClient, world: World) -> None:
    for arxiv_id in (OLD_STYLE_ID, stored_order(world)[0]):
        paper = world.corpus.papers[arxiv_id]
        bibtex = client.get(f"/v1/papers/{arxiv_id}").json()["bibtex"]

        assert re.fullmatch(r"@misc\{[a-z0-9]+,\n(  \w+ = \{.+\},\n)+\}", bibtex), bibtex
        assert f"  eprint = {{{arxiv_id}}}," in bibtex
        assert f"  primaryClass = {{{paper.primary_category}}}," in bibtex
        assert f"  author = {{{' and '.join(paper.authors)}}}," in bibtex
        assert f"  year = {{{paper.published.year}}}," in bibtex
        assert "  title = {{" + " ".join(paper.title.split()) + "}}," in bibtex


@pytest.mark.parametrize(("category", "cross_list"), [("hep-th", False), ("hep-ph", True)])
def test_a_listing_by_category_marks_cross_lists(
    client: TestClient, category: str, cross_list: bool
) -> None:
    items = walk(client, category=category, limit=100)
    [paper] = [item for item in items if item["arxiv_id"] == OLD_STYLE_ID]

    assert paper["cross_list"] is cross_list
    assert all(item["cross_list"] is (item["primary_category"] != category) for item in items)
    assert "cross_list" not in client.get("/v1/papers").json()["items"][0]


@pytest.mark.parametrize(
    "arxiv_id", ["2401.00001", "2509.99999v2", "hep-th/9901001", "math/0101001"]
)
def test_an_unknown_paper_is_not_found(client: TestClient, arxiv_id: str) -> None:
    response = client.get(f"/v1/papers/{arxiv_id}")

    assert response.status_code == 404
    assert "no paper" in response.json()["detail"]


@pytest.mark.parametrize(
    "arxiv_id",
    [
        "not-an-id",
        "2401.1",
        "2401.123456",
        "HEP-TH/9809096",
        f"{OLD_STYLE_ID}/",
        "hep-th/98090",
        "2509.20784' OR '1'='1",
        "2509.20784;DROP TABLE papers",
        "..%2F..%2Fetc%2Fpasswd",
        "%00",
        "2509.20784v",
        "x" * 64,
    ],
)
def test_an_id_that_is_no_arxiv_id_is_rejected(client: TestClient, arxiv_id: str) -> None:
    response = client.get(f"/v1/papers/{arxiv_id}")

    assert response.status_code == 422, response.text
    assert "arXiv identifier" in response.json()["detail"]


def test_an_overlong_id_is_rejected(client: TestClient) -> None:
    response = client.get(f"/v1/papers/{'2509.20784' + 'v1' * 30}")

    assert response.status_code == 422
