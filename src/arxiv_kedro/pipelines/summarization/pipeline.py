"""The summarization pipeline: summaries and translations of the stored papers that lack them."""

from kedro.pipeline import Node, Pipeline

from arxiv_kedro.pipelines.summarization.nodes import summarize_papers


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                summarize_papers,
                [
                    "papers@newest",
                    "stored_summaries",
                    "paid_answers",
                    "llm",
                    "params:summarization",
                ],
                # Paid answers first: cached before the documents that use them are written.
                ["llm_cache", "summaries", "summarization_report"],
                name="summarize_papers",
            )
        ],
        tags=["summarization"],
    )
