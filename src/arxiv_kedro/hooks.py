"""Project hooks: the champion gate's decision applied once the model is in the registry; the
API cache emptied whenever a pipeline writes a store."""

from __future__ import annotations

import logging
from typing import Any

import mlflow
from kedro.framework.hooks import hook_impl
from kedro.pipeline import Node

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


class CacheInvalidationHook:
    """Empties the REST API's cache (catalog entry `api_cache`, conf/prod) after every node that
    was handed a store, so the API serves new papers, predictions and summaries at once. A cache
    that cannot be reached is logged, never fails the run: its entries expire on their own.
    """

    STORES = frozenset({"paper_store", "document_store"})

    def __init__(self) -> None:
        self._catalog: Any = None

    @hook_impl
    def after_catalog_created(self, catalog: Any) -> None:
        self._catalog = catalog if "api_cache" in catalog else None

    @hook_impl
    def after_node_run(self, node: Node) -> None:
        self._invalidate(node)

    @hook_impl
    def on_node_error(self, node: Node) -> None:
        self._invalidate(node)  # a failed node may have committed batches before it failed

    def _invalidate(self, node: Node) -> None:
        if self._catalog is None or not self.STORES.intersection(node.inputs):
            return
        try:
            removed = self._catalog.load("api_cache").invalidate()
        except StoreError as exc:
            logger.warning("The API cache was not invalidated after %s: %s", node.name, exc)
            return
        logger.info("API cache invalidated after %s (%d entries)", node.name, removed)
