"""Redis coordination on the machine's Redis: cache, staging, shared rate limit, run locks."""

from __future__ import annotations

import itertools
import json
import math
import os
import pickle
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import pytest
from kedro.io import DatasetError

from arxiv_kedro.coordination.cache import Cache, LocalCache, RedisCache
from arxiv_kedro.coordination.locks import FileLock, LockHeld, RedisLock
from arxiv_kedro.coordination.rate_limit import LocalTokenBucket, RedisTokenBucket
from arxiv_kedro.coordination.redis_store import RedisStore
from arxiv_kedro.coordination.staging import decode_staged, encode_staged
from arxiv_kedro.datasets import RedisStagingDataset, RunLockDataset
from arxiv_kedro.stores import StoreError
from tests.conftest import free_port
from tests.support.arxiv_server import ArxivServer, load_corpus

TOLERANCE = 0.02  # seconds: scheduling jitter between a granted slot and the moment it is logged
HOST = socket.gethostname()

# Each child prints "ready" once imported, waits for a line on stdin, then does its part.
BUCKET_CHILD = """
import sys, time
from arxiv_kedro.coordination.rate_limit import RedisTokenBucket
from arxiv_kedro.coordination.redis_store import RedisStore
bucket = RedisTokenBucket(RedisStore(sys.argv[1], sys.argv[2]), "shared", rate=1 / 0.5)
print("ready", flush=True)
sys.stdin.readline()
for _ in range(5):
    bucket.acquire()
    print(time.time(), flush=True)
"""
CLIENT_CHILD = """
import sys
from datetime import datetime
from arxiv_kedro.sources.arxiv_api import ArxivApiClient, Window
from arxiv_kedro.coordination.rate_limit import RedisTokenBucket
from arxiv_kedro.coordination.redis_store import RedisStore
api, redis_url, namespace, start, end = sys.argv[1:]
limiter = RedisTokenBucket(RedisStore(redis_url, namespace), "arxiv-api", rate=1 / 0.5)
client = ArxivApiClient(api, page_size=50, delay_seconds=0.5, rate_limiter=limiter)
window = Window(("cs.CL", "cs.AI"), datetime.fromisoformat(start), datetime.fromisoformat(end))
print("ready", flush=True)
sys.stdin.readline()
print(sum(len(batch.records) for batch in client.fetch(window)), flush=True)
"""
FILE_LOCK_HOLDER = """
import sys, time
from arxiv_kedro.coordination.locks import FileLock
with FileLock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def start_together(script: str, *args: str, count: int = 2) -> list[subprocess.Popen]:
    """Start `count` Python children, wait until each has imported, then release them at once."""
    children = [
        subprocess.Popen(
            [sys.executable, "-c", script, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    for child in children:
        assert child.stdout.readline().strip() == "ready"
    for child in children:
        child.stdin.write("go\n")
        child.stdin.flush()
    return children


def finish(child: subprocess.Popen) -> list[str]:
    output, _ = child.communicate(timeout=60)
    assert child.returncode == 0
    return output.split()


def gaps(times: list[float]) -> list[float]:
    return [later - earlier for earlier, later in itertools.pairwise(sorted(times))]


def holder(**changes: Any) -> str:
    """A lock value as RedisLock writes it."""
    fields = {"token": "x", "host": HOST, "pid": os.getpid(), "since": "2026-01-01T00:00:00+00:00"}
    return json.dumps(fields | changes)


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# --- cache ----------------------------------------------------------------------------------


@pytest.fixture(params=["redis", "local"])
def cache(request: pytest.FixtureRequest) -> Cache:
    """The same contract on Redis and in process memory."""
    if request.param == "redis":
        return RedisCache(request.getfixturevalue("redis_store"))
    return LocalCache()


def test_cache_round_trips_text_values(cache: Cache) -> None:
    value = '{"items":[{"arxiv_id":"2503.00001","title":"ü ∑ 漢字"}],"next_cursor":null}'

    cache.set("search:q=llm", value, ttl_seconds=60)
    cache.set("count", "42", ttl_seconds=60)
    cache.set("count", "43", ttl_seconds=60)

    assert cache.get("search:q=llm") == value
    assert cache.get("count") == "43"
    assert cache.get("missing") is None


def test_cache_entries_expire(cache: Cache) -> None:
    cache.set("short", "[1,2]", ttl_seconds=0.2)
    cache.set("long", "[3]", ttl_seconds=60)
    assert cache.get("short") == "[1,2]"

    time.sleep(0.3)

    assert cache.get("short") is None
    assert cache.get("long") == "[3]"


def test_cache_invalidate_by_prefix(cache: Cache) -> None:
    for key in ("papers:1", "papers:2", "papers", "stats:papers"):
        cache.set(key, key, ttl_seconds=60)

    assert cache.invalidate("papers:") == 2

    assert cache.get("papers:1") is cache.get("papers:2") is None
    assert cache.get("papers") == "papers"
    assert cache.get("stats:papers") == "stats:papers"
    assert cache.invalidate() == 2
    assert cache.get("stats:papers") is None


def test_cache_invalidate_takes_the_prefix_literally(cache: Cache) -> None:
    keys = ("q[1]:a", "q1:b", "q*:c", "qz:d", "q?", "q\\e")
    for key in keys:
        cache.set(key, key, ttl_seconds=60)

    assert [cache.invalidate(prefix) for prefix in ("q[1]", "q*", "q?", "q\\")] == [1, 1, 1, 1]

    assert [cache.get(key) for key in keys] == [None, "q1:b", None, "qz:d", None, None]


def test_local_cache_keeps_the_most_recently_used_entries() -> None:
    cache = LocalCache(max_entries=3)
    for key in "abc":
        cache.set(key, key, ttl_seconds=60)
    assert cache.get("a") == "a"  # now the most recently used

    cache.set("d", "d", ttl_seconds=60)
    cache.set("e", "e", ttl_seconds=60)

    assert [cache.get(key) for key in "abcde"] == ["a", None, None, "d", "e"]


def test_redis_cache_stays_in_its_namespace(redis_store: RedisStore) -> None:
    neighbour = RedisStore(redis_store.url, namespace=f"{redis_store.namespace}:neighbour")
    ours, theirs = RedisCache(redis_store), RedisCache(neighbour)
    ours.set("k", "1", ttl_seconds=60)
    theirs.set("k", "2", ttl_seconds=60)

    assert ours.invalidate() == 1

    assert ours.get("k") is None
    assert theirs.get("k") == "2"
    neighbour.close()


# --- staging --------------------------------------------------------------------------------


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "count": [1, 2, 3],
            "score": [0.5, float("nan"), -1.25],
            "title": ["Attention", "ü ∑ 漢字", ""],
            "published": pd.to_datetime(
                ["2025-03-18T09:30:00Z", "2025-03-19T00:00:00.123456Z", "2026-01-01T23:59:59Z"],
                format="ISO8601",
                utc=True,
            ),
        }
    )


@pytest.mark.parametrize("value", [{"a": [1, 2.5, None, "x"], "b": {"c": True}}, [1, "two", []]])
def test_staged_json_round_trips(value: Any) -> None:
    blob = encode_staged(value)

    assert blob[:1] == b"J"
    assert not blob.startswith(b"\x80")
    assert decode_staged(blob) == value


def test_staged_dataframe_round_trips_through_arrow() -> None:
    original = frame()

    blob = encode_staged(original)
    restored = decode_staged(blob)

    assert blob[:1] == b"A"
    assert not blob.startswith(b"\x80")
    pd.testing.assert_frame_equal(restored, original)
    assert str(restored["published"].dt.tz) == "UTC"


def test_staging_never_pickles() -> None:
    with pytest.raises(TypeError):
        encode_staged({"not json": {1, 2}})
    with pytest.raises(ValueError, match="unknown staged format"):
        decode_staged(pickle.dumps({"a": 1}))
    with pytest.raises(ValueError, match="unknown staged format"):
        decode_staged(b"Xjunk")


def staging(redis_store: RedisStore, key: str, **options: Any) -> RedisStagingDataset:
    return RedisStagingDataset(key, redis_store.url, namespace=redis_store.namespace, **options)


def test_redis_staging_dataset_saves_and_loads(redis_store: RedisStore) -> None:
    batch = staging(redis_store, "ingestion/fetched_batch")
    table = staging(redis_store, "ingestion/table")
    assert not batch.exists()

    batch.save({"records": [{"id": "2503.00001"}], "through": "2025-03-20"})
    table.save(frame())

    assert batch.exists() and table.exists()
    assert batch.load() == {"records": [{"id": "2503.00001"}], "through": "2025-03-20"}
    pd.testing.assert_frame_equal(table.load(), frame())
    stored = redis_store.client.get(redis_store.key("staging", "ingestion/table"))
    assert stored[:1] == b"A"


def test_redis_staging_dataset_missing_key_is_an_error(redis_store: RedisStore) -> None:
    with pytest.raises(DatasetError, match="nothing staged under 'ingestion/absent'"):
        staging(redis_store, "ingestion/absent").load()


def test_redis_staging_dataset_honours_the_ttl(redis_store: RedisStore) -> None:
    dataset = staging(redis_store, "short", ttl_seconds=0.3)
    dataset.save([1, 2, 3])
    assert dataset.load() == [1, 2, 3]

    time.sleep(0.45)

    assert not dataset.exists()
    with pytest.raises(DatasetError, match="'short'"):
        dataset.load()


def test_redis_staging_dataset_describe_masks_the_password() -> None:
    dataset = RedisStagingDataset("k", "redis://:hunter2@redis:6379/0", ttl_seconds=60)

    assert dataset._describe() == {
        "key": "k",
        "url": "redis://:***@redis:6379/0",
        "ttl_seconds": 60,
    }
    assert "hunter2" not in str(dataset)


# --- rate limiting --------------------------------------------------------------------------


def test_local_token_bucket_spaces_threads() -> None:
    bucket = LocalTokenBucket(rate=10)
    granted: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(2):
            bucket.acquire()
            with lock:
                granted.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(granted) == 6
    assert min(gaps(granted)) >= 0.1 - TOLERANCE, gaps(granted)


@pytest.fixture(params=["redis", "local"])
def burst_bucket(request: pytest.FixtureRequest) -> LocalTokenBucket | RedisTokenBucket:
    """Two requests at once, then one every 100 ms."""
    if request.param == "redis":
        return RedisTokenBucket(request.getfixturevalue("redis_store"), "b", rate=10, capacity=2)
    return LocalTokenBucket(rate=10, capacity=2)


def test_try_acquire_takes_the_burst_then_says_how_long_to_wait(
    burst_bucket: LocalTokenBucket | RedisTokenBucket,
) -> None:
    assert [burst_bucket.try_acquire() for _ in range(2)] == [0.0, 0.0]

    waits = [burst_bucket.try_acquire() for _ in range(3)]  # refused: no token is taken
    assert all(0.05 < wait <= 0.1 for wait in waits), waits
    assert waits == sorted(waits, reverse=True)

    time.sleep(waits[-1] + 0.01)
    assert burst_bucket.try_acquire() == 0.0
    assert burst_bucket.try_acquire() > 0


def test_redis_token_bucket_is_shared_across_processes(redis_store: RedisStore) -> None:
    children = start_together(BUCKET_CHILD, redis_store.url, redis_store.namespace)

    grants = [(float(t), who) for who, child in enumerate(children) for t in finish(child)]

    assert len(grants) == 10
    assert min(gaps([t for t, _ in grants])) >= 0.5 - TOLERANCE, gaps([t for t, _ in grants])
    owners = [who for _, who in sorted(grants)]
    switches = sum(a != b for a, b in itertools.pairwise(owners))
    assert switches >= 4, owners  # both waited their turn: the limit is not per process


@pytest.fixture(scope="module")
def corpus(daily_snapshot: Path) -> list[dict[str, Any]]:
    """Fewer papers than the shared corpus: fewer pages to pace."""
    return load_corpus(daily_snapshot, limit=1500)


@pytest.fixture
def corpus_server(corpus: list[dict[str, Any]]) -> Iterator[ArxivServer]:
    with ArxivServer(corpus=corpus) as server:
        yield server


def test_arxiv_clients_in_two_processes_share_the_rate_limit(
    corpus_server: ArxivServer, corpus: list[dict[str, Any]], redis_store: RedisStore
) -> None:
    start, end = "2025-03-18T00:00:00+00:00", "2025-03-20T00:00:00+00:00"
    expected = sum(
        bool({"cs.CL", "cs.AI"} & set(record["categories"].split()))
        and "2025-03-18" <= record["update_date"] < "2025-03-20"
        for record in corpus
    )

    children = start_together(
        CLIENT_CHILD, corpus_server.url, redis_store.url, redis_store.namespace, start, end
    )

    assert [finish(child) for child in children] == [[str(expected)]] * 2
    requests = [log.time for log in corpus_server.requests]
    assert expected > 100
    assert len(requests) == 2 * math.ceil(expected / 50)
    assert min(gaps(requests)) >= 0.5 - TOLERANCE, gaps(requests)


# --- locks ----------------------------------------------------------------------------------


def test_redis_lock_is_exclusive_and_released_on_exit(redis_store: RedisStore) -> None:
    lock = RedisLock(redis_store, "ingestion", ttl_seconds=1)

    with lock:
        with pytest.raises(LockHeld) as raised, RedisLock(redis_store, "ingestion", ttl_seconds=1):
            pass
        assert f"another ingestion run is in progress (pid {os.getpid()} on {HOST}," in str(
            raised.value
        )

    assert not redis_store.client.exists(lock.key)
    with RedisLock(redis_store, "ingestion", ttl_seconds=1):
        assert redis_store.client.exists(lock.key)


def test_redis_lock_is_renewed_beyond_its_ttl(redis_store: RedisStore) -> None:
    with RedisLock(redis_store, "ingestion", ttl_seconds=1) as lock:
        time.sleep(2.5)

        with pytest.raises(LockHeld), RedisLock(redis_store, "ingestion", ttl_seconds=1):
            pass
        assert redis_store.client.pttl(lock.key) > 0


def test_redis_lock_takes_over_from_a_dead_local_holder(redis_store: RedisStore) -> None:
    lock = RedisLock(redis_store, "ingestion", ttl_seconds=1)
    redis_store.client.set(lock.key, holder(pid=dead_pid()), px=60_000)

    with lock:
        assert json.loads(redis_store.client.get(lock.key))["pid"] == os.getpid()
        assert redis_store.client.pttl(lock.key) <= 1000

    assert not redis_store.client.exists(lock.key)


def test_redis_lock_leaves_a_holder_on_another_host(redis_store: RedisStore) -> None:
    lock = RedisLock(redis_store, "ingestion", ttl_seconds=1)
    other = holder(host="worker-2.invalid", pid=dead_pid())
    redis_store.client.set(lock.key, other, px=60_000)

    with pytest.raises(LockHeld, match=r"on worker-2\.invalid"), lock:
        pass

    assert redis_store.client.get(lock.key).decode() == other


def test_redis_lock_exit_keeps_a_lock_taken_over_by_another(redis_store: RedisStore) -> None:
    lock = RedisLock(redis_store, "ingestion", ttl_seconds=1)
    successor = holder(token="successor")

    with lock:
        redis_store.client.set(lock.key, successor, px=60_000)  # as if ours had expired
        time.sleep(0.5)  # at least one renewal: it must not touch the successor's TTL
        assert redis_store.client.pttl(lock.key) > 50_000

    assert redis_store.client.get(lock.key).decode() == successor


def test_file_lock_held_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "ingestion.lock"
    child = subprocess.Popen(
        [sys.executable, "-c", FILE_LOCK_HOLDER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(LockHeld, match=re.escape(f"pid {child.pid} on {HOST}")), FileLock(path):
            pass
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()

    with FileLock(path):
        assert json.loads(path.read_text())["pid"] == os.getpid()
    assert path.read_text() == ""


def test_run_lock_dataset_picks_redis_or_a_file(tmp_path: Path) -> None:
    on_redis = RunLockDataset("ingestion", redis_url="redis://redis:6379/0", ttl_seconds=30)
    both = RunLockDataset("ingestion", path=str(tmp_path / "x.lock"), redis_url="redis://r:1/0")
    on_file = RunLockDataset("ingestion", path=str(tmp_path / "x.lock"))

    redis_lock, file_lock = on_redis.load(), on_file.load()

    assert isinstance(redis_lock, RedisLock) and isinstance(both.load(), RedisLock)
    assert (redis_lock.key, redis_lock.ttl_ms) == ("arxiv-kedro:lock:ingestion", 30_000)
    assert isinstance(file_lock, FileLock)
    with file_lock, pytest.raises(LockHeld), on_file.load():
        pass
    with pytest.raises(DatasetError, match="needs a file `path` or a `redis_url`"):
        RunLockDataset("ingestion")


def test_run_lock_dataset_describe_masks_the_password() -> None:
    dataset = RunLockDataset("ingestion", redis_url="redis://:hunter2@redis:6379/0")

    assert dataset._describe() == {"name": "ingestion", "redis_url": "redis://:***@redis:6379/0"}
    assert "hunter2" not in str(dataset)


# --- Redis errors ---------------------------------------------------------------------------


def test_redis_with_nothing_listening_is_a_store_error() -> None:
    port = free_port()
    started = time.monotonic()

    with pytest.raises(StoreError) as raised:
        RedisStore(f"redis://:secret@127.0.0.1:{port}/0").ping()

    assert time.monotonic() - started < 6
    assert f"Redis at redis://:***@127.0.0.1:{port}/0" in str(raised.value)
    assert "secret" not in str(raised.value)


@pytest.mark.parametrize(
    ("userinfo", "options"),
    [
        # RESP2 sends AUTH <password>, which a server without a password refuses.
        ("", "?protocol=2"),
        # RESP3 authenticates a user: the default one takes any password, an unknown one none.
        ("nobody", ""),
    ],
)
def test_redis_authentication_failure_is_a_store_error(
    redis_store: RedisStore, userinfo: str, options: str
) -> None:
    parts = urlsplit(redis_store.url)
    server = f"{parts.netloc.rpartition('@')[2]}{parts.path}"

    with pytest.raises(StoreError) as raised:
        RedisStore(f"redis://{userinfo}:s3cr3t-pw@{server}{options}").ping()

    assert f"Redis at redis://{userinfo}:***@{server}" in str(raised.value)
    assert "s3cr3t-pw" not in str(raised.value)
