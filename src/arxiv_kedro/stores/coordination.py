"""Redis for what several processes share — a TTL cache, staging between pipeline steps, a
token-bucket rate limiter and a run lock — plus the in-process/file stand-ins of the embedded
default."""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import socket
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import pyarrow as pa
import redis

from arxiv_kedro.stores import StoreError, masked


class RedisStore:
    """A Redis connection with bounded timeouts, keys under one namespace, clear errors."""

    def __init__(self, url: str, namespace: str = "arxiv-kedro", timeout_seconds: float = 5.0):
        self.url = url
        self.namespace = namespace
        self.client = redis.Redis.from_url(
            url, socket_connect_timeout=timeout_seconds, socket_timeout=timeout_seconds
        )

    def __repr__(self) -> str:
        return f"RedisStore({masked(self.url)!r}, namespace={self.namespace!r})"

    def key(self, *parts: str) -> str:
        return ":".join((self.namespace, *parts))

    @contextmanager
    def guard(self, action: str) -> Iterator[None]:
        """Turn Redis errors into a `StoreError` naming the server (password masked)."""
        try:
            yield
        except redis.RedisError as exc:
            raise StoreError(f"Redis at {masked(self.url)} failed to {action}: {exc}") from exc

    def ping(self) -> None:
        with self.guard("answer a ping"):
            self.client.ping()

    def close(self) -> None:
        self.client.close()


# --- cache ----------------------------------------------------------------------------------


class Cache(Protocol):
    """Where the REST API keeps serialized responses: Redis in prod, this process's memory else."""

    def get(self, key: str) -> str | None: ...
    def set(self, key: str, value: str, ttl_seconds: float) -> None: ...
    def invalidate(self, prefix: str = "") -> int: ...


_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")  # SCAN MATCH patterns are globs


class RedisCache:
    """Text values under `<namespace>:cache:<key>` with a TTL."""

    def __init__(self, store: RedisStore):
        self.store = store

    def get(self, key: str) -> str | None:
        with self.store.guard("read the cache"):
            value = self.store.client.get(self.store.key("cache", key))
        return None if value is None else value.decode()

    def set(self, key: str, value: str, ttl_seconds: float) -> None:
        with self.store.guard("write the cache"):
            self.store.client.set(self.store.key("cache", key), value, px=int(ttl_seconds * 1000))

    def invalidate(self, prefix: str = "") -> int:
        """Drop the entries whose key starts with `prefix`; returns how many."""
        pattern = _GLOB_SPECIAL.sub(r"\\\1", self.store.key("cache", prefix)) + "*"  # literal
        removed = 0
        with self.store.guard("invalidate the cache"):
            for keys in _batches(self.store.client.scan_iter(match=pattern, count=500), 500):
                removed += self.store.client.unlink(*keys)
        return removed


