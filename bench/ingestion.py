"""Ingestion benchmarks: snapshot backfill into SQLite and PostgreSQL, and Atom parsing speed.

Writes docs/benchmarks.md (and an SVG of memory over time). Run with `make bench`; needs the
recorded data (../shared/data or $ARXIV_SHARED_DATA), PostgreSQL at BENCH_POSTGRES_URL (default
postgresql://postgres@127.0.0.1:5432/test: a scratch database is created and dropped) and Redis
at BENCH_REDIS_URL; it starts its own nx-27017 document server.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import psycopg
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import machine, sample_memory, write_section  # noqa: E402
from tests.support.arxiv_server import ArxivServer, load_corpus, shared_data_dir  # noqa: E402

BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
API_CEILING = 2000 / 3  # papers per second arXiv can deliver: 2000 per page, one page per 3 s
BACKFILL = """
import json, sys, tempfile, time
from kedro.io import MemoryDataset
from arxiv_kedro.datasets import RunLockDataset, SnapshotDataset
from arxiv_kedro.pipelines.ingestion.pipeline import create_backfill_pipeline
from tests.support.pipelines import project_catalog, run_pipeline

snapshot, url, documents_url, redis_url = sys.argv[1:5]
started = time.perf_counter()
catalog = project_catalog(
    relational_url=url, documents_url=documents_url or "sqlite://", documents_database="bench",
    redis_url=redis_url, params={"ingestion": {}},
)
catalog["snapshot"] = SnapshotDataset(snapshot)
if not documents_url:  # no document store: the foundation issue's measurement
    catalog["articles"] = MemoryDataset(copy_mode="assign")
lock = {"redis_url": redis_url, "namespace": "arxiv-bench"} if redis_url else {
    "path": tempfile.mktemp(suffix=".lock")}
