"""Train, evaluate and register the paper classifier; the champion gate moves its alias."""

from arxiv_kedro.pipelines.training.pipeline import create_pipeline

__all__ = ["create_pipeline"]
