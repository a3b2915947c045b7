"""What the store holds: categories with counts, totals, freshness and the champion model."""

from __future__ import annotations

import json
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Query

from arxiv_kedro.classification.registry import MODEL_NAME
from serving.models import Categories, Problem, Stats
from serving.security import read_key
from serving.services import Services, Svc, json_response

router = APIRouter(prefix="/v1", tags=["store"], dependencies=[Depends(read_key)])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (401, 403, 422, 503)
}
RUN_FIELDS = ("status", "source", "started_at", "finished_at", "new", "updated", "quarantined")


@router.get("/categories", response_model=Categories, responses=ERRORS)
async def categories(svc: Svc) -> Any:
    """Every category in the store with its official name, most papers first."""

    def compute() -> dict:
        counts = svc.papers.category_counts()
        return {
            "items": [
                {
                    "category": c,
                    "name": svc.taxonomy.name(c),
                    "group": svc.taxonomy.group(c),
                    "papers": primary,
                    "cross_listed": cross,
                }
                for c, primary, cross in counts
            ]
        }

    return json_response(await svc.cached("categories", compute))


@router.get("/stats", response_model=Stats, responses=ERRORS)
async def stats(
    svc: Svc,
    days: Annotated[
        int, Query(ge=1, le=20_000, description="papers per day over this many days")
    ] = 90,
) -> Any:
    """Totals, ingestion freshness, papers per day (the `days` up to the newest paper), and
    the champion model's evaluation."""

    def compute() -> dict:
        found = svc.papers.stats(model_name=MODEL_NAME, days=days)
        run = found["last_ingestion"]
        totals = {
            **found,
            "last_ingestion": None if run is None else {k: run[k] for k in RUN_FIELDS},
            "summaries": svc.documents.count("summaries"),
            "model": None,
        }
        return Stats.model_validate(totals).model_dump(mode="json")

    # The model is not cached with the totals: it changes when the alias moves, which the
    # API notices by itself (ChampionModel), not when a pipeline writes a store.
    # The registry may be remote: asked from a worker thread.
    model = await anyio.to_thread.run_sync(_model, svc)
    return {**json.loads(await svc.cached(f"stats:{days}", compute)), "model": model}


def _model(svc: Services) -> dict | None:
    info = svc.model.info()
    if info is None:
        return None
    version, evaluation = info
    per_class = [
        {"category": c, "name": svc.taxonomy.name(c), **{k: s[k] for k in _SCORES}}
        for c, s in sorted(evaluation.get("per_class", {}).items())
    ]
    metrics = {k: v for k, v in evaluation.get("metrics", {}).items() if isinstance(v, int | float)}
    return {
        "name": version.name,
        "version": version.version,
        "trained_through": evaluation.get("trained_through"),
        "metrics": metrics,
        "per_class": per_class,
    }


_SCORES = ("precision", "recall", "f1", "support")
