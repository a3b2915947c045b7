"""Run locks: two runs of a pipeline never overlap (Redis for the deployment, `flock` on one
machine); a holder that died is detected."""

from __future__ import annotations

import fcntl
import io
import json
import os
import socket
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from arxiv_kedro.coordination.redis_store import RedisStore


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