catalog["ingestion_lock"] = RunLockDataset("ingestion", **lock)
catalog["ingestion_report"] = MemoryDataset()
run_pipeline(create_backfill_pipeline(), catalog)
report = catalog.load("ingestion_report")
print(json.dumps({**report, "seconds": time.perf_counter() - started}))
"""


def backfill(snapshot: Path, url: str, documents_url: str = "", redis_url: str = "") -> dict:
    """Run one backfill in a fresh process; sample the PSS of its whole process tree."""
    process = psutil.Popen(
        [sys.executable, "-c", BACKFILL, str(snapshot), url, documents_url, redis_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    samples = sample_memory(process)
    report = json.loads(process.stdout.read().strip().splitlines()[-1])
    report["papers_per_second"] = report["fetched"] / report["seconds"]
    report["peak_pss_mib"] = max(rss for _, rss in samples)
    report["pss_samples"] = samples
    return report


@contextmanager
def document_server(directory: Path) -> Iterator[str]:
    """nx-27017 (MongoDB wire protocol on SQLite) on a free port, for the prod path."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    executable = Path(sys.executable).parent / "nx-27017"
    server = subprocess.Popen(
        [
            *(str(executable), "--data-dir", str(directory), "-p", str(port)),
            *("--pid-file", str(directory / "nx.pid"), "--log-file", str(directory / "nx.log")),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            time.sleep(0.1)
        yield f"mongodb://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait()


def scratch_postgres() -> tuple[str, str]:
    name = f"arxiv_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    return name, f"{base}/{name}"


def postgres_version() -> str:
    with psycopg.connect(POSTGRES_ADMIN_URL) as conn:
        version = conn.info.server_version
    return f"{version // 10000}.{version % 10000}"


def drop_postgres(name: str) -> None:
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def repeated_snapshot(source: Path, copies: int, target: Path) -> Path:
    """The snapshot `copies` times over, ids made unique: a bigger file with the same shape."""
    with gzip.open(source, "rt") as lines, gzip.open(target, "wt") as out:
        records = [json.loads(line) for line in lines]
        for copy in range(copies):
            for record in records:
                year_month, number = record["id"].split(".")
                record = {**record, "id": f"{int(year_month) + 1000 * copy:04d}.{number}"}
                out.write(json.dumps(record) + "\n")
    return target


def parse_throughput(daily: Path) -> dict:
    """Atom pages of 2000 entries from the local server: parse + normalize, papers per second."""
    from arxiv_kedro.papers import normalize
    from arxiv_kedro.sources.arxiv_api import parse_feed

    corpus = load_corpus(daily, limit=20_000)
    with ArxivServer(corpus=corpus) as server:
        pages = []
        for start in range(0, 20_000, 2000):
            query = "(cat:cs.CV OR cat:cs.CL OR cat:cs.AI OR cat:cs.LG OR cat:astro-ph.GA)"
            query += " AND submittedDate:[202501010000 TO 202612312359]"
            params = {"search_query": query, "start": start, "max_results": 2000}
            pages.append(requests.get(server.url, params=params, timeout=60).content)
    started = time.perf_counter()
    raw = [entry for body in pages for entry in parse_feed(body)[1]]
    parsed = time.perf_counter()
    normalize(raw, "api")
    normalized = time.perf_counter()
    return {
        "entries": len(raw),
        "parse_per_second": len(raw) / (parsed - started),
        "per_second": len(raw) / (normalized - started),
    }


def rss_svg(series: dict[str, list[tuple[float, float]]], path: Path) -> None:
    """A small line chart of resident memory over time, one line per run."""
    width, height, pad = 640, 300, 45
    t_max = max(t for s in series.values() for t, _ in s) or 1
    m_max = max(m for s in series.values() for _, m in s) * 1.1 or 1
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{pad}" y="16" font-size="13">Memory (PSS, MiB) of the backfill over time '
        "(s)</text>",
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - 10}" y2="{height - pad}" '
        'stroke="black"/>',
        f'<line x1="{pad}" y1="{height - pad}" x2="{pad}" y2="25" stroke="black"/>',
        f'<text x="{pad - 5}" y="30" text-anchor="end">{m_max:.0f}</text>',
        f'<text x="{pad - 5}" y="{height - pad}" text-anchor="end">0</text>',
        f'<text x="{width - 10}" y="{height - pad + 15}" text-anchor="end">{t_max:.0f} s</text>',
    ]
    for i, (label, samples) in enumerate(series.items()):
        points = " ".join(
            f"{pad + t / t_max * (width - pad - 10):.1f},"
            f"{height - pad - m / m_max * (height - pad - 25):.1f}"
            for t, m in samples
        )
        color = colors[i % len(colors)]
        parts.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>')
        parts.append(f'<text x="{width - 200}" y="{45 + 15 * i}" fill="{color}">{label}</text>')
    parts.append("</svg>")
    path.write_text("\n".join(parts))


