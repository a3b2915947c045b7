"""Plain-language summaries and translations (Mistral, or extractive offline)."""

from arxiv_kedro.pipelines.summarization.pipeline import create_pipeline

__all__ = ["create_pipeline"]
