"""How values are encoded when handed from one process to another through Redis: DataFrames as
Arrow IPC, everything else as JSON — never pickle, so a reader never runs code from the store."""

from __future__ import annotations

import io
import json
from typing import Any

import pandas as pd
import pyarrow as pa

_JSON, _ARROW = b"J", b"A"


def encode_staged(value: Any) -> bytes:
    """DataFrames as Arrow IPC, everything else as JSON — never pickle."""
    if isinstance(value, pd.DataFrame):
        table = pa.Table.from_pandas(value, preserve_index=False)
        sink = io.BytesIO()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return _ARROW + sink.getvalue()
    return _JSON + json.dumps(value).encode()


def decode_staged(blob: bytes) -> Any:
    kind, body = blob[:1], blob[1:]
    if kind == _ARROW:
        return pa.ipc.open_stream(body).read_all().to_pandas()
    if kind == _JSON:
        return json.loads(body)
    raise ValueError(f"unknown staged format {kind!r}")
