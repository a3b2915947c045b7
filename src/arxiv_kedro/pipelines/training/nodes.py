"""Training: labeled papers from the store, a time-ordered split, fit, evaluate, champion gate."""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global figure state
from sklearn.metrics import confusion_matrix

from arxiv_kedro.classification import registry
from arxiv_kedro.classification.evaluation import evaluate
from arxiv_kedro.classification.model import IncompatibleModel, TextClassifier, check_input

logger = logging.getLogger(__name__)


def label_set(labels: pd.Series, min_examples: int) -> list[str]:
    """The categories with at least `min_examples` papers; the others are not predicted."""
    counts = labels.value_counts()
    return sorted(counts[counts >= min_examples].index)


def _require_papers(papers: pd.DataFrame) -> None:
    if papers.empty:
        raise ValueError(
            "the relational store holds no papers: run the ingestion pipeline first "
            "(e.g. ARXIV_SNAPSHOT=<file> kedro run --pipeline backfill)"
        )


def split_by_time(
    papers: pd.DataFrame, params: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Train on the older papers, evaluate on the newest `evaluation_fraction`.

    The cut falls between two publication days, so no day is split. Labels are the categories
    with at least `min_examples` training papers; papers of other categories are left out of
    training and of the metrics, and counted in the split summary.
    """
    _require_papers(papers)
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


def candidate(params: dict[str, Any]) -> TextClassifier:
    """The unfitted candidate `params["candidate"]` of `params["candidates"]`."""
    name = params["candidate"]
    if name not in params["candidates"]:
        raise ValueError(
            f"unknown training.candidate {name!r}: use one of {sorted(params['candidates'])}"
        )
    return TextClassifier(**params["candidates"][name])


def count_ngrams(papers: pd.DataFrame, params: dict[str, Any]) -> dict[str, sp.csr_matrix]:
    """Every labeled paper's hashed n-gram counts (rows in `papers`' order), counted once for
    all the fits of a training run: the holdout fit, the rolling origin and the final fit."""
    _require_papers(papers)
    started = time.perf_counter()
    counts = candidate(params).counts(papers)
    logger.info(
        "Counted the n-grams of %s papers in %.0f s",
        f"{len(papers):,}",
        time.perf_counter() - started,
    )
    return counts


def counts_of(
    subset: pd.DataFrame, papers: pd.DataFrame, counts: dict[str, sp.csr_matrix]
) -> dict[str, sp.csr_matrix]:
    """The rows of `counts` (of every paper in `papers`) for the papers of `subset`."""
    rows = papers.index.get_indexer(subset.index)
    if (rows < 0).any():
        raise ValueError("some papers to fit on are not among those whose n-grams were counted")
    return {name: block[rows] for name, block in counts.items()}


def fit_classifier(
    papers: pd.DataFrame,
    params: dict[str, Any],
    counts: dict[str, sp.csr_matrix] | None = None,
) -> TextClassifier:
    """Fit the candidate on `papers` (oldest first; `counts`: their n-gram counts, if known)."""
    name = params["candidate"]
    started = time.perf_counter()
    model = candidate(params).fit(papers, papers.label.tolist(), counts)
    logger.info(
        "Fitted candidate %r on %s papers in %.0f s",
        name,
        f"{len(papers):,}",
        time.perf_counter() - started,
    )
    return model


def fit_holdout_classifier(
    train: pd.DataFrame,
    papers: pd.DataFrame,
    counts: dict[str, sp.csr_matrix],
    params: dict[str, Any],
) -> TextClassifier:
    """The candidate fitted on the training side of the time split (`counts`: of `papers`)."""
    return fit_classifier(train, params, counts_of(train, papers, counts))


def fit_final_classifier(
    papers: pd.DataFrame, counts: dict[str, sp.csr_matrix], params: dict[str, Any]
) -> TextClassifier:
    """The deployed model: the same recipe refitted on every labeled paper, labels included
    from the whole store (categories with ≥ `min_examples` papers)."""
    labeled = papers[papers.label.isin(label_set(papers.label, params["min_examples"]))]
    return fit_classifier(labeled, params, counts_of(labeled, papers, counts))


def rolling_origin_evaluation(
    papers: pd.DataFrame, counts: dict[str, sp.csr_matrix], params: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The candidate judged over time: for each origin *m* (the newest `rolling_origin.origins`
    periods, `rolling_origin.period` "M" for months, "W" for weeks, with `rolling_origin.horizon`
    periods of papers from *m* on), fit it on every paper published before *m* and evaluate it
    on the papers of periods *m … m + horizon - 1* (`counts`: the n-grams of `papers`).

    Every choice of the fit (vocabulary, weights, temperature) is made on the papers before *m*;
    the labels too are the categories with ≥ `min_examples` of those papers. Returns the MLflow
    metrics (the means over the origins at step 0, each origin's own as `origin.<name>` with the
    origin's index as step) and the report (means, origins, mean F1 per scored category).
    """
    settings = params["rolling_origin"]
    period = settings["period"]
    _require_papers(papers)
    period_of = papers.published.dt.tz_convert("UTC").dt.tz_localize(None).dt.to_period(period)
    newest = period_of.max() - settings["horizon"] + 1
    origins = [newest - i for i in reversed(range(settings["origins"]))]
    results = []
    for origin in origins:
        earlier = (period_of < origin).to_numpy()
        labels = label_set(papers.label[earlier], params["min_examples"])
        if len(labels) < 3:
            raise ValueError(
                f"origin {origin}: only {len(labels)} categories have ≥ "
                f"{params['min_examples']} earlier papers: ingest papers of a longer period "
                "or lower training.rolling_origin.origins"
            )
        labeled = papers.label.isin(labels).to_numpy()
        before = labeled & earlier
        after = labeled & ~earlier & (period_of < origin + settings["horizon"]).to_numpy()
        train, evaluation = papers[before], papers[after]
        model = fit_classifier(train, params, counts_of(train, papers, counts))
        result = evaluate(
            model.predict_proba(evaluation),
            model.classes_,
            evaluation.label.to_numpy(dtype=object),
            min_class_support=params["min_class_support"],
        )
        results.append(
            {
                "origin": str(origin),
                "train_papers": len(train),
                **result["metrics"],
                "f1": {  # the categories macro-F1 averages (not those only predicted)
                    label: scores["f1"]
                    for label, scores in result["per_class"].items()
                    if scores["support"] >= params["min_class_support"]
                },
            }
        )
        logger.info(
            "Origin %s (%s training papers): %s papers of the next %d periods, accuracy %.3f, "
            "macro-F1 %.3f, top-3 %.3f, ECE %.3f",
            origin,
            f"{len(train):,}",
            f"{result['metrics']['papers']:,}",
            settings["horizon"],
            result["metrics"]["accuracy"],
            result["metrics"]["macro_f1"],
            result["metrics"]["top3_accuracy"],
            result["metrics"]["ece"],
        )
    names = ["accuracy", "macro_f1", "top3_accuracy", "ece"]
    means = {name: float(np.mean([r[name] for r in results])) for name in names}
    per_class = pd.DataFrame([r["f1"] for r in results])
    report = {
        "candidate": params["candidate"],
        "period": period,
        "horizon": settings["horizon"],
        "metrics": means,
        "origins": results,
        "mean_f1": {label: float(f1) for label, f1 in per_class.mean().sort_index().items()},
    }
    metrics: dict[str, Any] = {name: {"value": value, "step": 0} for name, value in means.items()}
    for name in [*names, "papers", "train_papers"]:
        metrics[f"origin.{name}"] = [
            {"value": float(r[name]), "step": i} for i, r in enumerate(results)
        ]
    logger.info(
        "Rolling origin (%d origins, %s): accuracy %.3f, macro-F1 %.3f, top-3 %.3f, ECE %.3f",
        len(results),
        params["candidate"],
        *means.values(),
    )
    return metrics, report


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


