"""Classification of any title and abstract by the champion model."""

from __future__ import annotations

from typing import Any

import pandas as pd
from fastapi import APIRouter, Depends

from serving import views
from serving.models import BatchRequest, BatchResponse, ClassifyRequest, ClassifyResponse, Problem
from serving.security import write_key
from serving.services import Svc

router = APIRouter(prefix="/v1", tags=["classify"], dependencies=[Depends(write_key)])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (401, 403, 413, 422, 429, 503)
}


def _classify(svc: Svc, items: list[ClassifyRequest]) -> tuple[list[dict], dict[str, str]]:
    classifier = svc.model.get()
    frame = pd.DataFrame([{"title": i.title, "abstract": i.abstract} for i in items])
    predicted = classifier.predict(frame)
    results = [
        {"categories": [views.scored(svc.taxonomy, row[c], row[p]) for c, p in views.RANKS]}
        for row in predicted.to_dict("records")
    ]
    return results, {"name": classifier.name, "version": classifier.version}


@router.post("/classify", response_model=ClassifyResponse, responses=ERRORS)
def classify(svc: Svc, body: ClassifyRequest) -> Any:
    """The three likeliest arXiv categories of a title and abstract, with probabilities."""
    results, model = _classify(svc, [body])
    return {**results[0], "model": model}


@router.post("/classify/batch", response_model=BatchResponse, responses=ERRORS)
def classify_batch(svc: Svc, body: BatchRequest) -> Any:
    """Up to 256 titles and abstracts at once, answered in order."""
    results, model = _classify(svc, body.items)
    return {"results": results, "model": model}
