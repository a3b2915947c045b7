"""Which approximate-nearest-neighbour engine serves similar papers: usearch, hnswlib and
sqlite-vec on the daily snapshot's 72,000 papers, embedded as the API embeds them (TF-IDF, then a
256-dimension TruncatedSVD, unit length). Build time, index bytes, query p95 and recall@10 against
the exact TF-IDF cosine, with and without re-ranking the candidates by that exact cosine (what the
API does). Prints a markdown table; the choice and its reasons are in docs/benchmarks.md.
Run with `.venv/bin/python bench/ann_engines.py` (hnswlib is not a dependency: it has no wheel,
install it by hand to compare). sqlite-vec needs a Python whose sqlite3 loads extensions, which
the project's may not: the run saves the vectors to SAVED, and `python3 bench/ann_engines.py
--sqlite-vec` (Debian's python3 with numpy and sqlite-vec) measures sqlite-vec on them.
"""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUERIES = 500
K = 10
CANDIDATES = 1_000  # as serving.similarity
SWEEP = (100, 300, 1_000)
SAVED = Path("/tmp/ann-engines.npz")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def papers() -> list[str]:
    from tests.support.arxiv_server import shared_data_dir

    path = shared_data_dir() / "snapshot" / "arxiv-daily-2025-03_2026-04.jsonl.gz"
    with gzip.open(path, "rt") as lines:
        return [f"{r['title']}\n{r['abstract']}" for r in map(json.loads, lines)]


def p95(times: list[float]) -> float:
    times = sorted(times)
    return times[int(0.95 * (len(times) - 1))]


def recall(found: list[np.ndarray], truth: np.ndarray) -> float:
    return statistics.mean(len(set(f[:K]) & set(t)) / K for f, t in zip(found, truth, strict=True))


def reranked(matrix, queries: np.ndarray, candidates: list[np.ndarray]) -> list[np.ndarray]:
    """The candidates ordered by their exact TF-IDF cosine with the query."""
    out = []
    for q, c in zip(queries, candidates, strict=True):
        c = c[c != q]
        scores = (matrix[c] @ matrix[q].T).toarray().ravel()
        out.append(c[np.argsort(-scores)])
    return out


def usearch_engine(vectors: np.ndarray, dtype: str):
    from usearch.index import Index

    index = Index(ndim=vectors.shape[1], metric="cos", dtype=dtype)
    index.add(np.arange(len(vectors)), vectors, threads=2)
    path = tempfile.mktemp(suffix=".usearch")
    index.save(path)
    size = os.path.getsize(path)
    os.unlink(path)

    def search(q: np.ndarray, k: int) -> np.ndarray:
        return index.search(q, k, exact=False).keys

    return search, size


def hnswlib_engine(vectors: np.ndarray, _):
    import hnswlib

    index = hnswlib.Index(space="cosine", dim=vectors.shape[1])
    index.init_index(max_elements=len(vectors), ef_construction=128, M=16)
    index.add_items(vectors, np.arange(len(vectors)), num_threads=2)
    index.set_ef(64)
    path = tempfile.mktemp(suffix=".hnsw")
    index.save_index(path)
    size = os.path.getsize(path)
    os.unlink(path)

    def search(q: np.ndarray, k: int) -> np.ndarray:
        return index.knn_query(q, k)[0][0]

    return search, size


def sqlite_vec_engine(vectors: np.ndarray, dtype: str):
    import sqlite_vec

    path = tempfile.mktemp(suffix=".db")
    db = sqlite3.connect(path)
    db.enable_load_extension(True)
    sqlite_vec.load(db)
    column = "int8" if dtype == "i8" else "float"
    db.execute(f"CREATE VIRTUAL TABLE v USING vec0(e {column}[{vectors.shape[1]}])")
    if dtype == "i8":
        rows = (
            (i, np.clip(np.round(v * 127 * 4), -127, 127).astype(np.int8).tobytes())
            for i, v in enumerate(vectors)
        )
        db.executemany("INSERT INTO v(rowid, e) VALUES (?, vec_int8(?))", rows)
    else:
        db.executemany(
            "INSERT INTO v(rowid, e) VALUES (?, ?)",
            ((i, v.tobytes()) for i, v in enumerate(vectors)),
        )
    db.commit()
    size = os.path.getsize(path)

    def search(q: np.ndarray, k: int) -> np.ndarray:
        if dtype == "i8":
            blob = np.clip(np.round(q * 127 * 4), -127, 127).astype(np.int8).tobytes()
            sql = "SELECT rowid FROM v WHERE e MATCH vec_int8(?) AND k = ? ORDER BY distance"
        else:
            blob = q.tobytes()
            sql = "SELECT rowid FROM v WHERE e MATCH ? AND k = ? ORDER BY distance"
        return np.array([r for (r,) in db.execute(sql, (blob, k))])

    return search, size


