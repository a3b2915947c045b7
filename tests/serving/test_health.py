"""/health and /health/ready; a store that is down makes the API answer 503, never 500."""

from __future__ import annotations

import contextlib
import copy
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from arxiv_kedro import __version__
from tests.conftest import free_port
from tests.serving.conftest import OLD_STYLE_ID, World, write_conf

DATA_ENDPOINTS = (
    "/v1/papers",
    f"/v1/papers/{OLD_STYLE_ID}",
    "/v1/search?q=galaxy",
    "/v1/categories",
    "/v1/stats",
)
CACHE = "arxiv_kedro.datasets.ApiCacheDataset"
EMBEDDED = pytest.mark.parametrize("world", ["embedded"], indirect=True)
PROD = pytest.mark.parametrize(
    "world", [pytest.param("prod", marks=pytest.mark.postgres)], indirect=True
)


def test_liveness(client: TestClient) -> None:
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": __version__}


def test_ready_when_every_dependency_answers(client: TestClient, world: World) -> None:
    response = client.get("/health/ready")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"papers", "documents", "cache", "model"}
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["papers"]["detail"] == f"{len(world.corpus.records):,} papers"
    cache = "Redis reachable" if world.name == "prod" else "in-process"
    assert body["checks"]["cache"]["detail"] == cache
    assert body["checks"]["model"]["detail"] == "arxiv-classifier version 1"


@pytest.fixture
def start_with(
    world: World, start: Callable[..., TestClient], tmp_path: Path
) -> Callable[..., TestClient]:
    """`start_with(stores, entries, **settings)`: an API over the world's catalog with some stores
    moved (`{"relational_url": ...}`) and some entries changed (`{"api_cache": {...}}`), its
    conf written to tmp_path."""

    def start_app(
        stores: dict[str, str], entries: dict[str, dict[str, Any]] | None = None, **settings: Any
    ) -> TestClient:
        changed = copy.deepcopy(world.entries)
        for name, change in (entries or {}).items():
            changed[name] = {**changed.get(name, {}), **change}
        write_conf(tmp_path / "conf", "broken", {**world.stores_globals, **stores}, changed)
        return start(conf_source=tmp_path / "conf", kedro_env="broken", **settings)

    return start_app


def closed_port_url(scheme: str) -> str:
    return f"{scheme}://127.0.0.1:{free_port()}"


def check_unavailable(api: TestClient, failing: str, named: str) -> None:
    ready = api.get("/health/ready")

    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert ready.json()["status"] == "not ready"
    assert checks[failing]["ok"] is False
    assert named in checks[failing]["detail"]
    assert [name for name, check in checks.items() if not check["ok"]] == [failing]
    assert api.get("/health").status_code == 200


@EMBEDDED
def test_a_paper_store_that_is_down_makes_reads_unavailable(
    start_with: Callable[..., TestClient],
) -> None:
    url = closed_port_url("postgresql") + "/arxiv"
    api = start_with({"relational_url": url})

    check_unavailable(api, "papers", url.split("//")[1])
    for path in DATA_ENDPOINTS:
        response = api.get(path)

        assert response.status_code == 503, (path, response.text)
        assert "relational store" in response.json()["detail"]


@EMBEDDED
def test_a_document_store_that_is_down_makes_reads_unavailable(
    start_with: Callable[..., TestClient],
) -> None:
    url = closed_port_url("mongodb")
    api = start_with({"documents_url": url, "documents_database": "arxiv"})

    check_unavailable(api, "documents", url)
    response = api.get("/v1/papers")  # each request waits for the server selection timeout

    assert response.status_code == 503
    assert "document store" in response.json()["detail"]


@EMBEDDED
def test_a_cache_that_is_down_only_costs_speed(start_with: Callable[..., TestClient]) -> None:
    url = closed_port_url("redis") + "/0"
    api = start_with({}, {"api_cache": {"type": CACHE, "redis_url": url}})

    check_unavailable(api, "cache", url)
    for path in DATA_ENDPOINTS:
        assert api.get(path).status_code == 200, path


@EMBEDDED
def test_a_rate_limit_store_that_is_down_lets_requests_through(
    start_with: Callable[..., TestClient],
) -> None:
    url = closed_port_url("redis") + "/0"
    api = start_with(
        {},
        {"api_cache": {"type": CACHE, "redis_url": url}},
        rate_limit_per_minute=1,
        rate_limit_burst=1,
    )

    assert [api.get("/v1/categories").status_code for _ in range(3)] == [200] * 3


class Proxy:
    """A TCP forwarder to a server, which a test cuts (every connection dropped, new ones
    refused) and restores, on the same port."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.port = free_port()
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None

    def start(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def cut(self) -> None:
        assert self._listener is not None
        for sock in (self._listener, *self._sockets):
            with contextlib.suppress(OSError):  # shutdown wakes a thread blocked on the socket
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                downstream, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._sockets += [downstream, upstream]
            for source, sink in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass


@pytest.fixture
def postgres_proxy(world: World) -> Iterator[tuple[Proxy, str]]:
    """A proxy to the world's PostgreSQL and the paper store URL through it."""
    url = make_url(world.stores_globals["relational_url"])
    proxy = Proxy(url.host, url.port)
    proxy.start()
    yield proxy, url.set(port=proxy.port).render_as_string(hide_password=False)
    proxy.cut()


@PROD
def test_a_database_lost_while_serving_makes_reads_unavailable_until_it_is_back(
    start_with: Callable[..., TestClient], postgres_proxy: tuple[Proxy, str]
) -> None:
    proxy, url = postgres_proxy
    api = start_with({"relational_url": url}, cache_ttl_seconds=0)  # every read asks
    assert api.get("/v1/papers").status_code == 200

    proxy.cut()
    ready = api.get("/health/ready")
    lost = {path: api.get(path) for path in DATA_ENDPOINTS}
    proxy.start()
    back = api.get("/v1/papers")

    assert ready.status_code == 503
    assert ready.json()["checks"]["papers"]["ok"] is False
    for path, response in lost.items():
        assert response.status_code == 503, (path, response.text)
        assert "relational store" in response.json()["detail"]
    assert back.status_code == 200