GUARDED = (
    "top3_accuracy",
    "ece",
)  # besides the gate's metric: must not get worse beyond a tolerance


def decide_promotion(
    model: TextClassifier,
    evaluation: pd.DataFrame,
    report: dict[str, Any],
    papers: pd.DataFrame,
    champion: registry.RegisteredVersion | None,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Whether this run's model should take the champion alias; the MLflow hook applies it.

    The candidate must beat the champion's `gate.metric` by more than `gate.min_improvement`,
    while its top-3 accuracy is at most `gate.top3_tolerance` below the champion's and its ECE at
    most `gate.ece_tolerance` above it; all on the same evaluation data: the champion's recorded
    scores if it was evaluated on exactly these papers, otherwise both scored on the evaluation
    papers newer than everything the champion was trained on. Whatever the comparison, a
    candidate whose probabilities are badly calibrated (ECE above `gate.max_ece`) is never
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
    names = [metric, *GUARDED]
    if champion.tags.get("evaluation_fingerprint") == decision["evaluation_fingerprint"]:
        ours = {name: decision["evaluation"][name] for name in names}
        theirs = {name: float(champion.tags[f"evaluation.{name}"]) for name in names}
        basis = "the champion's scores on the same evaluation papers"
    else:
        unseen = evaluation[evaluation.published > pd.Timestamp(champion.tags["trained_through"])]
        if len(unseen) < gate["min_papers"]:
            return result | {
                "promote": False,
                "champion": None,
                "reason": f"only {len(unseen)} evaluation papers are newer than the champion's "
                f"training data (need {gate['min_papers']}): keeping the champion",
            }
        ours = _scores(model, unseen, params)
        try:
            theirs = _scores(champion.load().model, unseen, params)
        except IncompatibleModel as exc:  # nothing can serve it any more: replace it
            reason = f"champion v{champion.version}: {exc}"
            return result | {"promote": True, "champion": None, "reason": reason}
        basis = f"both scored on {len(unseen):,} papers newer than the champion's training data"
    wins = ours[metric] > theirs[metric] + gate["min_improvement"]
    verdicts = [
        f"{metric} {ours[metric]:.4f} {'beats' if wins else 'does not beat'} champion "
        f"v{champion.version} {theirs[metric]:.4f}"
    ]
    worse = {
        "top3_accuracy": theirs["top3_accuracy"] - ours["top3_accuracy"] > gate["top3_tolerance"],
        "ece": ours["ece"] - theirs["ece"] > gate["ece_tolerance"],
    }
    tolerance = {"top3_accuracy": "top3_tolerance", "ece": "ece_tolerance"}
    for name in GUARDED:
        verdicts.append(
            f"{name} {ours[name]:.4f} vs {theirs[name]:.4f} "
            + (
                f"is worse by more than gate.{tolerance[name]} {gate[tolerance[name]]}"
                if worse[name]
                else "is within tolerance"
            )
        )
    return result | {
        "promote": wins and not any(worse.values()),
        "candidate": ours[metric],
        "champion": theirs[metric],
        "candidate_scores": ours,
        "champion_scores": theirs,
        "reason": f"{'; '.join(verdicts)} ({basis})",
    }


def _scores(model: TextClassifier, papers: pd.DataFrame, params: dict) -> dict[str, float]:
    probabilities = model.predict_proba(check_input(papers))
    truth = papers.label.to_numpy(dtype=object)
    result = evaluate(
        probabilities, model.classes_, truth, min_class_support=params["min_class_support"]
    )
    return {name: result["metrics"][name] for name in [params["gate"]["metric"], *GUARDED]}


def predict(model: TextClassifier, instances: pd.DataFrame) -> pd.DataFrame:
    """The inference pipeline's only node (what `models:/arxiv-classifier@champion` runs)."""
    return model.predict_top3(check_input(instances))
