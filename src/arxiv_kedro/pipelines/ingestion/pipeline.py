"""The ingestion pipeline."""

from kedro.pipeline import Node, Pipeline

from arxiv_kedro.pipelines.ingestion.nodes import ingest_papers


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=ingest_papers,
                inputs=[
                    "paper_source",
                    "paper_store",
                    "document_store",
                    "ingestion_lock",
                    "params:ingestion",
                ],
                outputs="ingestion_report",
                name="ingest_papers_node",
                tags=["ingestion"],
            )
        ]
    )
