"""Batch inference: every paper without a prediction from the current champion gets one."""

from __future__ import annotations

import logging
import time
from typing import Any

from arxiv_kedro.classification import registry
from arxiv_kedro.stores.relational import PaperStore

logger = logging.getLogger(__name__)


def predict_pending(
    store: PaperStore,
    champion: registry.RegisteredVersion | None,
    params: dict[str, Any],
    *_upstream: Any,
) -> dict[str, Any]:
    """Predict for papers the champion has not labeled (new, changed, or labeled by an older
    champion) and upsert the predictions. A rerun finds nothing pending and writes nothing.

    `_upstream`: outputs this run waits for (the default pipeline labels after ingesting).
    """
    if champion is None:
        logger.warning(
            "No @%s model in the registry yet: nothing labeled. "
            "Train one with `kedro run --pipeline training`.",
            registry.CHAMPION,
        )
        return {"status": "no champion", "predicted": 0}
    classifier = champion.load()
    started = time.perf_counter()
    predicted, last_id = 0, 0
    while True:
        pending = store.papers_to_predict(
            classifier.name, classifier.version, after_id=last_id, limit=params["batch_size"]
        )
        if pending.empty:
            break
        result = classifier.predict(pending)
        predicted += store.save_predictions(
            classifier.name, classifier.version, pending.join(result)
        )
        last_id = int(pending.id.iloc[-1])
        elapsed = time.perf_counter() - started
        logger.info(
            "Labeled %s papers with %s v%s (%.0f papers/s)",
            f"{predicted:,}",
            classifier.name,
            classifier.version,
            predicted / elapsed,
        )
    seconds = time.perf_counter() - started
    logger.info("Inference done: %s papers labeled in %.1f s", f"{predicted:,}", seconds)
    return {
        "status": "ok",
        "model": classifier.name,
        "version": classifier.version,
        "predicted": predicted,
        "seconds": round(seconds, 3),
    }