class LocalCache:
    """The embedded default: the same contract in this process's memory, holding at most
    `max_entries` (the least recently used go first)."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            expires, value = self._entries.get(key, (0.0, None))
            if expires <= time.monotonic():
                self._entries.pop(key, None)
                return None
            self._entries.move_to_end(key)
        return value

    def set(self, key: str, value: str, ttl_seconds: float) -> None:
        with self._lock:
            self._entries[key] = (time.monotonic() + ttl_seconds, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def invalidate(self, prefix: str = "") -> int:
        with self._lock:
            doomed = [key for key in self._entries if key.startswith(prefix)]
            for key in doomed:
                del self._entries[key]
        return len(doomed)


def _batches(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# --- staging between pipeline steps ---------------------------------------------------------

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


# --- rate limiting --------------------------------------------------------------------------


class RateLimiter(Protocol):
    def acquire(self) -> float:
        """Block until the caller may go; returns the seconds waited."""
        ...


# Reserve one token; the bucket may go negative, which queues callers fairly: each learns how
# long to wait for its own slot. Redis's clock is the clock, so every process agrees.
_RESERVE = """
local rate, capacity = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + (now - at) * rate) - 1
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate * 1000) + 1000)
if tokens >= 0 then return '0' end
return tostring(-tokens / rate)
"""


# Take one token only if there is one; otherwise say how long until there is (non-blocking).
_TAKE = """
local rate, capacity = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
tokens = math.min(capacity, tokens + (now - (tonumber(state[2]) or now)) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisTokenBucket:
    """At most `capacity` requests at once, refilled at `rate` per second, for every process
    sharing the Redis key (e.g. one arXiv request per 3 s for the whole deployment)."""

    def __init__(self, store: RedisStore, name: str, rate: float, capacity: float = 1.0):
        self.store, self.key = store, store.key("ratelimit", name)
        self.rate, self.capacity = rate, capacity
        self._reserve = store.client.register_script(_RESERVE)
        self._take = store.client.register_script(_TAKE)

    def acquire(self) -> float:
        with self.store.guard("reserve a rate-limit slot"):
            wait = float(self._reserve(keys=[self.key], args=[self.rate, self.capacity]))
        if wait > 0:
            time.sleep(wait)
        return wait

    def try_acquire(self) -> float:
        """Take a token if one is there (returns 0); else the seconds until one will be."""
        with self.store.guard("check a rate limit"):
            return float(self._take(keys=[self.key], args=[self.rate, self.capacity]))


class LocalTokenBucket:
    """The same bucket for the threads of one process (the embedded default)."""

    def __init__(self, rate: float, capacity: float = 1.0):
        self.rate, self.capacity = rate, capacity
        self._tokens, self._at = capacity, time.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        with self._lock:
            self._tokens = self._refilled() - 1
            wait = max(0.0, -self._tokens / self.rate)
        if wait > 0:
            time.sleep(wait)
        return wait

    def try_acquire(self) -> float:
        """Take a token if one is there (returns 0); else the seconds until one will be."""
        with self._lock:
            self._tokens = self._refilled()
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rate

    def _refilled(self) -> float:
        """The tokens there now (call with the lock held)."""
        now = time.monotonic()
        tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now
        return tokens


# --- the run lock ---------------------------------------------------------------------------


class LockHeld(RuntimeError):
    """Another run holds the lock."""


def _holder() -> dict[str, Any]:
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "since": datetime.now(UTC).isoformat(),
    }


def _is_dead_local_process(holder: dict[str, Any]) -> bool:
    if holder.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, KeyError, ValueError):
        return False
    return False


_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisLock:
    """A lock shared by every process on the Redis server.

    Held with a TTL that a background thread renews, so a killed holder frees it within
    `ttl_seconds`; a holder on this host whose process is gone is taken over at once.
    """

    def __init__(self, store: RedisStore, name: str, ttl_seconds: float = 60.0):
        self.store, self.name, self.key = store, name, store.key("lock", name)
        self.ttl_ms = int(ttl_seconds * 1000)
        self._value: str | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def __enter__(self) -> RedisLock:
        value = json.dumps({"token": uuid.uuid4().hex, **_holder()})
        client = self.store.client
        with self.store.guard(f"take the {self.name} lock"):
            if not client.set(self.key, value, nx=True, px=self.ttl_ms):
                current = client.get(self.key)
                holder = json.loads(current) if current else {}
                if not (current and _is_dead_local_process(holder)):
                    raise LockHeld(_held_message(self.name, holder))
                # The holder died without releasing: take over only if it is still that one.
                if client.eval(_RELEASE, 1, self.key, current) != 1 or not client.set(
                    self.key, value, nx=True, px=self.ttl_ms
                ):
                    raise LockHeld(_held_message(self.name, holder))
        self._value = value
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew, name=f"{self.name}-lock", daemon=True)
        self._renewer.start()
        return self

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl_ms / 3000):
            try:
                self.store.client.eval(_RENEW, 1, self.key, self._value, self.ttl_ms)
            except redis.RedisError:
                continue  # the next renewal tries again; the TTL leaves room for two misses

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        with self.store.guard(f"release the {self.name} lock"):
            self.store.client.eval(_RELEASE, 1, self.key, self._value)


class FileLock:
    """The embedded default: an exclusive `flock` on a file, released when the process ends."""

    def __init__(self, path: str | os.PathLike[str], name: str = "ingestion"):
        self.path, self.name = Path(path), name
        self._file: io.TextIOWrapper | None = None

    def __enter__(self) -> FileLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            text = handle.read()
            handle.close()
            raise LockHeld(_held_message(self.name, json.loads(text) if text else {})) from None
        handle.truncate(0)
        handle.write(json.dumps(_holder()))
        handle.flush()
        self._file = handle
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            self._file.truncate(0)
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def _held_message(name: str, holder: dict[str, Any]) -> str:
    who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}"
    return f"another {name} run is in progress ({who}, since {holder.get('since', '?')})"
