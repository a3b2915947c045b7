"""GET /v1/monitoring/…: the monitoring pipeline's latest report, its history and the Evidently
page, over both worlds after a real monitoring run; live quality recomputed here from the
stored predictions and arXiv's categories."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from arxiv_kedro.classification import registry
from arxiv_kedro.stores.schema import papers, predictions
from tests.serving.conftest import Champion, World, monitor


@pytest.fixture(scope="module")
def summary(world: World, champion: Champion) -> dict[str, Any]:
    return monitor(world)


def window_predictions(world: World, summary: dict[str, Any]) -> pd.DataFrame:
    """The current window's papers with the champion's stored predictions, read here."""
    start = pd.Timestamp(summary["window"]["from"]).to_pydatetime()
    end = pd.Timestamp(summary["window"]["to"]).to_pydatetime()
    query = (
        select(
            papers.c.primary_category,
            predictions.c.label,
            predictions.c.probability,
            predictions.c.label_2,
            predictions.c.label_3,
        )
        .join(predictions, predictions.c.paper_id == papers.c.id)
        .where(
            papers.c.published >= start,
            papers.c.published < end,
            predictions.c.model_name == registry.MODEL_NAME,
        )
    )
    with world.papers.engine.connect() as conn:
        return pd.DataFrame(conn.execute(query).all(), columns=list(query.selected_columns.keys()))


def test_latest_report_follows_the_contract(
    client: TestClient, summary: dict[str, Any], champion: Champion
) -> None:
    response = client.get("/v1/monitoring/latest")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["run_id"] == summary["run_id"]
    assert {"run_at", "window", "live_quality", "drift", "feed", "checks"} <= body.keys()
    assert {"from", "to", "papers"} <= body["window"].keys()
    assert {"accuracy", "macro_f1", "top3", "ece", "per_class", "champion_macro_f1"} <= body[
        "live_quality"
    ].keys()
    assert {"detected", "share", "columns"} <= body["drift"].keys()
    assert {"title", "abstract", "predicted", "confidence"} <= body["drift"]["columns"].keys()
    assert isinstance(body["feed"]["alarms"], list)
    assert all({"name", "passed", "value", "threshold"} <= c.keys() for c in body["checks"])
    assert isinstance(body["retrain_recommended"], bool) and body["reason"]
    assert body["live_quality"]["champion_macro_f1"] == pytest.approx(
        champion.evaluation["metrics"]["macro_f1"]
    )


def test_live_quality_equals_the_stored_predictions_scored_here(
    client: TestClient, world: World, summary: dict[str, Any]
) -> None:
    stored = window_predictions(world, summary)
    truth = stored.primary_category.to_numpy(dtype=object)
    correct = stored.label.to_numpy(dtype=object) == truth
    top3 = (stored.label == stored.primary_category) | (stored.label_2 == stored.primary_category)
    top3 |= stored.label_3 == stored.primary_category
    # Macro-F1 over the categories with >= 20 papers, F1 written out per category.
    f1s = []
    for category, support in stored.primary_category.value_counts().items():
        if support < 20:
            continue
        tp = ((stored.label == category) & correct).sum()
        predicted = (stored.label == category).sum()
        precision, recall = tp / max(predicted, 1), tp / support
        f1s.append(0.0 if tp == 0 else 2 * precision * recall / (precision + recall))
    # ECE: 15 equal-width confidence bins, |accuracy - confidence| weighted by the bin's share.
    bins = np.minimum((stored.probability.to_numpy() * 15).astype(int), 14)
    edges_exact = stored.probability.to_numpy() * 15 == bins  # a value on an edge: lower bin
    bins = np.where(edges_exact & (bins > 0), bins - 1, bins)
    ece = sum(
        (bins == b).mean()
        * abs(correct[bins == b].mean() - stored.probability.to_numpy()[bins == b].mean())
        for b in np.unique(bins)
    )

    live = client.get("/v1/monitoring/latest").json()["live_quality"]

    assert len(stored) > 100 and len(f1s) >= 2
    assert live["papers"] == len(stored) == summary["window"]["papers"]
    assert live["accuracy"] == pytest.approx(correct.mean())
    assert live["top3"] == pytest.approx(top3.mean())
    assert live["macro_f1"] == pytest.approx(np.mean(f1s))
    assert live["ece"] == pytest.approx(ece)
    assert sum(c["support"] for c in live["per_class"].values()) == len(stored)


def test_runs_list_the_history_newest_first(client: TestClient, summary: dict[str, Any]) -> None:
    response = client.get("/v1/monitoring/runs", params={"limit": 1})

    assert response.status_code == 200, response.text
    [run] = response.json()["items"]
    assert run["run_id"] == summary["run_id"]
    assert run["current_papers"] == summary["window"]["papers"]
    assert run["retrain_recommended"] == summary["retrain_recommended"]
    assert client.get("/v1/monitoring/runs", params={"limit": 0}).status_code == 422


def test_the_evidently_page_of_a_run(client: TestClient, summary: dict[str, Any]) -> None:
    response = client.get(f"/v1/monitoring/{summary['run_id']}/report.html")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "Dataset Drift" in response.text and "Drifted Columns" in response.text  # its tests
    assert client.get("/v1/monitoring/20000101T000000Z/report.html").status_code == 404
    assert client.get("/v1/monitoring/..%2Fsecrets/report.html").status_code == 404
