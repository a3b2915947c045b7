"""What the routes read through: the stores (from the Kedro catalog), the cache, the champion
model and the taxonomy — created once per process, handed out with `Depends(services)`."""

from __future__ import annotations

import gc
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import anyio
import mlflow
from fastapi import Depends, Request, Response
from kedro.io import DatasetError

from arxiv_kedro.classification import registry
from arxiv_kedro.coordination.cache import Cache, LocalCache, RedisCache
from arxiv_kedro.datasets.monitoring import MonitoringHistory
from arxiv_kedro.stores import StoreError, masked
from arxiv_kedro.stores.documents import DocumentStore
from arxiv_kedro.stores.relational.read_model import ReadModel
from serving.settings import LOCAL_CACHE_TTL_SECONDS, Settings
from serving.similarity import SimilarityIndex
from serving.taxonomy import Taxonomy

logger = logging.getLogger(__name__)


class Unavailable(RuntimeError):
    """A store or the model cannot serve right now (503); the message says why."""


class ChampionModel:
    """The registered champion, loaded once and swapped when the alias moves. The registry is
    asked at most every `refresh_seconds`, in the background once a model serves: requests
    never wait for the registry or for a new version to load."""

    def __init__(self, refresh_seconds: float):
        self.refresh_seconds = refresh_seconds
        self.error: str | None = None
        self._current: registry.Classifier | None = None
        self._version: registry.RegisteredVersion | None = None
        self._evaluation: dict[str, Any] | None = None
        self._checked = -float("inf")
        self._lock = threading.Lock()  # one registry check or model load at a time
        self._refreshing = False

    def get(self) -> registry.Classifier:
        """The champion model; `Unavailable` when there is none (yet) or it cannot load."""
        current = self._current
        if current is not None:
            self._refresh_in_background()
            return current
        with self._lock:  # the first requests wait for the first load
            if self._current is None and self._due():
                self._check()
                self._load()
        if self._current is None:
            raise Unavailable(self.error or "no champion model")
        return self._current

    def info(self) -> tuple[registry.RegisteredVersion, dict[str, Any]] | None:
        """The champion's registry entry and evaluation report, without loading the model."""
        if self._version is None:
            with self._lock:
                if self._version is None and self._due():
                    self._check()
        else:
            self._refresh_in_background()
        version = self._version
        if version is None:
            return None
        evaluation = self._evaluation
        if evaluation is None or evaluation["version"] != version.version:
            evaluation = self._evaluation = {"version": version.version, **_evaluation(version)}
        return version, evaluation

    def warm_up(self) -> None:
        threading.Thread(target=self._try_get, name="model-warm-up", daemon=True).start()

    def _try_get(self) -> None:
        try:
            self.get()
        except Unavailable as exc:
            logger.warning("No model for /v1/classify yet: %s", exc)

    def _due(self) -> bool:
        return time.monotonic() - self._checked >= self.refresh_seconds

    def _refresh_in_background(self) -> None:
        if self._refreshing or not self._due():
            return
        self._refreshing = True

        def refresh() -> None:
            try:
                with self._lock:
                    self._check()
                    if self._current is None or (
                        self._version is not None and self._version.version != self._current.version
                    ):
                        self._load()
            finally:
                self._refreshing = False

        threading.Thread(target=refresh, name="model-refresh", daemon=True).start()

    def _check(self) -> None:
        """Ask the registry which version is the champion (call with the lock held)."""
        self._checked = time.monotonic()
        try:
            self._version = registry.champion_version()
        except Exception as exc:  # the registry is a remote service: keep serving what we have
            self.error = f"the model registry at {masked(registry.tracking_uri())} failed: {exc}"
            logger.warning(self.error)
            return
        if self._version is None:
            self.error = (
                f"no {registry.MODEL_NAME}@{registry.CHAMPION} in the registry at "
                f"{masked(registry.tracking_uri())}: train one with `kedro run --pipeline training`"
            )

    def _load(self) -> None:
        """Load the version found by the last check (call with the lock held)."""
        version = self._version
        if version is None or (self._current and self._current.version == version.version):
            return
        try:
            started = time.monotonic()
            self._current = version.load()
            self.error = None
            # The model's many long-lived objects would otherwise be scanned again by every
            # full collection, pausing requests for tens of milliseconds (unfrozen first, so
            # that the model this one replaces can be collected).
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            logger.info(
                "Serving %s version %s (loaded in %.1f s)",
                version.name,
                version.version,
                time.monotonic() - started,
            )
        except Exception as exc:
            self.error = f"cannot load {version.name} version {version.version}: {exc}"
            logger.error(self.error)


