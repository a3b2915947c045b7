"""Tests of `SnapshotFile` on the real snapshots and on hand-written broken files."""

from __future__ import annotations

import functools
import gzip
import json
import random
from pathlib import Path

import pytest

from arxiv_kedro.papers import normalize
from arxiv_kedro.sources.snapshot import SnapshotError, SnapshotFile

DAILY = "arxiv-daily-2025-03_2026-04.jsonl.gz"
SNAPSHOT_RECORDS = {
    "kaggle-head-0704.0001-0200.jsonl": 200,
    "arxiv-sample-all-archives.jsonl": 1628,
    DAILY: 72_000,
}
SMALL_SNAPSHOTS = [name for name in SNAPSHOT_RECORDS if name != DAILY]
# The daily file is read at the pipeline's configured batch size (conf/base/catalog.yml).
BATCH_SIZES = dict.fromkeys(SMALL_SNAPSHOTS, 500) | {DAILY: 5000}


@functools.cache
def read_counts(path: Path, batch_size: int) -> list[tuple[int, int, float | None]]:
    """(records, rejected, fraction_read) as seen by the consumer of each batch."""
    snapshot = SnapshotFile(path, batch_size=batch_size)
    return [(len(b.records), len(b.rejected), snapshot.fraction_read) for b in snapshot.batches()]


def record(arxiv_id: str, **changes: object) -> dict[str, object]:
    fields = {
        "id": arxiv_id,
        "authors": "A. Author and B. Author",
        "title": f"Paper {arxiv_id}",
        "categories": "cs.CL",
        "abstract": "An abstract.",
        "versions": [],
        "update_date": "2025-03-18",
    }
    return fields | changes


def write_snapshot(path: Path, lines: list[bytes]) -> Path:
    data = b"".join(line + b"\n" for line in lines)
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def test_every_snapshot_file_is_covered(shared_data: Path) -> None:
    found = {path.name for path in (shared_data / "snapshot").glob("*.jsonl*")}

    assert found == set(SNAPSHOT_RECORDS)


@pytest.mark.parametrize("name", SNAPSHOT_RECORDS)
def test_snapshot_file_reads_every_record_in_bounded_batches(shared_data: Path, name: str) -> None:
    batch_size = BATCH_SIZES[name]
    counts = read_counts(shared_data / "snapshot" / name, batch_size)

    assert sum(records for records, _, _ in counts) == SNAPSHOT_RECORDS[name]
    assert sum(rejected for _, rejected, _ in counts) == 0
    sizes = [records + rejected for records, rejected, _ in counts]
    assert all(size == batch_size for size in sizes[:-1])
    assert 0 < sizes[-1] <= batch_size


def test_daily_snapshot_progress_rises_to_the_end(shared_data: Path) -> None:
    progress = [
        fraction
        for _, _, fraction in read_counts(shared_data / "snapshot" / DAILY, BATCH_SIZES[DAILY])
    ]

    assert len(progress) == 15
    assert None not in progress, f"fraction_read was None for some batches: {progress}"
    assert progress == sorted(progress)
    assert progress[0] < 0.2
    assert progress[-1] == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("name", SMALL_SNAPSHOTS)
def test_small_snapshot_normalizes_without_quarantine(shared_data: Path, name: str) -> None:
    snapshot = SnapshotFile(shared_data / "snapshot" / name, batch_size=BATCH_SIZES[name])
    records = [raw for batch in snapshot.batches() for raw in batch.records]

    papers, quarantined = normalize(records, "snapshot")

    assert [(q.record_key, q.reason) for q in quarantined] == []
    assert len(papers) == SNAPSHOT_RECORDS[name]


@pytest.mark.parametrize("filename", ["bad.jsonl", "bad.jsonl.gz"])
def test_bad_lines_are_rejected_or_quarantined_never_dropped(tmp_path: Path, filename: str) -> None:
    lines = [
        json.dumps(record("2503.00001")).encode(),
        b"",
        b'{"id": "2503.00009", "title": ',
        b"   \t",
        b'["a", "list"]',
        b'"a bare string"',
        b'{"id": "2503.00008", "title": "caf\xe9 \xff"}',
        json.dumps(record("2503.00003", abstract=None)).encode(),
        json.dumps(record("2503.00002")).encode(),
    ]
    path = write_snapshot(tmp_path / filename, lines)

    batches = list(SnapshotFile(path, batch_size=2).batches())

    assert [len(b.records) + len(b.rejected) for b in batches] == [2, 2, 2, 1]
    records = [raw for batch in batches for raw in batch.records]
    rejected = [q for batch in batches for q in batch.rejected]
    assert [raw["id"] for raw in records] == ["2503.00001", "2503.00003", "2503.00002"]
    assert [(q.source, q.raw["file"], q.raw["line_number"]) for q in rejected] == [
        ("snapshot", filename, line) for line in (3, 5, 6, 7)
    ]
    reasons = [q.reason for q in rejected]
    assert reasons[0].startswith("line 3 is not valid JSON")
    assert reasons[1] == "line 5 is a JSON list, not an object"
    assert reasons[2] == "line 6 is a JSON str, not an object"
    assert reasons[3].startswith("line 7 is not valid JSON")
    assert rejected[3].raw["line"].startswith('{"id": "2503.00008", "title": "caf\ufffd \ufffd"}')
    papers, quarantined = normalize(records, "snapshot")
    assert [paper.arxiv_id for paper in papers] == ["2503.00001", "2503.00002"]
    assert [(q.record_key, q.reason) for q in quarantined] == [("2503.00003", "missing abstract")]
    non_blank = [line for line in lines if line.strip()]
    assert len(records) + len(rejected) == len(non_blank)


def test_missing_file_is_snapshot_error(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="not found"):
        list(SnapshotFile(tmp_path / "absent.jsonl.gz").batches())


@pytest.mark.parametrize("cut", ["trailer", "third"])
def test_truncated_gzip_is_snapshot_error_after_readable_batches(tmp_path: Path, cut: str) -> None:
    rng = random.Random(7)
    originals = [record(f"2503.{n:05d}", abstract=rng.randbytes(150).hex()) for n in range(290)]
    path = write_snapshot(tmp_path / "cut.jsonl.gz", [json.dumps(r).encode() for r in originals])
    data = path.read_bytes()
    path.write_bytes(data[:-4] if cut == "trailer" else data[: len(data) * 2 // 3])
    snapshot = SnapshotFile(path, batch_size=50)
    batches = []

    with pytest.raises(SnapshotError, match=r"cannot read .*cut\.jsonl\.gz after line \d+"):
        batches.extend(snapshot.batches())

    assert batches, "no batch was yielded before the error"
    assert all(len(batch.records) == 50 for batch in batches[:-1])
    assert 0 < len(batches[-1].records) <= 50, "the records read before the failure are kept"
    assert not any(batch.rejected for batch in batches)
    records = [raw for batch in batches for raw in batch.records]
    assert records == originals[: len(records)]
