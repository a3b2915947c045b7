"""Evidently's data drift report (0.7: `Report`, `Dataset`, `DataDefinition`, `DataDriftPreset`
with its tests) on the monitored columns, and what it found, column by column."""

from __future__ import annotations

from typing import Any

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.core.report import Snapshot
from evidently.legacy.metrics import DataDriftTable, DatasetDriftMetric
from evidently.presets import DataDriftPreset

NUMERICAL = (
    "title_length",
    "abstract_length",
    "non_letter_share",
    "latex_share",
    "oov_share",
    "confidence",
)
CATEGORICAL = ("predicted",)
WORDS = 10  # the words most typical of each side of a drifted text column


def run_drift_report(
    reference: pd.DataFrame, current: pd.DataFrame, params: dict[str, Any]
) -> tuple[Snapshot, dict[str, Any]]:
    """The report (current against reference) and its findings: whether the dataset drifted,
    the share of drifted columns, and per column its method, score, threshold, verdict (and,
    for a drifted text column, the words typical of the current and of the reference papers:
    Evidently's domain classifier tells them apart by these)."""
    text = list(params["text_columns"])
    definition = DataDefinition(
        text_columns=text,
        numerical_columns=list(NUMERICAL),
        categorical_columns=list(CATEGORICAL),
    )
    columns = [*text, *NUMERICAL, *CATEGORICAL]
    threshold, share = params["stattest_threshold"], params["max_drift_share"]
    preset = DataDriftPreset(columns=columns, drift_share=share, threshold=threshold)
    snapshot = Report([preset], include_tests=True).run(
        Dataset.from_pandas(current[columns], data_definition=definition),
        Dataset.from_pandas(reference[columns], data_definition=definition),
    )
    # The preset's own legacy metrics, computed for its widgets: read back, not recomputed.
    dataset = snapshot.context.get_legacy_metric(
        DatasetDriftMetric(columns=columns, drift_share=share, stattest_threshold=threshold),
        None,
        None,
    )[0]
    table = snapshot.context.get_legacy_metric(
        DataDriftTable(columns=columns, stattest_threshold=threshold), None, None
    )[0]
    found: dict[str, Any] = {}
    for name, column in table.drift_by_columns.items():
        found[name] = {
            "method": column.stattest_name,
            "score": float(column.drift_score),
            "threshold": float(column.stattest_threshold),
            "drifted": bool(column.drift_detected),
        }
        if column.column_type == "text" and column.drift_detected:
            found[name]["words"] = {
                "current": list(column.current.characteristic_words or [])[:WORDS],
                "reference": list(column.reference.characteristic_words or [])[:WORDS],
            }
    return snapshot, {
        "detected": bool(dataset.dataset_drift),
        "share": float(dataset.share_of_drifted_columns),
        "columns": {name: found[name] for name in columns if name in found},
        "text_drift": any(found[name]["drifted"] for name in text if name in found),
    }
