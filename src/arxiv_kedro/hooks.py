"""Project hooks: the champion gate's decision applied once the model is in the registry; the
ingestion lock and run record around a pipeline that writes paper batches; the API cache emptied
when a pipeline saves what the API serves."""

from __future__ import annotations

import logging
import time
from typing import Any

import mlflow
from kedro.framework.hooks import hook_impl
from kedro.pipeline import Node, Pipeline

from arxiv_kedro.classification import registry
from arxiv_kedro.stores import StoreError

logger = logging.getLogger(__name__)
DECISION = "champion_decision"


class ChampionHook:
    """Tags the model version that kedro-mlflow registered at the end of a training run with its
    evaluation, and moves the champion alias to it when the gate said so.

    kedro-mlflow logs (and registers) the model in its own `after_pipeline_run`; this one runs
    after it (`trylast`), so the version exists.
    """

    def __init__(self) -> None:
        self._decision: dict[str, Any] | None = None
        self._run_id: str | None = None

    @hook_impl
    def after_node_run(self, node: Node, outputs: dict[str, Any]) -> None:
        if DECISION in outputs:
            self._decision = outputs[DECISION]
            run = mlflow.active_run()
            self._run_id = run.info.run_id if run else None

    @hook_impl(trylast=True)
    def after_pipeline_run(self) -> None:
        decision, run_id = self._decision, self._run_id
        self._decision = self._run_id = None
        if decision is None:
            return
        if run_id is None:
            logger.warning("Champion gate: no MLflow run is active, so no model was registered")
            return
        name = decision["registered_model_name"]
        client = registry.client()
        versions = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
        if not versions:
            logger.warning("Champion gate: run %s registered no version of %r", run_id, name)
            return
        version = versions[0].version
        tags = {
            "evaluation_fingerprint": decision["evaluation_fingerprint"],
            "trained_through": decision["trained_through"],
            **{f"evaluation.{k}": str(v) for k, v in decision["evaluation"].items()},
        }
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)
        gate = {
            "promoted": str(decision["promote"]).lower(),
            "reason": decision["reason"],
            "metric": decision["metric"],
            "candidate": str(decision["candidate"]),
            "champion": str(decision["champion"]),  # "None": no champion to compare with
            "champion_version": str(decision["champion_version"]),
        }
        for key, value in gate.items():
            client.set_tag(run_id, f"champion_gate.{key}", value)
        if decision["promote"]:
            client.set_registered_model_alias(name, registry.CHAMPION, version)
            logger.info(
                "%s version %s is the new @%s: %s",
                name,
                version,
                registry.CHAMPION,
                decision["reason"],
            )
        else:
            logger.info(
                "%s version %s registered; @%s unchanged: %s",
                name,
                version,
                registry.CHAMPION,
                decision["reason"],
            )


class IngestionRunHook:
    """Holds the ingestion lock (catalog entry `ingestion_lock`) while a pipeline that writes
    paper batches runs, so two ingestion runs never overlap; if the pipeline fails, records the
    ingestion run as failed with the error — also when it failed before its first batch (e.g.
    the API could not be reached). A run killed outright is marked interrupted by the next one.
    """

    WRITER = "papers@batches"

    def __init__(self) -> None:
        self._lock: Any = None
        self._writer: Any = None
        self._source = ""

    @hook_impl
    def before_pipeline_run(self, pipeline: Pipeline, catalog: Any) -> None:
        if self.WRITER not in pipeline.all_outputs():
            return
        lock = catalog.load("ingestion_lock")
        lock.__enter__()  # LockHeld when another run holds it: this run stops before any work
        self._lock, self._writer = lock, catalog.get(self.WRITER)
        self._source = "api" if "arxiv_api" in pipeline.all_inputs() else "snapshot"

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._release()

    @hook_impl
    def on_pipeline_error(self, error: Exception) -> None:
        try:
            if self._writer is not None:
                self._writer.fail(f"{error.__class__.__name__}: {error}", self._source)
        finally:
            self._release()

    def _release(self) -> None:
        lock, self._lock, self._writer = self._lock, None, None
        if lock is not None:
            lock.__exit__(None, None, None)


class CacheInvalidationHook:
    """Empties the REST API's cache (catalog entry `api_cache`, conf/prod) after a save of a
    dataset whose catalog metadata says `serves_api: true` (papers, predictions, summaries,
    reports), so the API serves them at once instead of after a TTL. During a long run it
    empties at most every `min_interval_seconds`, and once more when the run ends. A cache that
    cannot be reached is logged, never fails the run: its entries expire on their own.
    """

    def __init__(self, min_interval_seconds: float = 5.0) -> None:
        self.min_interval_seconds = min_interval_seconds
        self._catalog: Any = None
        self._dirty: str | None = None  # a dataset saved since the last invalidation
        self._last = -float("inf")

    @hook_impl
    def after_catalog_created(self, catalog: Any) -> None:
        self._catalog = catalog if "api_cache" in catalog else None

    @hook_impl
    def after_dataset_saved(self, dataset_name: str) -> None:
        if self._catalog is None or not serves_api(self._catalog, dataset_name):
            return
        self._dirty = dataset_name
        if time.monotonic() - self._last >= self.min_interval_seconds:
            self._invalidate()

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._invalidate()

    @hook_impl
    def on_pipeline_error(self) -> None:
        self._invalidate()  # batches committed before the failure are served too

    def _invalidate(self) -> None:
        if self._dirty is None:
            return
        saved, self._dirty, self._last = self._dirty, None, time.monotonic()
        try:
            removed = self._catalog.load("api_cache").invalidate()
        except StoreError as exc:
            logger.warning("The API cache was not invalidated after %s: %s", saved, exc)
            return
        logger.info("API cache invalidated after saving %s (%d entries)", saved, removed)


def serves_api(catalog: Any, dataset_name: str) -> bool:
    """Whether the dataset's catalog entry says the REST API serves what it holds."""
    metadata = getattr(catalog.get(dataset_name), "metadata", None) or {}
    return bool(metadata.get("serves_api"))
