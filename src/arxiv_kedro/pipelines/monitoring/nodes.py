"""Monitoring: the champion's live quality against arXiv's own labels, drift of the papers and of
the predictions against the champion's training window, data quality, feed health, and whether
to retrain. Every check is pass/fail against its threshold in `parameters_monitoring.yml`."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score, precision_recall_fscore_support

from arxiv_kedro.classification import registry
from arxiv_kedro.classification.evaluation import expected_calibration_error
from arxiv_kedro.pipelines.monitoring import feed as calendar
from arxiv_kedro.pipelines.monitoring.drift import run_drift_report

if TYPE_CHECKING:
    from arxiv_kedro.datasets.monitoring import MonitoredPapers, MonitoringHistory

logger = logging.getLogger(__name__)
_LATEX = re.compile(r"\$[^$]*\$|\\[A-Za-z]+")
_WORD = re.compile(r"[a-z]+")


def _timestamp(value: str | datetime) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)


def _window(start: pd.Timestamp, end: pd.Timestamp) -> dict[str, str]:
    return {"from": start.isoformat(), "to": end.isoformat()}


def select_papers(
    champion: registry.RegisteredVersion | None,
    papers: MonitoredPapers,
    params: dict[str, Any],
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The run's context (id, windows, champion) and its papers: the reference (the champion's
    training window or the configured one, evenly sampled to `reference_max_papers`), the
    current window with the stored predictions, and the feed (the current window and
    `feed.trailing_days` announcement days before it)."""
    run_at = pd.Timestamp.now(tz=UTC).floor("s")
    context: dict[str, Any] = {
        "run_id": f"{run_at:%Y%m%dT%H%M%SZ}",
        "run_at": run_at.isoformat(),
        "status": "ok",
        "model": None,
    }
    empty = pd.DataFrame()
    if champion is not None:
        context["model"] = {
            "name": champion.name,
            "version": champion.version,
            "macro_f1": _float(champion.tags.get("evaluation.macro_f1")),
            "trained_through": champion.tags.get("trained_through"),
        }
    if params["current_from"] or params["current_to"]:
        if not (params["current_from"] and params["current_to"]):
            raise ValueError("set both monitoring.current_from and monitoring.current_to, or none")
        start, end = _timestamp(params["current_from"]), _timestamp(params["current_to"])
        as_of = end
    else:
        newest = papers.newest_published()
        if newest is None:
            return context | {"status": "the store holds no papers"}, empty, empty, empty
        end = _timestamp(newest).floor("D") + pd.Timedelta(days=1)
        start, as_of = end - pd.Timedelta(days=params["current_days"]), run_at
    if start >= end:
        raise ValueError(f"empty current window: {start:%Y-%m-%d} is not before {end:%Y-%m-%d}")
    if params["reference_from"] and params["reference_to"]:
        ref_start = _timestamp(params["reference_from"])
        ref_end = _timestamp(params["reference_to"])
    elif champion is not None and champion.tags.get("trained_through"):
        # The champion is refitted on every stored paper up to `trained_through`.
        ref_start = pd.Timestamp("1970-01-01", tz=UTC)
        ref_end = _timestamp(champion.tags["trained_through"]) + pd.Timedelta(seconds=1)
    else:
        status = "no champion and no monitoring.reference_from / reference_to: nothing to compare"
        return context | {"status": status}, empty, empty, empty
    holidays = params["feed"]["holidays"]
    first_day = calendar.announcement_day(start, holidays)
    feed_from = np.busday_offset(first_day, -params["feed"]["trailing_days"], holidays=holidays)
    model_name = params["model_name"]
    reference = papers.window(ref_start, ref_end, model_name, params["reference_max_papers"])
    current = papers.window(start, end, model_name)
    feed = papers.feed(_timestamp(str(feed_from)) - pd.Timedelta(days=1), end)
    context |= {
        "current": _window(start, end) | {"papers": len(current)},
        "reference": _window(reference.published.min(), ref_end) | {"papers": len(reference)}
        if len(reference)
        else _window(ref_start, ref_end) | {"papers": 0},
        "as_of": as_of.isoformat(),
        "ingested": papers.ingested(start, as_of),
    }
    if reference.empty or current.empty:
        which = "reference" if reference.empty else "current"
        context["status"] = f"no papers in the {which} window"
    logger.info(
        "Monitoring %s current papers (%s … %s) against %s reference papers",
        f"{len(current):,}",
        f"{start:%Y-%m-%d}",
        f"{end:%Y-%m-%d}",
        f"{len(reference):,}",
    )
    return context, reference, current, feed


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