def _evaluation(version: registry.RegisteredVersion) -> dict[str, Any]:
    """The run's `evaluation_report.json` (metrics and per-class scores); metrics from the
    version's tags when the report cannot be read."""
    metrics = {
        key.removeprefix("evaluation."): float(value)
        for key, value in version.tags.items()
        if key.startswith("evaluation.")
    }
    report: dict[str, Any] = {"metrics": metrics, "per_class": {}}
    if version.run_id:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=version.run_id,
                artifact_path="evaluation_report.json",
                tracking_uri=registry.tracking_uri(),
            )
            report = json.loads(Path(path).read_text())
        except Exception as exc:
            logger.warning(
                "No evaluation report for %s v%s: %s", version.name, version.version, exc
            )
    return {**report, "trained_through": version.tags.get("trained_through")}


@dataclass
class Services:
    settings: Settings
    catalog: Any  # kedro.io.DataCatalog holding the store datasets
    cache: Cache
    cache_ttl: float
    model: ChampionModel
    taxonomy: Taxonomy
    similarity: SimilarityIndex
    _opened: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def start(cls, settings: Settings) -> Services:
        catalog = settings.catalog()
        if "api_cache" in catalog:
            cache: Cache = catalog["api_cache"].load()
            ttl = settings.cache_ttl_seconds
        else:
            cache, ttl = LocalCache(), min(settings.cache_ttl_seconds, LOCAL_CACHE_TTL_SECONDS)
        model = ChampionModel(settings.model_refresh_seconds)
        similarity = SimilarityIndex(
            settings.similar_refresh_seconds, settings.similar_exact_max_papers
        )
        return cls(
            settings,
            catalog,
            cache,
            ttl,
            model,
            Taxonomy.load(settings.taxonomy, settings.category_names),
            similarity,
        )

    @property
    def papers(self) -> ReadModel:
        return self._store("read_model")

    @property
    def documents(self) -> DocumentStore:
        return self._store("documents")

    @property
    def monitoring(self) -> MonitoringHistory:
        return self._store("monitoring_history")

    @property
    def redis(self) -> RedisCache | None:
        return self.cache if isinstance(self.cache, RedisCache) else None

    def _store(self, name: str) -> Any:
        store = self._opened.get(name)
        if store is None:  # until the store answers, each request tries to connect again
            try:
                store = self._opened[name] = self.catalog[name].load()
            except DatasetError as exc:  # Kedro wraps what a dataset's `load` raised
                if not isinstance(exc.__cause__, StoreError):
                    raise
                raise Unavailable(str(exc.__cause__)) from exc
        return store

    async def cached(self, key: str, compute: Callable[[], Any]) -> str:
        """`compute()` (JSON-ready) as JSON text, through the cache: hits go to the client as
        they are, never parsed nor validated again. Hits in this process's memory are answered
        on the event loop; Redis and the stores are asked from a worker thread."""
        if self.cache_ttl > 0 and isinstance(self.cache, LocalCache):
            hit = self.cache.get(key)
            if hit is not None:
                return hit
        return await anyio.to_thread.run_sync(self._cached, key, compute)

    def _cached(self, key: str, compute: Callable[[], Any]) -> str:
        """A cache outage only costs speed."""
        if self.cache_ttl <= 0:
            return _json(compute())
        try:
            hit = self.cache.get(key)
        except StoreError as exc:
            logger.warning("Cache read failed, serving uncached: %s", exc)
            return _json(compute())
        if hit is not None:
            return hit
        body = _json(compute())
        try:
            self.cache.set(key, body, self.cache_ttl)
        except StoreError as exc:
            logger.warning("Cache write failed: %s", exc)
        return body

    def close(self) -> None:
        """Forget the stores: their pools are the process's, shared by the catalog's datasets
        (`Database.shared`), and end with it."""
        self._opened.clear()


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def json_response(body: str) -> Response:
    """Already serialized JSON (see `Services.cached`) as the response."""
    return Response(body, media_type="application/json")


async def services(request: Request) -> Services:  # async: no worker thread per request
    return request.app.state.services


Svc = Annotated[Services, Depends(services)]
