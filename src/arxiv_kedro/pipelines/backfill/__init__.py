"""Backfill: a bulk snapshot file (`ARXIV_SNAPSHOT`) → ingestion's store and report steps.

Its own package so that `kedro run --pipeline backfill` finds it (Kedro looks the requested
pipeline up by its folder under `pipelines/`)."""

from arxiv_kedro.pipelines.ingestion.pipeline import create_backfill_pipeline as create_pipeline

__all__ = ["create_pipeline"]
