"""The summarization pipeline."""

from kedro.pipeline import Node, Pipeline

from arxiv_kedro.pipelines.summarization.nodes import summarize_papers


def create_pipeline(after: tuple[str, ...] = (), **kwargs) -> Pipeline:
    """`after`: datasets to wait for, e.g. ("ingestion_report",) to summarize what was ingested."""
    return Pipeline(
        [
            Node(
                summarize_papers,
                ["paper_store", "document_store", "llm", "params:summarization", *after],
                "summarization_report",
                name="summarize_papers",
            )
        ],
        tags=["summarization"],
    )
