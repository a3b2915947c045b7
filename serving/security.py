"""API keys, per-client rate limits and request size limits."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections import OrderedDict
from typing import Annotated, Any

import anyio
from fastapi import Header, HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from arxiv_kedro.coordination.rate_limit import LocalTokenBucket, RedisTokenBucket
from arxiv_kedro.coordination.redis_store import RedisStore
from arxiv_kedro.stores import StoreError
from serving.services import Svc
from serving.settings import Settings

logger = logging.getLogger(__name__)
KEY_HEADER = "X-API-Key"
ApiKey = Annotated[str | None, Header(alias=KEY_HEADER, description="an API key (API_KEYS)")]


def check_key(settings: Settings, key: str | None) -> None:
    if not settings.keys:
        return
    if not key:
        raise HTTPException(401, f"this endpoint needs an API key in the {KEY_HEADER} header")
    if not any(secrets.compare_digest(key.encode(), k.encode()) for k in settings.keys):
        raise HTTPException(403, "this API key is not valid")


async def write_key(svc: Svc, key: ApiKey = None) -> None:
    """For endpoints that write or trigger work: a valid key whenever API_KEYS is set."""
    check_key(svc.settings, key)


async def read_key(svc: Svc, key: ApiKey = None) -> None:
    """For reads: a valid key only with API_READ_REQUIRES_KEY=true."""
    if svc.settings.read_requires_key:
        check_key(svc.settings, key)


class ClientLimiter:
    """A token bucket per client (its API key, else its address): `burst` requests at once,
    refilled at `per_minute`. On Redis every API process shares the buckets."""

    MAX_LOCAL_CLIENTS = 10_000

    def __init__(self, per_minute: int, burst: int, store: RedisStore | None = None):
        self.rate, self.burst, self.store = per_minute / 60.0, float(burst), store
        self._local: OrderedDict[str, LocalTokenBucket] = OrderedDict()

    def wait(self, client: str) -> float:
        """0 when the client may go on, else the seconds until it may."""
        if self.store is not None:
            bucket = RedisTokenBucket(self.store, f"api:{client}", self.rate, self.burst)
            return bucket.try_acquire()
        local = self._local.get(client)
        if local is None:
            local = self._local[client] = LocalTokenBucket(self.rate, self.burst)
            if len(self._local) > self.MAX_LOCAL_CLIENTS:
                self._local.popitem(last=False)
        self._local.move_to_end(client)
        return local.try_acquire()


class _BodyTooLarge(HTTPException):
    """Raised while a streamed body comes in. An HTTPException, so FastAPI's body parsing lets
    it through (it turns any other error into a 400) and the app answers 413."""

    def __init__(self, limit: int):
        super().__init__(413, f"the request body is over {limit} bytes")


class Guard:
    """ASGI middleware: 413 for bodies over `max_body_bytes` (declared or streamed), 429 with
    Retry-After for clients over their rate. Health checks are never limited; a rate-limit
    store that fails lets requests through (logged) rather than taking the API down."""

    def __init__(self, app: ASGIApp, settings: Settings, limiter: ClientLimiter | None):
        self.app, self.settings, self.limiter = app, settings, limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        limit = self.settings.max_body_bytes
        declared = headers.get(b"content-length", b"0")
        if not declared.isdigit():
            await _problem(send, 400, "the Content-Length header is not a number")
            return
        if int(declared) > limit:
            await _problem(send, 413, f"the request body is over {limit} bytes")
            return
        if self.limiter is not None and not scope["path"].startswith("/health"):
            wait = await self._wait(self._client(scope, headers))
            if wait > 0:
                retry = str(max(1, round(wait + 0.5)))
                await _problem(
                    send, 429, "too many requests: slow down", [(b"retry-after", retry.encode())]
                )
                return

        received, started = 0, False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(limit)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _BodyTooLarge:
            if not started:
                await _problem(send, 413, f"the request body is over {limit} bytes")

    def _client(self, scope: Scope, headers: dict[bytes, bytes]) -> str:
        key = headers.get(KEY_HEADER.lower().encode())
        if key and key.decode("latin-1") in self.settings.keys:
            return "key:" + hashlib.sha256(key).hexdigest()[:16]  # never the key itself
        host = (scope.get("client") or ("unknown", 0))[0]
        return f"ip:{host}"

    async def _wait(self, client: str) -> float:
        assert self.limiter is not None
        try:
            if self.limiter.store is None:
                return self.limiter.wait(client)
            return await anyio.to_thread.run_sync(self.limiter.wait, client)
        except StoreError as exc:
            logger.warning("Rate limit not checked: %s", exc)
            return 0.0


async def _problem(
    send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"detail": detail}).encode()
    head: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": head + (headers or [])})
    await send({"type": "http.response.body", "body": body})
