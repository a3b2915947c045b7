"""Bulk snapshots in the Kaggle arxiv-metadata-oai-snapshot JSON-lines format, plain or gzipped."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from arxiv_kedro.papers import Quarantined
from arxiv_kedro.sources import RawBatch

_MAX_KEPT_LINE = 20_000  # characters of an undecodable line kept in quarantine


class SnapshotError(RuntimeError):
    """The snapshot file cannot be read at all (missing, or its compression is broken)."""


class SnapshotFile:
    """Streams a snapshot in batches of decoded records; memory stays flat in the file size."""

    def __init__(self, path: str | os.PathLike[str], batch_size: int = 5000):
        self.path = Path(path)
        self.batch_size = batch_size
        self._raw: BinaryIO | None = None
        self._size = 0

    def __repr__(self) -> str:
        return f"SnapshotFile({str(self.path)!r})"

    @property
    def fraction_read(self) -> float | None:
        """How far through the (compressed) file the reader is, for progress reports."""
        if self._raw is None or not self._size:
            return None
        return min(1.0, self._raw.tell() / self._size)

    def batches(self) -> Iterator[RawBatch]:
        """Yield batches of records; lines that are not JSON objects come back as rejected."""
        if not self.path.is_file():
            raise SnapshotError(f"snapshot file not found: {self.path}")
        self._size = self.path.stat().st_size
        with self.path.open("rb") as raw:
            self._raw = raw
            stream = gzip.GzipFile(fileobj=raw) if self.path.name.endswith(".gz") else raw
            batch = RawBatch("snapshot", [])
            line_number = 0
            try:
                for line_number, line in enumerate(stream, start=1):
                    if not line.strip():
                        continue
                    self._decode(line, line_number, batch)
                    if len(batch.records) + len(batch.rejected) >= self.batch_size:
                        yield batch
                        batch = RawBatch("snapshot", [])
            except (OSError, EOFError) as exc:
                error = SnapshotError(f"cannot read {self.path} after line {line_number}: {exc}")
            else:
                error = None
            if batch.records or batch.rejected:  # what was read before a failure is kept too
                yield batch
            self._raw = None
            if error is not None:
                raise error

    def _decode(self, line: bytes, line_number: int, batch: RawBatch) -> None:
        try:
            record = json.loads(line)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            reason = f"line {line_number} is not valid JSON ({exc})"
        else:
            if isinstance(record, dict):
                batch.records.append(record)
                return
            reason = f"line {line_number} is a JSON {type(record).__name__}, not an object"
        text = line.decode("utf-8", "replace")[:_MAX_KEPT_LINE]
        raw = {"file": self.path.name, "line_number": line_number, "line": text}
        batch.rejected.append(Quarantined("snapshot", reason, raw))
