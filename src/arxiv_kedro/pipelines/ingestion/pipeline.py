"""The ingestion pipelines: the live API (plan → fetch into the landing zone → normalize, validate
and store → report) and the snapshot backfill (stream → normalize, validate and store → report)."""

from kedro.pipeline import Node, Pipeline

from arxiv_kedro.pipelines.ingestion.nodes import (
    fetch_pages,
    plan_ingestion,
    report_ingestion,
    store_fetched_papers,
    store_snapshot_papers,
)

# Documents first: each batch's raw records are stored before its relational transaction commits.
STORED = ["articles", "papers@batches"]
REPORT = Node(report_ingestion, "papers@run", "ingestion_report", name="report_ingestion")


def create_pipeline(**kwargs) -> Pipeline:
    """The live arXiv API, incrementally from each category's watermark."""
    return Pipeline(
        [
            Node(
                plan_ingestion,
                ["ingestion_watermarks", "params:ingestion"],
                "ingestion_plan",
                name="plan_ingestion",
            ),
            Node(fetch_pages, ["arxiv_api", "ingestion_plan"], "raw_pages", name="fetch_pages"),
            Node(
                store_fetched_papers,
                ["raw_pages", "ingestion_plan"],
                STORED,
                name="store_fetched_papers",
            ),
            REPORT,
        ],
        tags=["ingestion"],
    )


def create_backfill_pipeline() -> Pipeline:
    """A bulk snapshot file (`ARXIV_SNAPSHOT`), streamed with flat memory."""
    return Pipeline(
        [
            Node(
                store_snapshot_papers,
                ["snapshot", "params:ingestion"],
                STORED,
                name="store_snapshot_papers",
            ),
            REPORT,
        ],
        tags=["ingestion", "backfill"],
    )
