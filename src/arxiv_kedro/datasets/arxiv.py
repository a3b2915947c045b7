"""Datasets for raw arXiv records: the API client (a service, handed to the fetch node), the
landing zone of fetched pages, and bulk snapshot files read lazily."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from kedro.io import AbstractDataset, DatasetError

from arxiv_kedro.coordination.rate_limit import RedisTokenBucket
from arxiv_kedro.coordination.redis_store import RedisStore
from arxiv_kedro.sources import Checkpoint, RawBatch
from arxiv_kedro.sources.arxiv_api import MIN_DELAY_SECONDS, ArxivApiClient, request_interval
from arxiv_kedro.sources.snapshot import SnapshotFile
from arxiv_kedro.stores import masked


class ArxivApiDataset(AbstractDataset[None, ArxivApiClient]):
    """Loads an `ArxivApiClient` (no I/O until the fetch node asks for pages). With
    `shared_rate_limit` (a Redis URL) every process of the deployment shares one request per
    `delay_seconds`.

    Example catalog entry::

        arxiv_api:
          type: arxiv_kedro.datasets.ArxivApiDataset
          api:
            url: ${env:ARXIV_API_URL,https://export.arxiv.org/api/query}
            page_size: 2000
            delay_seconds: 3
          shared_rate_limit: ${globals:redis_url}   # empty: this process only
    """

    def __init__(
        self,
        api: dict[str, Any] | None = None,
        shared_rate_limit: str = "",
        metadata: dict[str, Any] | None = None,
    ):
        self.api, self.shared_rate_limit, self.metadata = (
            dict(api or {}),
            shared_rate_limit,
            metadata,
        )

    def load(self) -> ArxivApiClient:
        limiter = None
        if self.shared_rate_limit:
            delay = self.api.get("delay_seconds", MIN_DELAY_SECONDS)
            store = RedisStore(self.shared_rate_limit)
            limiter = RedisTokenBucket(store, "arxiv-api", rate=1 / request_interval(delay))
        return ArxivApiClient(**self.api, rate_limiter=limiter)

    def save(self, data: None) -> NoReturn:
        raise DatasetError("ArxivApiDataset is read-only")

    def _describe(self) -> dict[str, Any]:
        shared = masked(self.shared_rate_limit) if self.shared_rate_limit else None
        return {"api": self.api, "shared_rate_limit": shared}


class LandingZoneDataset(
    AbstractDataset[dict[str, Any], dict[str, Callable[[], Iterator[RawBatch]]]]
):
    """The raw landing zone: every page fetched from the API, kept as gzipped JSON under
    `<path>/<plan id>/<window>-<page>.json.gz`, so papers can be normalized again without asking
    arXiv again (it allows one request every 3 s).

    `save(page)` writes one page atomically; `load()` returns, like `PartitionedDataset`, a dict
    from plan id to a function that yields that plan's pages as `RawBatch`es, in fetch order.
    Only the newest `keep_plans` plans are kept.

    Example catalog entry::

        raw_pages:
          type: arxiv_kedro.datasets.LandingZoneDataset
          path: data/01_raw/arxiv-api
    """

    def __init__(self, path: str, keep_plans: int = 30, metadata: dict[str, Any] | None = None):
        self.path, self.keep_plans, self.metadata = Path(path), keep_plans, metadata

    def save(self, page: dict[str, Any]) -> None:
        folder = self.path / page["plan_id"]
        if not folder.is_dir():
            folder.mkdir(parents=True)
            self._prune()
        target = folder / f"{page['window']:04d}-{page['page']:05d}.json.gz"
        partial = target.with_name(f".{target.name}.partial")
        with gzip.open(partial, "wt", encoding="utf-8", compresslevel=3) as out:
            json.dump(page, out, default=str)
        os.replace(partial, target)

    def load(self) -> dict[str, Callable[[], Iterator[RawBatch]]]:
        if not self.path.is_dir():
            return {}
        return {
            folder.name: (lambda folder=folder: _pages(folder))
            for folder in sorted(self.path.iterdir())
            if folder.is_dir()
        }

    def _prune(self) -> None:
        plans = sorted(folder for folder in self.path.iterdir() if folder.is_dir())
        for folder in plans[: max(0, len(plans) - self.keep_plans)]:
            shutil.rmtree(folder, ignore_errors=True)

    def _exists(self) -> bool:
        return self.path.is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self.path), "keep_plans": self.keep_plans}


def _pages(folder: Path) -> Iterator[RawBatch]:
    for path in sorted(folder.glob("*.json.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            page = json.load(lines)
        mark = page.get("checkpoint")
        checkpoint = (
            Checkpoint(tuple(mark["categories"]), datetime.fromisoformat(mark["through"]))
            if mark
            else None
        )
        yield RawBatch("api", page["records"], checkpoint=checkpoint)


class SnapshotDataset(AbstractDataset[None, SnapshotFile]):
    """A bulk snapshot in the Kaggle arxiv-metadata-oai-snapshot format (`.jsonl` or `.jsonl.gz`),
    loaded as a `SnapshotFile` that streams batches of `batch_size` records: memory stays flat
    whatever the file's size.

    Example catalog entry::

        snapshot:
          type: arxiv_kedro.datasets.SnapshotDataset
          filepath: ${env:ARXIV_SNAPSHOT,""}
          batch_size: 5000
    """

    def __init__(
        self, filepath: str = "", batch_size: int = 5000, metadata: dict[str, Any] | None = None
    ):
        self.filepath, self.batch_size, self.metadata = filepath, batch_size, metadata

    def load(self) -> SnapshotFile:
        if not self.filepath:
            raise DatasetError(
                "no snapshot file: set ARXIV_SNAPSHOT=<file.jsonl[.gz]> to backfill from one"
            )
        return SnapshotFile(self.filepath, batch_size=self.batch_size)

    def save(self, data: None) -> NoReturn:
        raise DatasetError("SnapshotDataset is read-only")

    def _exists(self) -> bool:
        return bool(self.filepath) and Path(self.filepath).is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self.filepath, "batch_size": self.batch_size}
