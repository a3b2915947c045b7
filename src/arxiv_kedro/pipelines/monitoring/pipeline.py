"""The monitoring pipeline: the champion's stored predictions of the newest papers against
arXiv's labels and against its training window; it reads what inference writes, so it runs
after it."""

from kedro.pipeline import Node, Pipeline

from arxiv_kedro.pipelines.monitoring.nodes import (
    check_data_quality,
    check_drift,
    check_feed,
    decide,
    measure_live_quality,
    publish,
    select_papers,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                select_papers,
                ["champion", "predictions@monitored", "params:monitoring"],
                [
                    "monitoring_context",
                    "monitoring_reference",
                    "monitoring_current",
                    "monitoring_feed",
                ],
                name="select_papers",
            ),
            Node(
                check_drift,
                [
                    "monitoring_context",
                    "monitoring_reference",
                    "monitoring_current",
                    "params:monitoring",
                ],
                ["monitoring_evidently", "monitoring_drift"],
                name="check_drift",
            ),
            Node(
                measure_live_quality,
                ["monitoring_context", "monitoring_current", "params:monitoring"],
                "monitoring_live_quality",
                name="measure_live_quality",
            ),
            Node(
                check_data_quality,
                ["monitoring_context", "monitoring_current"],
                "monitoring_data_quality",
                name="check_data_quality",
            ),
            Node(
                check_feed,
                ["monitoring_context", "monitoring_feed", "params:monitoring"],
                "monitoring_feed_health",
                name="check_feed",
            ),
            Node(
                decide,
                [
                    "monitoring_context",
                    "monitoring_drift",
                    "monitoring_live_quality",
                    "monitoring_data_quality",
                    "monitoring_feed_health",
                    "monitoring_history",
                    "params:monitoring",
                ],
                "monitoring_summary",
                name="decide",
            ),
            Node(
                publish,
                ["monitoring_summary", "monitoring_evidently"],
                [
                    "monitoring_report_html",
                    "monitoring_report_json",
                    "monitoring_mlflow",
                    "reports",
                    "monitoring_runs",
                    "retrain_recommended",
                ],
                name="publish_monitoring",
            ),
        ],
        tags=["monitoring"],
    )
