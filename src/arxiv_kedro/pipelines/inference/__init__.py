"""Label stored papers with the champion classifier."""

from arxiv_kedro.pipelines.inference.pipeline import create_pipeline

__all__ = ["create_pipeline"]
