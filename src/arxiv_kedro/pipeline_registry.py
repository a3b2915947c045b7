"""Project pipelines."""

from __future__ import annotations

import os

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

DOWNSTREAM = ("inference", "summarization", "monitoring")  # run once papers are ingested


def register_pipelines() -> dict[str, Pipeline]:
    """Every pipeline under `pipelines/` (`backfill`: a snapshot instead of the live API), the
    default: ingest — from the API, or from the snapshot `ARXIV_SNAPSHOT` names — then label and
    summarize what is new and monitor the champion on it (they read what ingestion and inference
    write, so they run after them), and `all`:
    the default with training, the whole lifecycle (`kedro viz` shows it in one graph).

    Training is an explicit step: `kedro run --pipeline training` (or `all`).
    """
    pipelines = find_pipelines(raise_errors=True)  # `--pipeline X`: only X is looked for
    if all(name in pipelines for name in ("ingestion", *DOWNSTREAM)):
        source = pipelines["backfill" if os.environ.get("ARXIV_SNAPSHOT") else "ingestion"]
        pipelines["__default__"] = sum((pipelines[name] for name in DOWNSTREAM), source)
        if "training" in pipelines:
            pipelines["all"] = pipelines["__default__"] + pipelines["training"]
    return pipelines
