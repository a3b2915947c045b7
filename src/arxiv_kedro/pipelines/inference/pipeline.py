"""The inference pipeline."""

from kedro.pipeline import Node, Pipeline

from arxiv_kedro.pipelines.inference.nodes import predict_pending


def create_pipeline(after: tuple[str, ...] = (), **kwargs) -> Pipeline:
    """`after`: datasets to wait for, e.g. ("ingestion_report",) to label what was ingested."""
    return Pipeline(
        [
            Node(
                predict_pending,
                ["paper_store", "champion", "params:inference", *after],
                "inference_report",
                name="predict_pending",
            )
        ],
        tags=["inference"],
    )
