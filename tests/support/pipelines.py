"""The project's pipelines run in this process on the project's own catalog, pointed at a test's
stores — as `kedro run` runs them, the project's run hooks included."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader
from kedro.framework.hooks.manager import _create_hook_manager
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline
from kedro.runner import SequentialRunner

from arxiv_kedro import settings
from arxiv_kedro.datasets import RunLockDataset, SnapshotDataset
from arxiv_kedro.hooks import CacheInvalidationHook, IngestionRunHook
from arxiv_kedro.pipelines.ingestion.nodes import READER
from arxiv_kedro.pipelines.ingestion.pipeline import create_backfill_pipeline

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def project_catalog(
    env: str = "local",
    *,
    params: dict[str, Any] | None = None,
    conf: Path = PROJECT_ROOT / "conf",
    **stores: str,
) -> DataCatalog:
    """The catalog of `env` with `stores` (globals.yml's relational_url, documents_url,
    documents_database, redis_url) replaced; its relative paths resolve in the current directory.
    The project's parameters are `params:` entries, `params` ({"ingestion": {...}, ...}) replacing
    whole top-level ones."""
    loader = OmegaConfigLoader(
        str(conf), env=env, base_env="base", default_run_env="local",
        custom_resolvers=settings.CONFIG_LOADER_ARGS["custom_resolvers"],
    )  # fmt: skip
    loader["globals"] = {**loader["globals"], **stores}
    catalog = DataCatalog.from_config(loader["catalog"])
    for name, value in {**loader["parameters"], **(params or {})}.items():
        catalog[f"params:{name}"] = value
    return catalog


def run_pipeline(pipeline: Pipeline, catalog: DataCatalog, hooks: Iterable[Any] = ()) -> None:
    """Run as a Kedro session does: hooks around a SequentialRunner. The project's run hooks are
    fresh instances, so runs in several threads do not share their state."""
    manager = _create_hook_manager()
    for hook in (IngestionRunHook(), CacheInvalidationHook(min_interval_seconds=0), *hooks):
        manager.register(hook)
    manager.hook.after_catalog_created(
        catalog=catalog, conf_catalog={}, conf_creds={}, parameters={},
        save_version=None, load_versions={},
    )  # fmt: skip
    run = {"run_params": {}, "pipeline": pipeline, "catalog": catalog}
    manager.hook.before_pipeline_run(**run)
    try:
        SequentialRunner().run(pipeline, catalog, manager)
    except Exception as error:
        manager.hook.on_pipeline_error(error=error, **run)
        raise
    manager.hook.after_pipeline_run(run_result={}, **run)


def backfill(
    snapshot: Path, workdir: Path, batch_size: int = 5000, **stores: str
) -> dict[str, Any]:
    """The backfill pipeline on `snapshot` into `stores` (see `project_catalog`); its lock file
    in `workdir`. Returns the ingestion report."""
    catalog = project_catalog(params={"ingestion": {}}, **stores)
    catalog["snapshot"] = SnapshotDataset(str(snapshot), batch_size=batch_size)
    catalog["ingestion_lock"] = RunLockDataset("ingestion", path=str(workdir / "ingestion.lock"))
    catalog["ingestion_report"] = MemoryDataset()
    run_pipeline(create_backfill_pipeline(), catalog)
    return catalog.load("ingestion_report")


def readers() -> list[multiprocessing.Process]:
    """The ingestion's prefetch readers still running in this process. Other children are not
    theirs to count: joblib keeps its workers a few minutes after a model's fit."""
    return [p for p in multiprocessing.active_children() if p.name == READER]
