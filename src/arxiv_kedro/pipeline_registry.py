"""Project pipelines."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

from arxiv_kedro.pipelines.inference.pipeline import create_pipeline as inference_pipeline


def register_pipelines() -> dict[str, Pipeline]:
    """Every pipeline under `pipelines/`; the default ingests, then labels what is new.

    Training is an explicit step: `kedro run --pipeline training`.
    """
    pipelines = find_pipelines(raise_errors=True)  # only the requested ones, unless the default
    if "ingestion" in pipelines:
        pipelines["__default__"] = pipelines["ingestion"] + inference_pipeline(
            after=("ingestion_report",)
        )
    return pipelines
