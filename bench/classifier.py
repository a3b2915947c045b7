"""Classifier benchmarks: training candidates on the full daily snapshot, the champion gate,
and prediction speed (batch entry point, batch pipeline, MLflow pyfunc, single papers).

Every candidate is a real `kedro run --pipeline training` in a scratch project with its own
SQLite store and MLflow registry, so losers are logged runs and registered versions that never
took the champion alias. Writes its section of docs/benchmarks.md and a per-class F1 plot.
Run with `make bench`; needs ../shared/data (or $ARXIV_SHARED_DATA).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import DOCS, machine, write_section  # noqa: E402
from tests.support.arxiv_server import shared_data_dir  # noqa: E402

KEDRO = Path(sys.executable).parent / "kedro"
# (name, overrides of conf/base/parameters_training.yml `training.model`); the first is the
# configured default, and the order is the order of the runs.
CANDIDATES = [
    ("LinearSVC, balanced, calibrated (default)", {}),
    ("LinearSVC, balanced, no calibration", {"calibration_fraction": 0.0}),
]


def kedro(project: Path, env: dict[str, str], *args: str) -> dict:
    """Run `kedro run` in the project; wall time and the peak RSS of its process tree."""
    process = psutil.Popen(
        [str(KEDRO), "run", *args],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    started, peak = time.monotonic(), 0.0
    while process.poll() is None:
        try:
            tree = [process, *process.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()) / 2**20)
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.2)
    if process.returncode:
        sys.exit(f"kedro run {' '.join(args)} failed:\n{process.stderr.read()[-3000:]}")
    return {"seconds": time.monotonic() - started, "peak_rss_mib": peak}


def speed(tracking_uri: str, store_url: str) -> dict:
    """Prediction speed of the champion, loaded once, in this process."""
    import mlflow

    from arxiv_kedro.classification import registry
    from arxiv_kedro.stores.relational.engine import Database
    from arxiv_kedro.stores.relational.ml import MlStore

    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    mlflow.set_tracking_uri(tracking_uri)
    papers = MlStore(Database.open(store_url)).labeled_papers()[["title", "abstract"]]
    started = time.perf_counter()
    classifier = registry.load()
    load_seconds = time.perf_counter() - started
    classifier.predict(papers.iloc[:100])  # warm up
    started = time.perf_counter()
    for i in range(0, len(papers), 5000):
        classifier.predict(papers.iloc[i : i + 5000])
    batch_rate = len(papers) / (time.perf_counter() - started)
    single = []
    for i in range(300):
        started = time.perf_counter()
        classifier.predict(papers.iloc[i : i + 1])
        single.append((time.perf_counter() - started) * 1000)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{registry.MODEL_NAME}@{registry.CHAMPION}")
    sample = papers.iloc[:2000]
    pyfunc.predict(sample.iloc[:10])
    started = time.perf_counter()
    pyfunc.predict(sample)
    pyfunc_rate = len(sample) / (time.perf_counter() - started)
    single.sort()
    return {
        "papers": len(papers),
        "load_seconds": load_seconds,
        "batch_per_second": batch_rate,
        "single_p50_ms": statistics.median(single),
        "single_p99_ms": single[int(len(single) * 0.99) - 1],
        "pyfunc_per_second": pyfunc_rate,
    }


def f1_plot(per_class: dict[str, dict], path: Path) -> None:
    from matplotlib.figure import Figure

    rows = sorted(per_class.items(), key=lambda item: item[1]["f1"])
    figure = Figure(figsize=(7, 0.32 * len(rows) + 1.2))
    axes = figure.add_subplot()
    axes.barh([k for k, _ in rows], [v["f1"] for _, v in rows], color="#4c72b0")
    for i, (_, v) in enumerate(rows):
        axes.text(
            v["f1"] + 0.01, i, f"{v['f1']:.2f}  (n={v['support']:,})", va="center", fontsize=8
        )
    axes.set_xlim(0, 1.15)
    axes.set_xlabel("F1 on the held-out newest papers")
    axes.set_title("Default classifier: F1 per category")
    figure.tight_layout()
    figure.savefig(path)


def main() -> None:
    data = shared_data_dir()
    if data is None:
        sys.exit("the recorded arXiv data is absent: set ARXIV_SHARED_DATA")
    daily = data / "snapshot" / "arxiv-daily-2025-03_2026-04.jsonl.gz"
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        shutil.copy(ROOT / "pyproject.toml", project)
        shutil.copytree(ROOT / "conf" / "base", project / "conf" / "base")
        (project / "conf" / "local").mkdir()
        (project / "src").mkdir()
        tracking_uri = f"sqlite:///{project}/mlflow.db"
        store_url = f"sqlite:///{project}/data/03_primary/arxiv.db"
        env = {
            **os.environ,
            "KEDRO_DISABLE_TELEMETRY": "true",
            "MLFLOW_TRACKING_URI": tracking_uri,
            "DATABASE_URL": store_url,
            "ARXIV_SNAPSHOT": str(daily),
        }
        print("ingesting the daily snapshot …", flush=True)
        kedro(project, env, "--pipelines", "ingestion")
        base = yaml.safe_load((ROOT / "conf/base/parameters_training.yml").read_text())
        results = []
        for name, overrides in CANDIDATES:
            params = {"training": {**base["training"]}}
            params["training"]["model"] = {**base["training"]["model"], **overrides}
            (project / "conf/local/parameters_training.yml").write_text(yaml.safe_dump(params))
            print(f"training: {name} …", flush=True)
            run = kedro(project, env, "--pipelines", "training")
            reports = project / "data" / "08_reporting"
            report = json.loads((reports / "evaluation_report.json").read_text())
            decision = json.loads((reports / "champion_decision.json").read_text())
            results.append((name, run, report, decision))
            print(f"  {run['seconds']:.0f} s, macro-F1 {report['metrics']['macro_f1']:.3f}, "
                  f"promoted: {decision['promote']}", flush=True)  # fmt: skip
            if not overrides:
                f1_plot(report["per_class"], DOCS / "benchmarks-classifier-f1.svg")
        (project / "conf/local/parameters_training.yml").unlink()
        print("batch inference pipeline …", flush=True)
        inference = kedro(project, env, "--pipelines", "inference")
        labeled = json.loads((project / "data/08_reporting/inference_report.json").read_text())
        rates = speed(tracking_uri, store_url)
        split = json.loads((project / "data/08_reporting/training_split.json").read_text())

    m = results[0][2]["metrics"]
    lines = [
        f"Classifier measured {machine()} by bench/classifier.py.",
        "",
        "## Classifier candidates (`kedro run --pipeline training`, daily snapshot, 72,000 papers)",
        "",
        "Each row is one training run in the same scratch MLflow registry, in this order; "
        "the champion alias moves only when a run beats the champion's macro-F1 on the same "
        "evaluation papers (the newest quarter, by publication day; the model is then refitted "
        "on every paper) and its ECE is at most `gate.max_ece` (0.1). Run time covers the "
        "whole `kedro run` (two fits, evaluation, MLflow "
        "logging and registration).",
        "",
        "| candidate | accuracy | macro-F1 | top-3 | ECE | run (s) | peak RSS (MiB) "
        "| took @champion |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, run, report, decision in results:
        r = report["metrics"]
        lines.append(
            f"| {name} | {r['accuracy']:.3f} | {r['macro_f1']:.3f} | {r['top3_accuracy']:.3f} | "
            f"{r['ece']:.3f} | {run['seconds']:.0f} | {run['peak_rss_mib']:,.0f} | "
            f"{'yes' if decision['promote'] else 'no'} |"
        )
    lines += [
        "",
        f"Training: {split['train_papers']:,} papers published before "
        f"{split['evaluation_from']}, {len(split['labels'])} categories with ≥ 250 of them "
        f"({split['train_outside_labels']:,} papers of rarer categories left out). Evaluation: "
        f"{m['papers']:,} papers from {split['evaluation_from']} on; macro-F1 over the "
        f"{m['macro_f1_classes']} categories with ≥ 20 of them. The deployed model is refitted "
        "on all 72,000 papers, with the categories that have ≥ 250 papers in the whole file.",
        "",
        "![F1 per category](benchmarks-classifier-f1.svg)",
        "",
        "## Prediction speed (the champion)",
        "",
        "| path | result |",
        "|---|---|",
        f"| `registry.load()` (registry → model in memory) | {rates['load_seconds']:.1f} s |",
        f"| entry point, batches of 5,000 ({rates['papers']:,} papers) | "
        f"{rates['batch_per_second']:,.0f} papers/s |",
        f"| entry point, one paper at a time | p50 {rates['single_p50_ms']:.1f} ms, "
        f"p99 {rates['single_p99_ms']:.1f} ms |",
        f"| `mlflow.pyfunc` model (a Kedro pipeline per call), 2,000 papers | "
        f"{rates['pyfunc_per_second']:,.0f} papers/s |",
        f"| `kedro run --pipeline inference` ({labeled['predicted']:,} papers into the store) | "
        f"{labeled['predicted'] / labeled['seconds']:,.0f} papers/s in the node, "
        f"{inference['seconds']:.0f} s for the whole run |",
        "",
    ]
    print(f"wrote {write_section('classifier', lines)}")


if __name__ == "__main__":
    main()
