"""Training: labeled papers from the store, a time-ordered split, fit, evaluate, champion gate."""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global figure state
from sklearn.metrics import confusion_matrix

from arxiv_kedro.classification import registry
from arxiv_kedro.classification.evaluation import evaluate
from arxiv_kedro.classification.model import TextClassifier, check_input

logger = logging.getLogger(__name__)


def label_set(labels: pd.Series, min_examples: int) -> list[str]:
    """The categories with at least `min_examples` papers; the others are not predicted."""
    counts = labels.value_counts()
    return sorted(counts[counts >= min_examples].index)


def split_by_time(
    papers: pd.DataFrame, params: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Train on the older papers, evaluate on the newest `evaluation_fraction`.

    The cut falls between two publication days, so no day is split. Labels are the categories
    with at least `min_examples` training papers; papers of other categories are left out of
    training and of the metrics, and counted in the split summary.
    """
    if papers.empty:
        raise ValueError(
            "the relational store holds no papers: run the ingestion pipeline first "
            "(e.g. ARXIV_SNAPSHOT=<file> kedro run --pipeline backfill)"
        )
    logger.info(
        "Training data: %s papers in %s categories", f"{len(papers):,}", papers.label.nunique()
    )
    published_day = papers.published.dt.floor("D")
    cut = published_day.quantile(1 - params["evaluation_fraction"], interpolation="higher")
    older = papers[published_day < cut]
    newer = papers[published_day >= cut]
    if older.empty or newer.empty:
        raise ValueError(
            f"cannot split {len(papers):,} papers by time at {cut:%Y-%m-%d}: "
            "ingest papers from more days"
        )
    labels = label_set(older.label, params["min_examples"])
    if len(labels) < 3:
        raise ValueError(
            f"only {len(labels)} categories have ≥ {params['min_examples']} training papers: "
            "ingest more papers or lower training.min_examples"
        )
    train = older[older.label.isin(labels)]
    evaluation = newer[newer.label.isin(labels)]
    summary = {
        "evaluation_from": f"{cut:%Y-%m-%d}",
        "train_papers": len(train),
        "evaluation_papers": len(evaluation),
        "labels": labels,
        "train_outside_labels": len(older) - len(train),
        "evaluation_outside_labels": len(newer) - len(evaluation),
    }
    logger.info(
        "Split at %s: %s training and %s evaluation papers in %d categories "
        "(%s + %s papers of rarer categories left out)",
        summary["evaluation_from"],
        f"{len(train):,}",
        f"{len(evaluation):,}",
        len(labels),
        f"{summary['train_outside_labels']:,}",
        f"{summary['evaluation_outside_labels']:,}",
    )
    return train, evaluation, summary


def fit_classifier(papers: pd.DataFrame, params: dict[str, Any]) -> TextClassifier:
    """Fit the model described by `params["model"]` on `papers` (oldest first)."""
    started = time.perf_counter()
    model = TextClassifier(**params["model"]).fit(papers, papers.label.tolist())
    logger.info(
        "Fitted %s on %s papers in %.0f s",
        model.estimator,
        f"{len(papers):,}",
        time.perf_counter() - started,
    )
    return model


def fit_final_classifier(papers: pd.DataFrame, params: dict[str, Any]) -> TextClassifier:
    """The deployed model: the same recipe refitted on every labeled paper, labels included
    from the whole store (categories with ≥ `min_examples` papers)."""
    return fit_classifier(
        papers[papers.label.isin(label_set(papers.label, params["min_examples"]))], params
    )


def evaluate_classifier(
    model: TextClassifier, evaluation: pd.DataFrame, params: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], Figure]:
    """Metrics for MLflow, the per-class report, and the confusion matrix plot."""
    started = time.perf_counter()
    probabilities = model.predict_proba(evaluation)
    rate = len(evaluation) / (time.perf_counter() - started)
    result = evaluate(
        probabilities,
        model.classes_,
        evaluation.label.to_numpy(dtype=object),
        min_class_support=params["min_class_support"],
    )
    metrics = {**result["metrics"], "predict_papers_per_second": rate}
    logger.info(
        "Evaluation on %s newer papers: accuracy %.3f, macro-F1 %.3f, top-3 %.3f, ECE %.3f",
        f"{len(evaluation):,}",
        metrics["accuracy"],
        metrics["macro_f1"],
        metrics["top3_accuracy"],
        metrics["ece"],
    )
    figure = confusion_figure(
        evaluation.label.to_numpy(dtype=object),
        model.classes_[probabilities.argmax(axis=1)],
        model.classes_,
    )
    mlflow_metrics = {name: {"value": float(value), "step": 0} for name, value in metrics.items()}
    return mlflow_metrics, {"metrics": metrics, "per_class": result["per_class"]}, figure


def confusion_figure(truth: np.ndarray, predicted: np.ndarray, classes: np.ndarray) -> Figure:
    """Row-normalized confusion matrix: where each true category's papers went."""
    matrix = confusion_matrix(truth, predicted, labels=classes).astype(float)
    matrix /= np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = max(6.0, 0.45 * len(classes) + 2)
    figure = Figure(figsize=(size + 1, size))
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(len(classes)), classes, rotation=90)
    axes.set_yticks(range(len(classes)), classes)
    axes.set_xlabel("predicted category")
    axes.set_ylabel("arXiv primary category")
    axes.set_title("Share of each category's papers (evaluation period)")
    for i, j in zip(*np.nonzero(matrix >= 0.05), strict=True):
        axes.text(
            j,
            i,
            f"{matrix[i, j]:.2f}",
            ha="center",
            va="center",
            fontsize=7,
            color="white" if matrix[i, j] > 0.5 else "black",
        )
    figure.colorbar(image, ax=axes, fraction=0.046)
    figure.tight_layout()
    return figure


