"""The inference pipeline: the champion labels the stored papers it has not labeled yet."""

from kedro.pipeline import Node, Pipeline

from arxiv_kedro.pipelines.inference.nodes import predict_pending


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                predict_pending,
                ["champion", "papers@unlabeled"],
                ["predictions@batches", "inference_report"],
                name="predict_pending",
            )
        ],
        tags=["inference"],
    )