def main() -> None:
    from bench.report import machine
    from serving.similarity import Embedding

    log("reading and embedding the snapshot")
    texts = papers()
    started = time.perf_counter()
    embedding = Embedding.fit(texts)
    fit_s = time.perf_counter() - started
    matrix = embedding.tfidf(texts)
    vectors = embedding.project(matrix)
    rng = np.random.default_rng(5)
    queries = rng.choice(len(texts), QUERIES, replace=False)
    log("exact TF-IDF neighbours")
    truth = []
    for q in queries:
        scores = (matrix @ matrix[q].T).toarray().ravel()
        scores[q] = -1
        truth.append(np.argsort(-scores)[:K])
    truth = np.array(truth)
    dense = vectors[queries] @ vectors.T
    dense[np.arange(QUERIES), queries] = -2
    exact_dense = np.argsort(-dense, axis=1)[:, : max(SWEEP)]
    np.savez(SAVED, vectors=vectors, queries=queries, truth=truth)
    sweep = ", ".join(
        f"{recall(reranked(matrix, queries, list(exact_dense[:, :k])), truth):.3f} (top {k:,})"
        for k in SWEEP
    )
    rows = [
        f"{machine()}; load average {os.getloadavg()[0]:.1f}. {len(texts):,} papers, TF-IDF "
        f"{matrix.shape[1]:,} terms, SVD to {vectors.shape[1]} dimensions fitted in {fit_s:.0f} s. "
        f"Recall@{K} against the exact TF-IDF cosine over {QUERIES} random papers; exact search "
        f"of the {vectors.shape[1]}-dimension vectors: {recall(exact_dense, truth):.3f} "
        f"(top {K}); re-ranked by the exact cosine: {sweep}.",
        "",
        f"| engine | build s | index MiB | query p95 ms (top {CANDIDATES}) | recall@{K} "
        f"| recall@{K}, top {CANDIDATES} re-ranked |",
        "|---|---|---|---|---|---|",
    ]
    engines = [
        ("usearch HNSW, f32", usearch_engine, "f32"),
        ("usearch HNSW, f16", usearch_engine, "f16"),
        ("usearch HNSW, i8", usearch_engine, "i8"),
        ("hnswlib HNSW, f32", hnswlib_engine, "f32"),
    ]
    for label, engine, dtype in engines:
        rows.append(measure(label, engine, dtype, vectors, queries, truth, matrix))
    print("\n".join(rows))


def measure(label, engine, dtype, vectors, queries, truth, matrix=None) -> str:
    """One engine's row; without the TF-IDF `matrix`, no re-ranked recall."""
    log(label)
    try:
        started = time.perf_counter()
        search, size = engine(vectors, dtype)
    except ImportError as error:
        return f"| {label} | not installed ({error.name}) | | | | |"
    build = time.perf_counter() - started
    found, times = [], []
    for q in queries:
        t = time.perf_counter()
        keys = search(vectors[q], CANDIDATES + 1)
        times.append((time.perf_counter() - t) * 1000)
        found.append(np.asarray(keys, dtype=np.int64))
    top = [f[f != q] for f, q in zip(found, queries, strict=True)]
    again = "—" if matrix is None else f"{recall(reranked(matrix, queries, found), truth):.3f}"
    return (
        f"| {label} | {build:.1f} | {size / 2**20:.0f} | {p95(times):.2f} | "
        f"{recall(top, truth):.3f} | {again} |"
    )


def sqlite_vec_only() -> None:
    """sqlite-vec on the vectors the last run saved."""
    saved = np.load(SAVED)
    for label, dtype in [("sqlite-vec (exact scan), f32", "f32"), ("sqlite-vec, int8", "i8")]:
        print(measure(label, sqlite_vec_engine, dtype, *(saved[k] for k in saved.files)))


if __name__ == "__main__":
    sqlite_vec_only() if sys.argv[1:] == ["--sqlite-vec"] else main()
