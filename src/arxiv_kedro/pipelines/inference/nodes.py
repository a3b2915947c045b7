"""Batch inference: every paper without a prediction from the current champion gets one."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pandas as pd

from arxiv_kedro.classification import registry
from arxiv_kedro.stores.relational.ml import PREDICTION_FRAME

if TYPE_CHECKING:
    from arxiv_kedro.datasets.relational import PendingPapers

logger = logging.getLogger(__name__)


def predict_pending(
    champion: registry.RegisteredVersion | None, pending: PendingPapers
) -> Iterator[tuple[pd.DataFrame, dict[str, Any]]]:
    """Label the papers the champion has not labeled (new, changed, or labeled by an older
    champion), a page at a time: each page's predictions and the running report are saved
    before the next page is read. A rerun finds nothing pending and writes nothing."""
    if champion is None:
        logger.warning(
            "No @%s model in the registry yet: nothing labeled. "
            "Train one with `kedro run --pipeline training`.",
            registry.CHAMPION,
        )
        yield pd.DataFrame(columns=PREDICTION_FRAME), {"status": "no champion", "predicted": 0}
        return
    classifier = champion.load()
    report = {"status": "ok", "model": classifier.name, "version": classifier.version}
    started, predicted = time.perf_counter(), 0
    for page in pending.for_model(classifier.name, classifier.version):
        frame = page[["paper_id", "content_hash"]].join(classifier.predict(page))
        frame["model_name"], frame["model_version"] = classifier.name, classifier.version
        predicted += len(frame)
        seconds = time.perf_counter() - started
        logger.info(
            "Labeled %s papers with %s v%s (%.0f papers/s)",
            f"{predicted:,}",
            classifier.name,
            classifier.version,
            predicted / seconds,
        )
        yield frame, report | {"predicted": predicted, "seconds": round(seconds, 3)}
    seconds = time.perf_counter() - started
    logger.info("Inference done: %s papers labeled in %.1f s", f"{predicted:,}", seconds)
    yield (
        pd.DataFrame(columns=PREDICTION_FRAME),
        report | {"predicted": predicted, "seconds": round(seconds, 3)},
    )
