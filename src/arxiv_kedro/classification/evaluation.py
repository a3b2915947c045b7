"""Honest evaluation of a classifier: the scores the champion gate and MLflow see."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support


def expected_calibration_error(
    probabilities: np.ndarray, correct: np.ndarray, bins: int = 15
) -> float:
    """Gap between confidence and accuracy of the top label, averaged over equal-width bins."""
    confidence = probabilities.max(axis=1)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            error += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(error)


def evaluate(
    probabilities: np.ndarray,
    classes: np.ndarray,
    truth: np.ndarray,
    *,
    min_class_support: int = 20,
) -> dict[str, Any]:
    """Scores of `probabilities` (rows: papers, columns: `classes`) against the true labels.

    Macro-F1 averages over the classes with at least `min_class_support` papers in `truth`
    (fewer make F1 noise); the per-class report covers every class seen or predicted.
    """
    if len(truth) == 0:
        raise ValueError("nothing to evaluate: the evaluation set is empty")
    ranked = classes[np.argsort(-probabilities, axis=1, kind="stable")[:, :3]]
    predicted = ranked[:, 0]
    correct = predicted == truth
    labels, support = np.unique(truth, return_counts=True)
    scored = labels[support >= min_class_support]
    report_labels = np.union1d(labels, np.unique(predicted))
    precision, recall, f1, n = precision_recall_fscore_support(
        truth, predicted, labels=report_labels, zero_division=0
    )
    return {
        "metrics": {
            "accuracy": float(accuracy_score(truth, predicted)),
            "macro_f1": float(f1_score(truth, predicted, labels=scored, average="macro")),
            "top3_accuracy": float((ranked == truth[:, None]).any(axis=1).mean()),
            "ece": expected_calibration_error(probabilities, correct),
            "papers": len(truth),
            "macro_f1_classes": len(scored),
        },
        "per_class": {
            str(label): {
                "precision": float(p),
                "recall": float(r),
                "f1": float(f),
                "support": int(s),
            }
            for label, p, r, f, s in zip(report_labels, precision, recall, f1, n, strict=True)
        },
    }
