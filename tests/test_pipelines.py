"""Every registered pipeline is a Kedro pipeline in the strict sense: nodes never receive a store
client, every input a node is given is read by it, and the order between nodes follows datasets
that carry data."""

from __future__ import annotations

import ast
import inspect
import textwrap
from pathlib import Path
from typing import Any

import pytest
from kedro.framework.hooks import hook_impl
from kedro.framework.project import pipelines
from kedro.framework.startup import bootstrap_project
from kedro.pipeline import Node
from sqlalchemy import Engine

from arxiv_kedro.coordination.cache import LocalCache, RedisCache
from arxiv_kedro.coordination.locks import FileLock, RedisLock
from arxiv_kedro.coordination.redis_store import RedisStore
from arxiv_kedro.datasets import (
    ApiCacheDataset,
    DocumentStoreDataset,
    ReadModelDataset,
    RunLockDataset,
    SnapshotDataset,
)
from arxiv_kedro.stores.documents import DocumentStore
from arxiv_kedro.stores.relational.engine import Database
from arxiv_kedro.stores.relational.ingestion import IngestionStore
from arxiv_kedro.stores.relational.ml import MlStore
from arxiv_kedro.stores.relational.monitoring import MonitoringStore
from arxiv_kedro.stores.relational.read_model import ReadModel
from tests.support.pipelines import PROJECT_ROOT, project_catalog, run_pipeline

# What hands out a store (or coordination) client: the REST API and the hooks may load these,
# a node may not.
CLIENT_DATASETS = (ApiCacheDataset, DocumentStoreDataset, ReadModelDataset, RunLockDataset)
CLIENTS = (
    Database, Engine, IngestionStore, MlStore, MonitoringStore, ReadModel, DocumentStore,
    RedisStore, RedisCache, LocalCache, RedisLock, FileLock,
)  # fmt: skip


@pytest.fixture(scope="module")
def registered() -> dict[str, Any]:
    bootstrap_project(PROJECT_ROOT)
    found = dict(pipelines)
    assert {"ingestion", "backfill", "training", "inference", "summarization"} <= found.keys()
    return found


def every_node(registered: dict[str, Any]) -> list[Node]:
    return sorted({n for p in registered.values() for n in p.nodes}, key=lambda n: n.name)


@pytest.mark.parametrize("env", ["local", "prod"])
def test_no_node_takes_a_store_client(registered: dict[str, Any], env: str) -> None:
    catalog = project_catalog(env)
    for node in every_node(registered):
        for name in node.inputs:
            if name.startswith("params:") or name not in catalog:  # in memory, from a node
                continue
            dataset = catalog.get(name)
            assert not isinstance(dataset, CLIENT_DATASETS), (
                f"{node.name} takes {name!r}, a {type(dataset).__name__}: a store client; "
                "read through a dataset that loads data instead"
            )


def used_names(function: Any) -> set[str]:
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def test_every_input_of_a_node_is_read_by_its_function(registered: dict[str, Any]) -> None:
    """An input the function never reads is there only to order the pipeline: a dummy."""
    for node in every_node(registered):
        parameters = inspect.signature(node.func).parameters.values()
        assert not [p for p in parameters if p.kind is p.VAR_POSITIONAL], node.name
        unread = {p.name for p in parameters} - used_names(node.func)
        assert not unread, f"{node.name} never reads {sorted(unread)}"


def test_the_default_pipeline_orders_its_steps_by_data(registered: dict[str, Any]) -> None:
    default = registered["__default__"]
    order = [node.name for node in default.nodes]  # topologically sorted by Kedro

    assert order.index("store_fetched_papers") < order.index("predict_pending")
    assert order.index("store_fetched_papers") < order.index("summarize_papers")
    assert order.index("store_fetched_papers") < order.index("report_ingestion")


class LoadedInputs:
    """Records what every node was given."""

    def __init__(self) -> None:
        self.loaded: dict[str, Any] = {}

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any) -> None:
        self.loaded[dataset_name] = data


def test_a_whole_run_hands_nodes_data_and_never_a_client(
    registered: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_data: Path
) -> None:
    """The backfill, inference and summarization on the embedded catalog: each dataset that
    connects two nodes carries data (never None), and no loaded value is a store client."""
    monkeypatch.chdir(tmp_path)
    snapshot = shared_data / "snapshot" / "kaggle-head-0704.0001-0200.jsonl"
    pipeline = registered["backfill"] + registered["inference"] + registered["summarization"]
    catalog = project_catalog(
        relational_url=f"sqlite:///{tmp_path / 'arxiv.db'}",
        documents_url=f"sqlite:///{tmp_path / 'documents.db'}",
        params={"ingestion": {}},
    )
    catalog["snapshot"] = SnapshotDataset(str(snapshot))
    recorder = LoadedInputs()

    try:
        run_pipeline(pipeline, catalog, hooks=[recorder])
    finally:
        Database.close_shared()

    connecting = {
        name
        for node in pipeline.nodes
        for name in node.inputs
        if any(name.split("@")[0] == out.split("@")[0] for n in pipeline.nodes for out in n.outputs)
    }
    assert connecting >= {"papers@run", "papers@unlabeled", "papers@newest"}
    for name in connecting:
        assert recorder.loaded[name] is not None, f"{name} orders the pipeline but carries nothing"
    clients = {k: type(v).__name__ for k, v in recorder.loaded.items() if isinstance(v, CLIENTS)}
    assert clients == {}
    assert catalog.load("ingestion_report")["new"] == 200
    assert catalog.load("summarization_report")["extractive_summaries"] == 200