# --- drift ------------------------------------------------------------------------------------


def describe_texts(
    reference: pd.DataFrame, current: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The columns drift is measured on: title and abstract, their descriptors (length, share of
    non-letters, share of LaTeX, share of out-of-vocabulary words), the predicted category and
    its probability.

    The vocabulary is the words seen twice in every other reference paper: the reference's
    out-of-vocabulary share is measured on the other half only (else it would be ~0 by
    construction)."""
    vocabulary_rows = np.arange(len(reference)) % 2 == 0
    counts = pd.Series(
        [w for text in reference.abstract[vocabulary_rows] for w in _WORD.findall(text.lower())]
    ).value_counts()
    vocabulary = set(counts[counts >= 2].index)

    def columns(frame: pd.DataFrame) -> pd.DataFrame:
        abstract = frame.abstract.fillna("")
        length = abstract.str.len().clip(lower=1)
        words = [_WORD.findall(text.lower()) for text in abstract]
        return pd.DataFrame(
            {
                "title": frame.title.fillna(""),
                "abstract": abstract,
                "title_length": frame.title.fillna("").str.len(),
                "abstract_length": abstract.str.len(),
                "non_letter_share": abstract.str.count(r"[^A-Za-z\s]") / length,
                "latex_share": abstract.map(lambda t: sum(map(len, _LATEX.findall(t)))) / length,
                "oov_share": [
                    sum(w not in vocabulary for w in ws) / len(ws) if ws else np.nan for ws in words
                ],
                "predicted": frame.label.astype(object),
                "confidence": frame.probability.astype(float),
            },
            index=frame.index,
        )

    described = columns(reference)
    described.loc[vocabulary_rows, "oov_share"] = np.nan
    return described, columns(current)


def check_drift(
    context: dict[str, Any],
    reference: pd.DataFrame,
    current: pd.DataFrame,
    params: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Evidently's data drift report (with its tests) of the texts, their descriptors and the
    predictions, current against reference — its HTML page and its JSON — and what it found:
    the drifted columns, and the words behind a text drift. Nothing to compare: no report."""
    if context["status"] != "ok":
        return {}, {"detected": False, "share": 0.0, "columns": {}, "text_drift": False}
    ref, cur = describe_texts(reference, current)
    snapshot, result = run_drift_report(ref, cur, params["drift"])
    logger.info(
        "Drift: %d of %d columns drifted (%s)",
        sum(c["drifted"] for c in result["columns"].values()),
        len(result["columns"]),
        ", ".join(n for n, c in result["columns"].items() if c["drifted"]) or "none",
    )
    return {"html": snapshot.get_html_str(as_iframe=False), "json": snapshot.dict()}, result


# --- live quality -----------------------------------------------------------------------------


def measure_live_quality(
    context: dict[str, Any], current: pd.DataFrame, params: dict[str, Any]
) -> dict[str, Any]:
    """The champion's stored predictions of the current papers against arXiv's primary
    categories: accuracy, macro-F1 (over categories with ≥ `quality.min_class_support` papers),
    top-3, ECE, per class, and the change since the champion's own evaluation."""
    model = context["model"]
    champion_f1 = model["macro_f1"] if model else None
    none = {"papers": 0, "accuracy": None, "macro_f1": None, "top3": None, "ece": None}
    if context["status"] != "ok" or model is None:
        return none | {"per_class": {}, "champion_macro_f1": champion_f1, "macro_f1_change": None}
    labeled = current[current.model_version == model["version"]]
    if labeled.empty:
        return none | {"per_class": {}, "champion_macro_f1": champion_f1, "macro_f1_change": None}
    truth = labeled.category.to_numpy(dtype=object)
    predicted = labeled.label.to_numpy(dtype=object)
    correct = predicted == truth
    labels, support = np.unique(truth, return_counts=True)
    scored = labels[support >= params["quality"]["min_class_support"]]
    macro_f1 = (
        float(f1_score(truth, predicted, labels=scored, average="macro", zero_division=0))
        if len(scored)
        else None
    )
    reported = np.union1d(labels, np.unique(predicted))
    precision, recall, f1, n = precision_recall_fscore_support(
        truth, predicted, labels=reported, zero_division=0
    )
    top3 = (labeled[["label", "label_2", "label_3"]].to_numpy(dtype=object) == truth[:, None]).any(
        axis=1
    )
    return {
        "papers": len(labeled),
        "unlabeled": len(current) - len(labeled),
        "accuracy": float(correct.mean()),
        "macro_f1": macro_f1,
        "macro_f1_classes": len(scored),
        "top3": float(top3.mean()),
        "ece": expected_calibration_error(labeled.probability.to_numpy()[:, None], correct),
        "per_class": {
            str(c): {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for c, p, r, f, s in zip(reported, precision, recall, f1, n, strict=True)
        },
        "champion_macro_f1": champion_f1,
        "macro_f1_change": None
        if macro_f1 is None or champion_f1 is None
        else macro_f1 - champion_f1,
    }


# --- data quality and feed --------------------------------------------------------------------


def check_data_quality(context: dict[str, Any], current: pd.DataFrame) -> dict[str, Any]:
    """Shares of empty and duplicate abstracts and of papers missing a field in the current
    window, and the quarantine rate of the ingestion runs since it began."""
    ingested = context.get("ingested", {"fetched": 0, "quarantined": 0})
    quarantine = ingested["quarantined"] / ingested["fetched"] if ingested["fetched"] else 0.0
    if current.empty:
        return {
            "papers": 0,
            "empty_abstract": 0.0,
            "duplicate_abstract": 0.0,
            "missing_field": 0.0,
            "quarantine_rate": quarantine,
        }
    abstract = current.abstract.fillna("").str.strip()
    fields = current[["title", "abstract", "category", "published"]]
    blank = fields.isna() | fields.astype(str).apply(lambda c: c.str.strip() == "")
    return {
        "papers": len(current),
        "empty_abstract": float((abstract == "").mean()),
        "duplicate_abstract": float(abstract[abstract != ""].duplicated().sum() / len(current)),
        "missing_field": float(blank.any(axis=1).mean()),
        "quarantine_rate": quarantine,
    }


def check_feed(
    context: dict[str, Any], feed: pd.DataFrame, params: dict[str, Any]
) -> dict[str, Any]:
    """Papers per category per announcement day of the current window against the category's
    median over the `feed.trailing_days` announcement days before; a category under
    `feed.min_ratio` of its median (at 0 included), or no new paper for `feed.stale_days`
    announcement days up to the window's end (or now), is an alarm. Weekends and
    `feed.holidays` have no announcement: never an alarm."""
    if "current" not in context:
        return {"alarms": [], "days": {}}
    settings = params["feed"]
    holidays = settings["holidays"]
    start = calendar.announcement_day(_timestamp(context["current"]["from"]), holidays)
    end = calendar.announcement_day(_timestamp(context["current"]["to"]), holidays)
    as_of = calendar.announcement_day(_timestamp(context["as_of"]), holidays)
    first = np.busday_offset(start, -settings["trailing_days"], holidays=holidays)
    days = calendar.days_between(first, end, holidays)
    counts = (
        pd.DataFrame(
            {"day": calendar.announcement_days(feed.published, holidays), "c": feed.category}
        )
        .value_counts()
        .unstack("c", fill_value=0)
        .reindex(days, fill_value=0)
        if len(feed)
        else pd.DataFrame(index=days)
    )
    alarms = []
    window = [d for d in days if d >= start]
    for day in window:
        trailing = counts.loc[[d for d in days if d < day][-settings["trailing_days"] :]]
        median = trailing.median() if len(trailing) else pd.Series(dtype=float)
        for category, typical in median.items():
            seen = int(counts.at[day, category])
            if typical >= settings["min_median"] and seen < settings["min_ratio"] * typical:
                alarms.append(
                    {
                        "kind": "category",
                        "day": str(day),
                        "category": category,
                        "papers": seen,
                        "trailing_median": float(typical),
                        "message": f"{category}: {seen} papers on {day} (trailing median "
                        f"{typical:g})",
                    }
                )
    with_papers = [d for d in days if counts.loc[d].sum() > 0] if len(counts.columns) else []
    last = with_papers[-1] if with_papers else first
    missed = int(np.busday_count(last + np.timedelta64(1, "D"), as_of, holidays=holidays))
    if missed >= settings["stale_days"]:
        alarms.append(
            {
                "kind": "stale",
                "day": str(as_of),
                "papers": 0,
                "message": f"no new paper for {missed} announcement days (last: {last})",
            }
        )
    per_day = counts.loc[window].sum(axis=1) if len(counts.columns) else pd.Series(0, index=window)
    days_seen = {str(np.datetime64(d, "D")): int(n) for d, n in per_day.items()}
    return {"alarms": alarms, "days": days_seen}


# --- the verdict ------------------------------------------------------------------------------


def _check(name: str, value: float | None, threshold: float, passed: bool) -> dict[str, Any]:
    return {"name": name, "passed": bool(passed), "value": value, "threshold": threshold}


def decide(
    context: dict[str, Any],
    drift: dict[str, Any],
    quality: dict[str, Any],
    data: dict[str, Any],
    feed: dict[str, Any],
    history: MonitoringHistory,
    params: dict[str, Any],
) -> dict[str, Any]:
    """The run's summary (what the API serves): every check pass/fail with its threshold, and
    whether to retrain — live macro-F1 `quality.max_macro_f1_drop` under the champion's
    evaluation, or text drift in `retrain.text_drift_runs` consecutive runs."""
    q, d = params["quality"], params["data"]
    checks = [
        _check(
            "dataset drift share",
            drift["share"],
            params["drift"]["max_drift_share"],
            not drift["detected"],
        ),
        *(
            _check(f"drift: {name}", column["score"], column["threshold"], not column["drifted"])
            for name, column in drift["columns"].items()
        ),
    ]
    judged = quality["papers"] >= q["min_papers"]
    if judged and quality["macro_f1_change"] is not None:
        drop = -quality["macro_f1_change"]
        checks.append(
            _check(
                "live macro-F1 drop", drop, q["max_macro_f1_drop"], drop < q["max_macro_f1_drop"]
            )
        )
    for name, limit in (
        ("empty_abstract", d["max_empty_abstract_share"]),
        ("duplicate_abstract", d["max_duplicate_abstract_share"]),
        ("missing_field", d["max_missing_field_share"]),
        ("quarantine_rate", d["max_quarantine_rate"]),
    ):
        checks.append(_check(name.replace("_", " "), data[name], limit, data[name] <= limit))
    checks.append(_check("feed alarms", len(feed["alarms"]), 0, not feed["alarms"]))
    reasons = []
    if (
        judged
        and quality["macro_f1_change"] is not None
        and -quality["macro_f1_change"] >= q["max_macro_f1_drop"]
    ):
        reasons.append(
            f"live macro-F1 {quality['macro_f1']:.3f} is {-quality['macro_f1_change']:.3f} under "
            f"the champion's evaluation {quality['champion_macro_f1']:.3f}"
        )
    runs = params["retrain"]["text_drift_runs"]
    earlier = history.recent(runs - 1)
    if (
        drift["text_drift"]
        and len(earlier) == runs - 1
        and all(run["text_drift"] for run in earlier)
    ):
        reasons.append(f"text drift in {runs} consecutive runs")
    if context["status"] != "ok":
        reasons = []
    summary = {
        "run_id": context["run_id"],
        "run_at": context["run_at"],
        "status": context["status"],
        "model": context["model"],
        "window": {
            "from": context.get("current", {}).get("from"),
            "to": context.get("current", {}).get("to"),
            "papers": context.get("current", {}).get("papers", 0),
        },
        "reference": context.get("reference"),
        "live_quality": quality,
        "drift": drift,
        "data_quality": data,
        "feed": feed,
        "checks": checks,
        "retrain_recommended": bool(reasons),
        "reason": "; ".join(reasons)
        or (context["status"] if context["status"] != "ok" else "no retraining trigger"),
    }
    failed = [c["name"] for c in checks if not c["passed"]]
    logger.info(
        "Monitoring %s: %d checks, failed: %s; retrain: %s",
        context["run_id"],
        len(checks),
        ", ".join(failed) or "none",
        summary["reason"],
    )
    return summary


def publish(
    summary: dict[str, Any], report: dict[str, Any]
) -> tuple[
    dict[str, str],
    dict[str, Any],
    dict[str, Any],
    list[dict[str, Any]],
    list[dict[str, Any]],
    dict[str, Any],
]:
    """What the run saves: the Evidently HTML and JSON (one file each per run), the MLflow
    metrics and HTML, the summary document, the monitoring_runs row, the retrain flag. A run
    that had nothing to compare saves only the flag (false, with the reason)."""
    flag = {"retrain": summary["retrain_recommended"], "reason": summary["reason"]}
    if not report:
        return {}, {}, {}, [], [], flag
    run_id, quality, drift = summary["run_id"], summary["live_quality"], summary["drift"]
    metrics = {
        "papers": summary["window"]["papers"],
        "drift_share": drift["share"],
        "feed_alarms": len(summary["feed"]["alarms"]),
        "checks_failed": sum(not c["passed"] for c in summary["checks"]),
        "retrain_recommended": float(summary["retrain_recommended"]),
        **{
            f"live_{k}": quality[k]
            for k in ("accuracy", "macro_f1", "top3", "ece")
            if quality[k] is not None
        },
    }
    model_version = (summary["model"] or {}).get("version")
    tracked = {
        "run_name": run_id,
        "metrics": metrics,
        "html": report["html"],
        "tags": {"model_version": str(model_version)},
    }
    document = {"report_id": f"monitoring-{run_id}", "kind": "monitoring", **summary}
    row = {
        "run_id": run_id,
        "run_at": _timestamp(summary["run_at"]).to_pydatetime(),
        "model_version": model_version,
        "current_from": _timestamp(summary["window"]["from"]).to_pydatetime(),
        "current_to": _timestamp(summary["window"]["to"]).to_pydatetime(),
        "current_papers": summary["window"]["papers"],
        "reference_from": _timestamp(summary["reference"]["from"]).to_pydatetime(),
        "reference_to": _timestamp(summary["reference"]["to"]).to_pydatetime(),
        "reference_papers": summary["reference"]["papers"],
        "accuracy": quality["accuracy"],
        "macro_f1": quality["macro_f1"],
        "champion_macro_f1": quality["champion_macro_f1"],
        "drift_detected": drift["detected"],
        "drift_share": drift["share"],
        "text_drift": drift["text_drift"],
        "feed_alarms": metrics["feed_alarms"],
        "checks_failed": metrics["checks_failed"],
        "retrain_recommended": summary["retrain_recommended"],
        "reason": summary["reason"],
    }
    return (
        {run_id: report["html"]},
        {run_id: report["json"]},
        tracked,
        [document],
        [row],
        flag,
    )
