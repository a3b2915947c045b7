"""Token buckets: at most N requests per second to a service, for one process or, on Redis, for
every process of the deployment (arXiv asks for one request every 3 s)."""

from __future__ import annotations

import threading
import time
from typing import Protocol

from arxiv_kedro.coordination.redis_store import RedisStore


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
