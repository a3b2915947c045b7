"""Monitoring benchmark: the monitoring pipeline on 10,000 current papers against a 50,000-paper
reference, its runtime per node and its peak memory (PSS of the process, sampled).

The store is the real daily snapshot (72,000 papers) backfilled into a scratch SQLite store
(cached in $BENCH_MONITORING_DIR, default /tmp/arxiv-bench-monitoring). Every paper gets a stored
prediction of model version 1: arXiv's own category with a confidence drawn uniformly in
[0.4, 1) (the cost of the run does not depend on what the model answered). The reference is the
oldest 50,000 papers, the current window the newest 10,000 (explicit windows); a second run
takes every paper older than the current window as reference (62,000), which the pipeline
samples to `reference_max_papers` (spread evenly in id order). MLflow logs into a SQLite tracking
store in the scratch directory. Writes its section of docs/benchmarks.md.
Run with `make bench BENCH=monitoring`; needs ../shared/data (or $ARXIV_SHARED_DATA).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingestion import backfill  # noqa: E402
from bench.report import machine, sample_memory, write_section  # noqa: E402
from tests.support.arxiv_server import shared_data_dir  # noqa: E402

SCRATCH = Path(os.environ.get("BENCH_MONITORING_DIR", "/tmp/arxiv-bench-monitoring"))
REFERENCE, CURRENT = 50_000, 10_000
MONITOR = """
import json, sys, time
import numpy as np, pandas as pd, yaml
from kedro.framework.hooks import hook_impl
from kedro.io import MemoryDataset
from kedro_datasets.partitions import PartitionedDataset
from arxiv_kedro.classification.registry import RegisteredVersion
from arxiv_kedro.pipelines.monitoring import create_pipeline
from tests.support.pipelines import PROJECT_ROOT, project_catalog, run_pipeline

url, scratch, current_from, current_to, reference_from, reference_to = sys.argv[1:7]
base = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_monitoring.yml").read_text())
params = {**base["monitoring"], "current_from": current_from, "current_to": current_to,
          "reference_from": reference_from, "reference_to": reference_to}


class Timing:
    def __init__(self):
        self.seconds, self.started = {}, {}

    @hook_impl
    def before_node_run(self, node):
        self.started[node.name] = time.perf_counter()

    @hook_impl
    def after_node_run(self, node):
        self.seconds[node.name] = time.perf_counter() - self.started[node.name]


catalog = project_catalog(relational_url=url, documents_url=f"sqlite:///{scratch}/documents.db",
                          documents_database="bench", redis_url="", params={"monitoring": params})
tags = {"evaluation.macro_f1": "0.8", "trained_through": reference_to}
catalog["champion"] = MemoryDataset(RegisteredVersion("arxiv-classifier", "1", tags))
for suffix, dataset in ((".html", "text.TextDataset"), (".json", "json.JSONDataset")):
    catalog[f"monitoring_report_{suffix[1:]}"] = PartitionedDataset(
        path=f"{scratch}/reports", dataset=dataset, filename_suffix=suffix)
