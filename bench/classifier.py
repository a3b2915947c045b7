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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from arxiv_kedro.stores.relational.engine import Database  # noqa: E402
from bench.report import DOCS, machine, sample_memory, write_section  # noqa: E402
from tests.support.arxiv_server import shared_data_dir  # noqa: E402
from tests.support.pipelines import backfill  # noqa: E402

KEDRO = Path(sys.executable).parent / "kedro"
# (name, `training.candidate`), in the order of the runs: the baseline first, so that the
# default candidate meets the gate after it (the table says which run took the alias).
CANDIDATES = [
    ("baseline: TF-IDF 1-2 grams of title + abstract, balanced LR", "baseline"),
    ("linear (default)", "linear"),
]


def kedro(project: Path, env: dict[str, str], *args: str) -> dict:
    """Run `kedro run` in the project; wall time and the peak PSS of its process tree."""
    process = psutil.Popen(
        [str(KEDRO), "run", *args],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    started = time.monotonic()
    peak = max((mib for _, mib in sample_memory(process)), default=0.0)
    if process.returncode:
        sys.exit(f"kedro run {' '.join(args)} failed:\n{process.stderr.read()[-3000:]}")
    return {"seconds": time.monotonic() - started, "peak_pss_mib": peak}


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


def f1_plot(results: list[tuple[str, dict]], path: Path) -> None:
    """Mean F1 per category over the rolling origins, one bar per candidate."""
    from matplotlib.figure import Figure

    [(_, last), *_] = results[::-1]
    labels = sorted(last["mean_f1"], key=last["mean_f1"].get)
    figure = Figure(figsize=(7.5, 0.42 * len(labels) + 1.5))
    axes = figure.add_subplot()
    height = 0.8 / len(results)
    for i, (name, report) in enumerate(results):
        values = [report["mean_f1"].get(label, 0.0) for label in labels]
        positions = [y + (i - (len(results) - 1) / 2) * height for y in range(len(labels))]
        axes.barh(positions, values, height=height, label=name.split(":")[0])
        for y, value in zip(positions, values, strict=True):
            axes.text(value + 0.01, y, f"{value:.2f}", va="center", fontsize=7)
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlim(0, 1.1)
    axes.set_xlabel(f"F1, mean over the {len(last['origins'])} rolling origins")
    axes.set_title("F1 per category: each origin's model on the next 3 months")
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path)


def model_mib(tracking_uri: str) -> float:
    """Size of the champion's pickled model, as logged in its MLflow artifacts."""
    import pickle

    from arxiv_kedro.classification import registry

    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    return len(pickle.dumps(registry.load().model)) / 2**20


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
        (project / "data" / "03_primary").mkdir(parents=True)
        documents_url = f"sqlite:///{project}/data/03_primary/documents.db"
        backfill(daily, project, relational_url=store_url, documents_url=documents_url)
        Database.close_shared()
        results = []
        for name, candidate in CANDIDATES:
            print(f"training: {name} …", flush=True)
            load = os.getloadavg()[0]
            run = kedro(project, env, "--pipeline", "training", "--params",
                        f"training.candidate={candidate}")  # fmt: skip
            reports = project / "data" / "08_reporting"
            rolling = json.loads((reports / "rolling_origin_report.json").read_text())
            holdout = json.loads((reports / "evaluation_report.json").read_text())
            decision = json.loads((reports / "champion_decision.json").read_text())
            results.append((name, run | {"load": load}, rolling, holdout, decision))
            print(f"  {run['seconds']:.0f} s, rolling macro-F1 {rolling['metrics']['macro_f1']:.3f}"
                  f", promoted: {decision['promote']}", flush=True)  # fmt: skip
        f1_plot([(r[0], r[2]) for r in results], DOCS / "benchmarks-classifier-f1.svg")
        print("batch inference pipeline …", flush=True)
        inference = kedro(project, env, "--pipeline", "inference")
        labeled = json.loads((project / "data/08_reporting/inference_report.json").read_text())
        size = model_mib(tracking_uri)
        rates = speed(tracking_uri, store_url)
        split = json.loads((project / "data/08_reporting/training_split.json").read_text())

    origins = results[-1][2]["origins"]
    lines = [
        f"Classifier measured {machine()} by bench/classifier.py. The machine is shared: the "
        "1-minute load average when each training run started is in its row (2 = both cores "
        "busy before the run).",
        "",
        "## Rolling-origin evaluation (`kedro run --pipeline training`, daily snapshot, 72,000 "
        "papers)",
        "",
        "Each candidate is one `kedro run --pipeline training --params training.candidate=<name>`"
        " in the same scratch MLflow registry, in this order. For each origin month *m* "
        f"({', '.join(o['origin'] for o in origins)}) the candidate is fitted on every paper "
        "published before *m* (labels: the categories with ≥ 250 of them; kept n-grams, weights "
        "and temperature fitted on those papers only) and evaluated on the papers of months "
        "*m … m + 2*; the table gives the means over the origins. Macro-F1 averages the "
        "categories with ≥ 20 evaluation papers; ECE over 15 bins.",
        "",
        "| candidate | accuracy | macro-F1 | top-3 | ECE | run (s) | load at start "
        "| peak PSS (MiB) | took @champion |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, run, rolling, _, decision in results:
        r = rolling["metrics"]
        lines.append(
            f"| {name} | {r['accuracy']:.3f} | {r['macro_f1']:.3f} | {r['top3_accuracy']:.3f} | "
            f"{r['ece']:.3f} | {run['seconds']:.0f} | {run['load']:.1f} | "
            f"{run['peak_pss_mib']:,.0f} | {'yes' if decision['promote'] else 'no'} |"
        )
    lines += [
        "",
        "Per origin:",
        "",
        "| candidate | origin | training papers | evaluation papers | accuracy | macro-F1 "
        "| top-3 | ECE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, _, rolling, _, _ in results:
        for o in rolling["origins"]:
            lines.append(
                f"| {name.split(':')[0]} | {o['origin']} | {o['train_papers']:,} | "
                f"{o['papers']:,} | {o['accuracy']:.3f} | {o['macro_f1']:.3f} | "
                f"{o['top3_accuracy']:.3f} | {o['ece']:.3f} |"
            )
    lines += [
        "",
        "The champion gate compares on the run's holdout (the newest quarter, by publication "
        f"day: {split['evaluation_from']} on, model fitted on the older papers) — the last "
        "run's decision:",
        "",
        f"> {results[-1][4]['reason']}",
        "",
        "| candidate | holdout accuracy | macro-F1 | top-3 | ECE |",
        "|---|---|---|---|---|",
    ]
    for name, _, _, holdout, _ in results:
        h = holdout["metrics"]
        lines.append(
            f"| {name.split(':')[0]} | {h['accuracy']:.3f} | {h['macro_f1']:.3f} | "
            f"{h['top3_accuracy']:.3f} | {h['ece']:.3f} |"
        )
    lines += [
        "",
        "![F1 per category](benchmarks-classifier-f1.svg)",
        "",
        "## Prediction speed and size (the champion)",
        "",
        "| path | result |",
        "|---|---|",
        f"| pickled model (what the MLflow artifact holds) | {size:.0f} MiB |",
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
