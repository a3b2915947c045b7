"""Monitor the champion and the feed: live quality, drift, data quality, feed health, retrain."""

from arxiv_kedro.pipelines.monitoring.pipeline import create_pipeline

__all__ = ["create_pipeline"]