catalog["retrain_recommended"] = MemoryDataset()
timing = Timing()
started, cpu = time.perf_counter(), time.process_time()
run_pipeline(create_pipeline(), catalog, hooks=[timing])
seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
summary = catalog.load("retrain_recommended")
print(json.dumps({"seconds": seconds, "cpu": cpu, "nodes": timing.seconds, "flag": summary}))
"""


def store(snapshot: Path) -> str:
    """The scratch store: the snapshot backfilled once, a prediction for every paper."""
    from arxiv_kedro.stores.relational.engine import Database
    from arxiv_kedro.stores.relational.ml import PREDICTION_FRAME, MlStore

    SCRATCH.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{SCRATCH / 'arxiv.db'}"
    if (SCRATCH / "ready").exists():
        return url
    (SCRATCH / "arxiv.db").unlink(missing_ok=True)
    print("backfilling the snapshot…", file=sys.stderr)
    backfill(snapshot, url)
    import numpy as np
    import pandas as pd
    from sqlalchemy import select

    from arxiv_kedro.stores.schema import papers

    db = Database.open(url)
    with db.engine.connect() as conn:
        rows = conn.execute(select(papers.c.id, papers.c.content_hash, papers.c.primary_category))
        frame = pd.DataFrame(rows.all(), columns=["paper_id", "content_hash", "label"])
    rng = np.random.default_rng(0)
    frame["model_name"], frame["model_version"] = "arxiv-classifier", "1"
    frame["probability"] = rng.uniform(0.4, 1.0, len(frame))
    frame["label_2"], frame["label_3"] = "other", "other"
    frame["probability_2"] = frame["probability_3"] = (1 - frame.probability) / 2
    MlStore(db).save_predictions(frame[list(PREDICTION_FRAME)])
    db.close()
    (SCRATCH / "ready").touch()
    return url


def windows(url: str) -> dict[str, str]:
    """The day boundaries closest to the oldest REFERENCE and the newest CURRENT papers."""
    import pandas as pd
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        query = text("SELECT date(published), count(*) FROM papers GROUP BY 1")
        days = pd.Series(dict(conn.execute(query).all())).sort_index()
    engine.dispose()
    cumulative = days.cumsum()
    reference_to = cumulative[cumulative >= REFERENCE].index[0]
    newest = days[::-1].cumsum()
    current_from = newest[newest >= CURRENT].index[0]
    last = (pd.Timestamp(days.index[-1]) + pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    return {"first": days.index[0], "reference_to": reference_to, "current_from": current_from,
            "current_to": last}  # fmt: skip


def monitor(url: str, current: tuple[str, str], reference: tuple[str, str]) -> dict:
    """One monitoring run in a fresh process; its PSS sampled every 0.2 s."""
    (SCRATCH / "reports").mkdir(exist_ok=True)
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{SCRATCH / 'mlflow.db'}"}
    process = psutil.Popen(
        [sys.executable, "-c", MONITOR, url, str(SCRATCH), *current, *reference],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
        env=env,
    )
    peak = max((mib for _, mib in sample_memory(process)), default=0.0)
    if process.returncode != 0:
        raise SystemExit(f"the monitoring run failed ({process.returncode})")
    return json.loads(process.stdout.read().strip().splitlines()[-1]) | {"peak_pss_mib": peak}


def last_run(url: str) -> tuple[int, int]:
    """The current and reference papers of the newest recorded monitoring run."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT current_papers, reference_papers FROM monitoring_runs "
                 "ORDER BY run_at DESC LIMIT 1")
        ).one()  # fmt: skip
    engine.dispose()
    return found


def main() -> None:
    data = shared_data_dir()
    if data is None:
        raise SystemExit("needs ../shared/data (or $ARXIV_SHARED_DATA)")
    url = store(data / "snapshot" / "arxiv-daily-2025-03_2026-04.jsonl.gz")
    w = windows(url)
    current = (w["current_from"], w["current_to"])
    runs = {
        "reference: the oldest papers": (w["first"], w["reference_to"]),
        "reference: everything older, sampled": (w["first"], w["current_from"]),
    }
    rows, loads = [], [os.getloadavg()[0]]
    for label, reference in runs.items():
        print(f"monitoring ({label})…", file=sys.stderr)
        result = monitor(url, current, reference)
        loads.append(os.getloadavg()[0])
        current_papers, reference_papers = last_run(url)
        nodes = ", ".join(f"{n} {s:.1f}" for n, s in result["nodes"].items() if s >= 0.5)
        rows.append(
            f"| {label} ({reference[0]} … {reference[1]}) | {current_papers:,} | "
            f"{reference_papers:,} | {result['seconds']:.0f} s ({result['cpu']:.0f} s CPU) | "
            f"{result['peak_pss_mib']:,.0f} MiB | {nodes} |"
        )
    lines = [
        "## Monitoring (`bench/monitoring.py`, the daily snapshot, 72,000 papers)",
        "",
        f"Measured {machine()}; load average {min(loads):.1f}–{max(loads):.1f} during the runs "
        "(the machine is shared).",
        "",
        f"Current window: the newest papers ({current[0]} … {current[1]}); every paper carries a "
        "stored prediction (arXiv's category, a uniform confidence: the run's cost does not "
        "depend on the answers). One `run_pipeline` of the monitoring pipeline in a fresh "
        "process, MLflow on a SQLite store; peak memory is the process's PSS sampled every "
        "0.2 s; CPU time is the process's (wall time grows with the machine's load). Target: "
        "under 2 minutes for 10k current against 50k reference papers.",
        "",
        "| run | current papers | reference used | total | peak memory | nodes ≥ 0.5 s (s) |",
        "|---|---:|---:|---:|---:|---|",
        *rows,
        "",
        "Over `reference_max_papers` (50,000) the reference is sampled in SQL: exactly 50,000 "
        "papers spread evenly in id (ingestion) order, so the sample covers the whole window. "
        "Evidently's drift report (`check_drift`: its text drift is a domain classifier on "
        "TF-IDF features of titles and abstracts, which also finds the typical words) takes "
        "nearly all the time; the HTML report is ~4 MB (its scripts inline).",
    ]
    write_section("monitoring", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