def main() -> None:
    data = shared_data_dir()
    if data is None:
        sys.exit("the recorded arXiv data is absent: set ARXIV_SHARED_DATA")
    daily = data / "snapshot" / "arxiv-daily-2025-03_2026-04.jsonl.gz"
    rows, series = [], {}
    with tempfile.TemporaryDirectory() as tmp, document_server(Path(tmp)) as mongo_url:
        big = repeated_snapshot(daily, 4, Path(tmp) / "daily-x4.jsonl.gz")
        runs = [
            ("embedded (SQLite, documents in SQLite)", daily, "72k"),
            ("embedded (SQLite, documents in SQLite)", big, "288k (4x)"),
            ("PostgreSQL alone (no document store)", daily, "72k"),
            ("PostgreSQL alone (no document store)", big, "288k (4x)"),
            ("prod (PostgreSQL + MongoDB on nx-27017 + Redis lock)", daily, "72k"),
        ]
        for setup, snapshot, size in runs:
            scratch, documents_url, redis_url = None, "", ""
            if setup.startswith("embedded"):
                url = f"sqlite:///{tmp}/bench-{uuid.uuid4().hex[:6]}.db"
                documents_url = f"sqlite:///{tmp}/documents-{uuid.uuid4().hex[:6]}.db"
            else:
                scratch, url = scratch_postgres()
            if setup.startswith("prod"):
                documents_url, redis_url = mongo_url, BENCH_REDIS_URL
            try:
                print(f"backfill {size}: {setup} …", flush=True)
                report = backfill(snapshot, url, documents_url, redis_url)
            finally:
                if scratch:
                    drop_postgres(scratch)
            rows.append((setup, size, report))
            series[f"{setup.split(' (')[0]}, {size}"] = report["pss_samples"]
            print(f"  {report['papers_per_second']:,.0f} papers/s, "
                  f"peak PSS {report['peak_pss_mib']:.0f} MiB", flush=True)  # fmt: skip
    parsing = parse_throughput(daily)
    print(
        f"Atom parse: {parsing['parse_per_second']:,.0f} papers/s, "
        f"with normalization {parsing['per_second']:,.0f} papers/s",
        flush=True,
    )

    docs = ROOT / "docs"
    docs.mkdir(exist_ok=True)
    rss_svg(series, docs / "benchmarks-backfill-rss.svg")
    lines = [
        f"Ingestion measured {machine()} by bench/ingestion.py, "
        f"PostgreSQL {postgres_version()} on the same machine.",
        "",
        "## Snapshot backfill (`arxiv-daily-2025-03_2026-04.jsonl.gz`, 72,000 papers)",
        "",
        "Fresh database each run, through the `backfill` pipeline on the project's catalog; "
        "papers/s counts every record read, from the catalog's creation (imports excluded) to "
        "the last commit. Peak memory is the proportional set size (PSS) of the whole process "
        "tree (writer + forked reader; the pages they share count once). "
        "The 4x file repeats the snapshot with shifted ids: memory should not grow with the "
        "file.",
        "",
        "| stores | file | papers | papers/s | seconds | peak PSS (MiB) |",
        "|---|---|---|---|---|---|",
    ]
    for backend, size, r in rows:
        lines.append(
            f"| {backend} | {size} | {r['fetched']:,} | {r['papers_per_second']:,.0f} | "
            f"{r['seconds']:.1f} | {r['peak_pss_mib']:.0f} |"
        )
    rate = {(setup.split(" (")[0], size): r["papers_per_second"] for setup, size, r in rows}
    ratio = rate[("PostgreSQL alone", "72k")] / rate[("prod", "72k")]
    peak = {(setup.split(" (")[0], size): r["peak_pss_mib"] for setup, size, r in rows}
    growth = max(
        peak[(s, "288k (4x)")] / peak[(s, "72k")]
        for s, size in peak
        if size == "72k" and (s, "288k (4x)") in peak
    )
    lines += [
        "",
        f"**Memory {'grows' if growth > 1.25 else 'stays flat'} with the file**: the 4x file's "
        f"peak is {growth:.2f}x the 72k file's at most.",
        "",
        f"The prod path runs at 1/{ratio:.1f} of PostgreSQL alone. Its extra cost is the "
        "document store: each paper's raw record and normalized form (≈3.5 KB of BSON) goes to "
        "MongoDB, here nx-27017 — a MongoDB wire-protocol server written in Python on SQLite, "
        "sharing the two cores with PostgreSQL and both ingestion processes. Each batch's "
        "documents are stored before its relational transaction (so papers never commit "
        "without their raw records).",
        "",
        "![Memory over time](benchmarks-backfill-rss.svg)",
        "",
        "## Atom parsing",
        "",
        f"{parsing['entries']:,} entries served as 2000-entry pages by the local arXiv server. "
        f"The API's own ceiling is {API_CEILING:,.0f} papers/s (2000 per page, one page every "
        "3 s).",
        "",
        "| step | papers/s | × the API ceiling |",
        "|---|---|---|",
        f"| parse (Atom → raw entries) | {parsing['parse_per_second']:,.0f} | "
        f"{parsing['parse_per_second'] / API_CEILING:.1f} |",
        f"| parse + normalize + validate | {parsing['per_second']:,.0f} | "
        f"{parsing['per_second'] / API_CEILING:.1f} |",
        "",
    ]
    print(f"wrote {write_section('ingestion', lines)}")


if __name__ == "__main__":
    main()