def evaluation_fingerprint(evaluation: pd.DataFrame) -> str:
    """Identifies the evaluation data: the same papers with the same labels."""
    digest = hashlib.blake2b(digest_size=16)
    for arxiv_id, label in sorted(zip(evaluation.arxiv_id, evaluation.label, strict=True)):
        digest.update(f"{arxiv_id}\t{label}\n".encode())
    return digest.hexdigest()


def decide_promotion(
    model: TextClassifier,
    evaluation: pd.DataFrame,
    report: dict[str, Any],
    papers: pd.DataFrame,
    champion: registry.RegisteredVersion | None,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Whether this run's model should take the champion alias; the MLflow hook applies it.

    The candidate must beat the champion on the same evaluation data: the champion's recorded
    score if it was evaluated on exactly these papers; otherwise both are scored on the
    evaluation papers newer than everything the champion was trained on. Whatever the scores,
    a candidate whose probabilities are badly calibrated (ECE above `gate.max_ece`) is never
    promoted.
    """
    gate = params["gate"]
    decision = {
        "registered_model_name": registry.MODEL_NAME,
        "evaluation": report["metrics"],
        "metric": gate["metric"],
        "candidate": report["metrics"][gate["metric"]],
        "evaluation_fingerprint": evaluation_fingerprint(evaluation),
        "trained_through": papers.published.max().isoformat(),
    }
    decision |= _compare(model, evaluation, champion, decision, params)
    ece = report["metrics"]["ece"]
    if decision["promote"] and ece > gate["max_ece"]:
        decision["promote"] = False
        decision["reason"] = (
            f"ECE {ece:.3f} is above gate.max_ece {gate['max_ece']}: its probabilities cannot "
            f"be trusted, so it stays out although {decision['reason']}"
        )
    logger.info("Champion gate: %s", decision["reason"])
    return decision


def _compare(
    model: TextClassifier,
    evaluation: pd.DataFrame,
    champion: registry.RegisteredVersion | None,
    decision: dict[str, Any],
    params: dict[str, Any],
) -> dict[str, Any]:
    """The candidate against the champion: promote, both scores, and the reason."""
    gate, metric = params["gate"], decision["metric"]
    if champion is None:
        reason = "no champion yet"
        return {"promote": True, "champion": None, "champion_version": None, "reason": reason}
    result: dict[str, Any] = {"champion_version": champion.version}
    if champion.tags.get("evaluation_fingerprint") == decision["evaluation_fingerprint"]:
        result["champion"] = float(champion.tags[f"evaluation.{metric}"])
        basis = "the champion's score on the same evaluation papers"
    else:
        unseen = evaluation[evaluation.published > pd.Timestamp(champion.tags["trained_through"])]
        if len(unseen) < gate["min_papers"]:
            return result | {
                "promote": False,
                "champion": None,
                "reason": f"only {len(unseen)} evaluation papers are newer than the champion's "
                f"training data (need {gate['min_papers']}): keeping the champion",
            }
        truth = unseen.label.to_numpy(dtype=object)
        champion_model = champion.load().model
        result["candidate"] = _score(model, unseen, truth, metric, params)
        result["champion"] = _score(champion_model, unseen, truth, metric, params)
        basis = f"both scored on {len(unseen):,} papers newer than the champion's training data"
    candidate = result.get("candidate", decision["candidate"])
    promote = candidate > result["champion"] + gate["min_improvement"]
    verb = "beats" if promote else "does not beat"
    return result | {
        "promote": promote,
        "reason": f"{metric} {candidate:.4f} {verb} champion v{champion.version} "
        f"{result['champion']:.4f} ({basis})",
    }


def _score(
    model: TextClassifier, papers: pd.DataFrame, truth: np.ndarray, metric: str, params: dict
) -> float:
    probabilities = model.predict_proba(check_input(papers))
    result = evaluate(
        probabilities, model.classes_, truth, min_class_support=params["min_class_support"]
    )
    return result["metrics"][metric]


def predict(model: TextClassifier, instances: pd.DataFrame) -> pd.DataFrame:
    """The inference pipeline's only node (what `models:/arxiv-classifier@champion` runs)."""
    return model.predict_top3(check_input(instances))
