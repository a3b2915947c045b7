"""The API's cache: hot reads in Redis (prod), emptied by `CacheInvalidationHook` after a save of
a dataset the API serves (catalog metadata `serves_api`); in-process and short-lived without
Redis (embedded)."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator

import pytest
import redis
from fastapi.testclient import TestClient
from kedro.io import DataCatalog

from arxiv_kedro.hooks import CacheInvalidationHook, serves_api
from arxiv_kedro.papers import Paper
from arxiv_kedro.pipelines import inference, summarization, training
from arxiv_kedro.pipelines.ingestion import pipeline as ingestion
from arxiv_kedro.stores.relational.ingestion import IngestionStore
from tests.conftest import REDIS_URL, free_port
from tests.serving.conftest import World
from tests.serving.test_papers import stored_order

EMBEDDED = pytest.mark.parametrize("world", ["embedded"], indirect=True)
PROD = pytest.mark.parametrize(
    "world", [pytest.param("prod", marks=pytest.mark.postgres)], indirect=True
)
SERVED = {"papers@batches", "predictions@batches", "summaries"}


def hook_for(world: World, **options: float) -> CacheInvalidationHook:
    """The hook, as a `kedro run` of the world's env creates it."""
    hook = CacheInvalidationHook(**options)
    hook.after_catalog_created(world.catalog())
    return hook


def test_what_the_api_serves_is_marked_in_the_catalog(world: World) -> None:
    catalog = world.catalog()
    pipelines = [
        ingestion.create_pipeline(),
        ingestion.create_backfill_pipeline(),
        *(module.create_pipeline() for module in (inference, summarization, training)),
    ]
    written = {output for pipeline in pipelines for output in pipeline.all_outputs()}

    assert {name for name in written if serves_api(catalog, name)} == SERVED


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
        writer = IngestionStore(world.papers)
        counts = writer.write_batch([dataclasses.replace(paper, title=title)], source="test")
        assert counts.updated == 1
        changed.append(paper)
        return paper

    yield change
    for paper in changed:
        IngestionStore(world.papers).write_batch([paper], source="test")


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
def test_the_hook_empties_the_cache_after_a_save_of_what_the_api_serves(
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
    hook = hook_for(world)

    retitle(arxiv_id, f"{before} (revised)")
    stale = api.get(f"/v1/papers/{arxiv_id}").json()["title"]
    hook.after_dataset_saved("articles")  # raw records: the API does not serve them
    hook.after_pipeline_run()
    still_stale = api.get(f"/v1/papers/{arxiv_id}").json()["title"]
    hook.after_dataset_saved("papers@batches")
    fresh = api.get(f"/v1/papers/{arxiv_id}").json()["title"]
    relisted = api.get("/v1/papers", params={"limit": 100}).json()["items"]

    assert stale == still_stale == before  # served from the cache
    assert fresh == f"{before} (revised)"
    assert fresh in [item["title"] for item in relisted]


@PROD
def test_saves_in_a_long_run_empty_the_cache_at_most_every_interval_and_at_the_end(
    start: Callable[..., TestClient], world: World, redis_client: redis.Redis
) -> None:
    api = start()
    hook = hook_for(world, min_interval_seconds=3600)

    def fill_cache() -> None:
        for path in ("/v1/categories", "/v1/stats", f"/v1/papers/{stored_order(world)[0]}"):
            api.get(path)
        assert len(cached_keys(redis_client, world)) >= 3

    fill_cache()
    hook.after_dataset_saved("summaries")  # the first save empties it at once
    assert cached_keys(redis_client, world) == set()
    fill_cache()
    hook.after_dataset_saved("predictions@batches")  # within the interval: later
    assert len(cached_keys(redis_client, world)) >= 3
    hook.on_pipeline_error()  # the run ends (here, fails): what it saved is served at once
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
    closed["papers@batches"] = world.catalog().get("papers@batches")
    hook = CacheInvalidationHook()
    hook.after_catalog_created(closed)

    hook.after_dataset_saved("papers@batches")  # logged, not raised


@EMBEDDED
def test_without_redis_reads_are_cached_in_process_briefly(
    start: Callable[..., TestClient], world: World, retitle: Callable[[str, str], Paper]
) -> None:
    arxiv_id = stored_order(world)[52]
    api = start(cache_ttl_seconds=2)
    before = api.get(f"/v1/papers/{arxiv_id}").json()["title"]
    hook = hook_for(world)

    retitle(arxiv_id, f"{before} (revised)")
    hook.after_dataset_saved("papers@batches")  # no api_cache in the catalog: nothing to do
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
