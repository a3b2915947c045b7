"""Classifier recipes side by side on the rolling origin: what won, what lost (issue 13).

Each variant is a candidate of conf/base/parameters_training.yml with a few parameters changed,
judged by the training pipeline's own `rolling_origin_evaluation` in this process (no MLflow),
on the daily snapshot backfilled into a scratch SQLite store (cached in $BENCH_SWEEP_DIR,
default /tmp/arxiv-bench-sweep). Writes its section of docs/benchmarks.md and a plot of the
categories' papers per month (the drift the candidates must live with).
Run with `make bench BENCH=classifier_sweep`; needs ../shared/data (or $ARXIV_SHARED_DATA).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from arxiv_kedro.pipelines.training.nodes import (  # noqa: E402
    count_ngrams,
    rolling_origin_evaluation,
)
from arxiv_kedro.stores.relational.engine import Database  # noqa: E402
from arxiv_kedro.stores.relational.ml import MlStore  # noqa: E402
from bench.report import DOCS, machine, write_section  # noqa: E402
from tests.support.arxiv_server import shared_data_dir  # noqa: E402
from tests.support.pipelines import backfill  # noqa: E402

SCRATCH = Path(os.environ.get("BENCH_SWEEP_DIR", "/tmp/arxiv-bench-sweep"))
# (what changes, candidate, parameters changed): the default first
VARIANTS = [
    ("`linear` (default: joined fields, min_df 3, C 10, fading categories damped)", "linear", {}),
    # the baseline as configured (C 1, ~25 min) is bench/classifier.py's: C 10 is the one whose
    # ECE is near what the issue measured for "balanced LR" on a later period
    (
        "`baseline` (multinomial LR, min_df 2), C 10, tol 0.001",
        "baseline",
        {"C": 10.0, "tol": 0.001},
    ),
    (
        "`linear`, n-grams per field (min_df 3, max_df 0.5)",
        "linear",
        {"fields": "separate", "max_df": 0.5},
    ),
    ("`linear`, min_df 2", "linear", {"min_df": 2}),
    ("`linear`, min_df 5", "linear", {"min_df": 5}),
    ("`linear`, max_df 0.5", "linear", {"max_df": 0.5}),
    ("`linear`, C 5", "linear", {"C": 5.0}),
    ("`linear`, C 20", "linear", {"C": 20.0}),
    ("`linear`, nothing damped", "linear", {"recent_days": None}),
    ("`linear`, fading over 30 days", "linear", {"recent_days": 30}),
    ("`linear`, half-life 120 days", "linear", {"half_life_days": 120}),
    ("`linear` + complement naive Bayes, weight 0.3", "linear", {"nb_weight": 0.3}),
]


def labeled_papers() -> pd.DataFrame:
    cached = SCRATCH / "labeled.parquet"
    if not cached.exists():
        data = shared_data_dir()
        if data is None:
            sys.exit("the recorded arXiv data is absent: set ARXIV_SHARED_DATA")
        SCRATCH.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{SCRATCH}/arxiv.db"
        print("ingesting the daily snapshot …", flush=True)
        snapshot = data / "snapshot" / "arxiv-daily-2025-03_2026-04.jsonl.gz"
        backfill(snapshot, SCRATCH, relational_url=url, documents_url=f"{url}-documents")
        MlStore(Database.open(url)).labeled_papers().to_parquet(cached)
    return pd.read_parquet(cached)


def categories_plot(papers: pd.DataFrame, min_examples: int, path: Path) -> None:
    """Papers per month of each category with ≥ `min_examples` papers (the label set)."""
    import numpy as np
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    month = papers.published.dt.tz_convert("UTC").dt.tz_localize(None).dt.to_period("M")
    table = pd.crosstab(papers.label, month)
    table = table[table.sum(axis=1) >= min_examples]
    figure = Figure(figsize=(9, 0.35 * len(table) + 1.8))
    axes = figure.add_subplot()
    image = axes.imshow(np.ma.masked_equal(table.to_numpy(), 0), cmap="viridis", norm=LogNorm())
    for (i, j), count in np.ndenumerate(table.to_numpy()):
        color = "black" if count > 300 else "white"  # readable on the bright cells
        axes.text(j, i, f"{count:,}", ha="center", va="center", fontsize=6, color=color)
    axes.set_xticks(range(table.shape[1]), [str(m) for m in table.columns], rotation=45)
    axes.set_yticks(range(len(table)), table.index)
    axes.set_title("Papers per month and category in the daily snapshot: some stop, some start")
    figure.colorbar(image, ax=axes, fraction=0.03, label="papers (log scale; blank: none)")
    figure.tight_layout()
    figure.savefig(path)


def main() -> None:
    papers = labeled_papers()
    params = yaml.safe_load((ROOT / "conf/base/parameters_training.yml").read_text())["training"]
    categories_plot(papers, params["min_examples"], DOCS / "benchmarks-categories-by-month.svg")
    rows, counted = [], {}
    for name, base, changed in VARIANTS:
        print(f"{name} …", flush=True)
        variant = params | {
            "candidate": "variant",
            "candidates": {"variant": params["candidates"][base] | changed},
        }
        fields = variant["candidates"]["variant"]["fields"]
        if fields not in counted:  # the n-grams depend on the fields only
            counted[fields] = count_ngrams(papers, variant)
        counts = counted[fields]
        load, started, cpu = os.getloadavg()[0], time.perf_counter(), time.process_time()
        _, report = rolling_origin_evaluation(papers, counts, variant)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        rows.append((name, report["metrics"], seconds, cpu, load))
        m = report["metrics"]
        print(f"  macro-F1 {m['macro_f1']:.3f}, top-3 {m['top3_accuracy']:.3f}, "
              f"ECE {m['ece']:.3f} in {seconds:.0f} s", flush=True)  # fmt: skip
    origins = ", ".join(o["origin"] for o in report["origins"])
    lines = [
        f"Classifier recipes measured {machine()} by bench/classifier_sweep.py: the training "
        f"pipeline's rolling origin (origins {origins}, 3 months each) in one process, on the "
        "daily snapshot. Time: the 3 fits and their evaluations (the papers' n-grams are hashed "
        "once per `fields` value, before), wall and CPU of this process; the 1-minute load "
        "average at the start (2 = both cores busy before the run).",
        "",
        "| recipe | accuracy | macro-F1 | top-3 | ECE | wall (s) | CPU (s) | load |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, m, seconds, cpu, load in rows:
        lines.append(
            f"| {name} | {m['accuracy']:.3f} | {m['macro_f1']:.3f} | {m['top3_accuracy']:.3f} | "
            f"{m['ece']:.3f} | {seconds:.0f} | {cpu:.0f} | {load:.1f} |"
        )
    print(f"wrote {write_section('classifier-sweep', lines)}")


if __name__ == "__main__":
    main()
