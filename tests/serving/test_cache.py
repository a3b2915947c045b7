"""The API's cache: hot reads in Redis (prod), emptied by `CacheInvalidationHook` after a node that
was handed a store; in-process and short-lived without Redis (embedded)."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator

import pytest
import redis
from fastapi.testclient import TestClient
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog
from kedro.pipeline import Node

from arxiv_kedro import settings as project_settings
from arxiv_kedro.hooks import CacheInvalidationHook
from arxiv_kedro.papers import Paper
from arxiv_kedro.pipelines import ingestion, summarization, training
from tests.conftest import REDIS_URL, free_port
from tests.serving.conftest import World
from tests.serving.test_papers import stored_order

EMBEDDED = pytest.mark.parametrize("world", ["embedded"], indirect=True)
PROD = pytest.mark.parametrize(
    "world", [pytest.param("prod", marks=pytest.mark.postgres)], indirect=True
)
STORES = {"paper_store", "document_store"}


def project_catalog(world: World) -> DataCatalog:
    """The whole catalog a `kedro run` of the world's env would create."""
    args = project_settings.CONFIG_LOADER_ARGS
    loader = OmegaConfigLoader(
        conf_source=str(world.conf),
        env=world.env,
        **{k: v for k, v in args.items() if k != "default_run_env"},
    )
    return DataCatalog.from_config(loader["catalog"])


def node_with(*stores: str) -> Node:
    """A real pipeline node handed exactly `stores` (none: a training node)."""
    nodes = [
        *ingestion.create_pipeline().nodes,
        *summarization.create_pipeline().nodes,
        *training.create_pipeline().nodes,
    ]
    return next(n for n in nodes if STORES.intersection(n.inputs) == set(stores))


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


def cached_keys(client: redis.Redis, world: World) -> set[str]:
    return {k.decode() for k in client.scan_iter(match=f"{world.namespace}:cache:*")}


@pytest.fixture
def retitle(world: World) -> Iterator[Callable[[str, str], Paper]]:
    """`retitle(arxiv_id, title)` changes a stored paper's title (same version, new content);
    every paper changed is put back afterwards, and the cache emptied."""
    changed: list[Paper] = []

    def change(arxiv_id: str, title: str) -> Paper:
        paper = world.corpus.papers[arxiv_id]
        counts = world.papers.write_batch([dataclasses.replace(paper, title=title)], source="test")
        assert counts.updated == 1
        changed.append(paper)
        return paper

    yield change
    for paper in changed:
        world.papers.write_batch([paper], source="test")


@PROD
def test_a_paper_read_is_cached_in_redis(
    start: Callable[..., TestClient], world: World, redis_client: redis.Redis
) -> None:
    arxiv_id = stored_order(world)[50]
    api = start()

    found = api.get(f"/v1/papers/{arxiv_id}").json()

    entry = f"{world.namespace}:cache:paper:{arxiv_id}"
    assert json.loads(redis_client.get(entry)) == found  # the response body as served
    assert 290_000 < redis_client.pttl(entry) <= 300_000  # API_CACHE_TTL_SECONDS, 300 s


@PROD
def test_the_hook_empties_the_cache_after_a_node_that_writes_a_store(
    start: Callable[..., TestClient],
    world: World,
    retitle: Callable[[str, str], Paper],
    redis_client: redis.Redis,
) -> None:
    arxiv_id = stored_order(world)[51]
    api = start()
    before = api.get(f"/v1/papers/{arxiv_id}").json()["title"]
    listed = api.get("/v1/papers", params={"limit": 100}).json()["items"]
    assert before in [item["title"] for item in listed]
    hook = CacheInvalidationHook()
    hook.after_catalog_created(project_catalog(world))

    retitle(arxiv_id, f"{before} (revised)")
    stale = api.get(f"/v1/papers/{arxiv_id}").json()["title"]
    hook.after_node_run(node_with())  # a training node: no store, the cache stays
    still_stale = api.get(f"/v1/papers/{arxiv_id}").json()["title"]
    hook.after_node_run(node_with("paper_store"))  # the ingestion node
    fresh = api.get(f"/v1/papers/{arxiv_id}").json()["title"]
    relisted = api.get("/v1/papers", params={"limit": 100}).json()["items"]

    assert stale == still_stale == before  # served from the cache
    assert fresh == f"{before} (revised)"
    assert fresh in [item["title"] for item in relisted]


@PROD
def test_a_failed_node_and_a_document_writer_empty_the_cache_too(
    start: Callable[..., TestClient], world: World, redis_client: redis.Redis
) -> None:
    api = start()
    hook = CacheInvalidationHook()
    hook.after_catalog_created(project_catalog(world))

    for run in (hook.on_node_error, hook.after_node_run):
        for path in ("/v1/categories", "/v1/stats", f"/v1/papers/{stored_order(world)[0]}"):
            api.get(path)
        assert len(cached_keys(redis_client, world)) >= 3

        run(node_with("paper_store", "document_store"))  # the summarization node

        assert cached_keys(redis_client, world) == set()


@PROD
def test_an_unreachable_cache_never_fails_the_run(world: World) -> None:
    closed = DataCatalog.from_config(
        {
            "api_cache": {
                "type": "arxiv_kedro.datasets.ApiCacheDataset",
                "redis_url": f"redis://127.0.0.1:{free_port()}/0",
            }
        }
    )
    hook = CacheInvalidationHook()
    hook.after_catalog_created(closed)

    hook.after_node_run(node_with("paper_store"))  # logged, not raised


@EMBEDDED
def test_without_redis_reads_are_cached_in_process_briefly(
    start: Callable[..., TestClient], world: World, retitle: Callable[[str, str], Paper]
) -> None:
    arxiv_id = stored_order(world)[52]
    api = start(cache_ttl_seconds=2)
    before = api.get(f"/v1/papers/{arxiv_id}").json()["title"]
    hook = CacheInvalidationHook()
    hook.after_catalog_created(project_catalog(world))

    retitle(arxiv_id, f"{before} (revised)")
    hook.after_node_run(node_with("paper_store"))  # no api_cache in the catalog: nothing to do
    stale = api.get(f"/v1/papers/{arxiv_id}").json()["title"]
    time.sleep(2.1)
    fresh = api.get(f"/v1/papers/{arxiv_id}").json()["title"]

    assert stale == before
    assert fresh == f"{before} (revised)"


@EMBEDDED
def test_a_cache_ttl_of_zero_turns_the_cache_off(
    start: Callable[..., TestClient], world: World, retitle: Callable[[str, str], Paper]
) -> None:
    arxiv_id = stored_order(world)[53]
    api = start(cache_ttl_seconds=0)
    before = api.get(f"/v1/papers/{arxiv_id}").json()["title"]

    retitle(arxiv_id, f"{before} (revised)")

    assert api.get(f"/v1/papers/{arxiv_id}").json()["title"] == f"{before} (revised)"
