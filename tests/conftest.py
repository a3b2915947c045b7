"""Shared fixtures: the recorded arXiv data, a local arXiv server, isolated relational stores."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pymongo
import pytest
import redis

from arxiv_kedro.coordination.redis_store import RedisStore
from arxiv_kedro.stores import masked
from arxiv_kedro.stores.relational.engine import Database
from tests.support.arxiv_server import ArxivServer, load_corpus, shared_data_dir

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# The machine's PostgreSQL (trust auth); TEST_POSTGRES_URL points elsewhere.
POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
# The machine's Redis; every test gets its own key namespace, deleted afterwards.
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# A MongoDB server to test against instead of starting nx-27017 (CI: a `mongo` service).
EXTERNAL_MONGO_URI = os.environ.get("TEST_MONGO_URI")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` (or $ARXIV_SHARED_DATA); tests that need it skip where it is absent."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("the recorded arXiv data (../shared/data, or $ARXIV_SHARED_DATA) is absent")
    return path


@pytest.fixture(scope="session")
def daily_snapshot(shared_data: Path) -> Path:
    return shared_data / "snapshot" / "arxiv-daily-2025-03_2026-04.jsonl.gz"


@pytest.fixture(scope="session")
def corpus(daily_snapshot: Path) -> list[dict]:
    """The first 3,000 papers of the daily snapshot, listed 2025-03-18 … 2025-04-03 (each at
    00:00 UTC of its listing day)."""
    return load_corpus(daily_snapshot, limit=3000)


@pytest.fixture
def corpus_server(corpus: list[dict]) -> Iterator[ArxivServer]:
    """A local arXiv API answering category/date queries from `corpus`."""
    with ArxivServer(corpus=corpus) as server:
        yield server


@pytest.fixture
def arxiv_server(shared_data: Path) -> Iterator[ArxivServer]:
    """A local arXiv API replaying the 2026 recordings and the 2016 legacy feeds."""
    api = shared_data / "arxiv-api"
    with ArxivServer(api / "recorded-2026", api / "legacy-2016") as server:
        yield server


def _postgres_available() -> bool:
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database of its own for this test session, dropped at the end."""
    if not _postgres_available():
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}")
    name = f"arxiv_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    admin = psycopg.conninfo.conninfo_to_dict(POSTGRES_ADMIN_URL)
    url = f"postgresql://{admin.get('user', 'postgres')}@{admin.get('host', '127.0.0.1')}:"
    url += f"{admin.get('port', 5432)}/{name}"
    try:
        yield url
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    """A fresh schema per test inside the session database (search_path points at it)."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{postgres_database}?options=-csearch_path%3D{schema}"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'arxiv.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> str:
    """Each test using it runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(store_url: str) -> Iterator[Database]:
    """The relational store, migrated, on SQLite and on PostgreSQL (a schema of its own)."""
    database = Database.open(store_url)
    yield database
    database.engine.dispose()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DocumentServer:
    """An nx-27017 process (MongoDB wire protocol on SQLite) that tests can stop and restart."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    def start(self) -> DocumentServer:
        executable = shutil.which("nx-27017") or str(Path(sys.executable).parent / "nx-27017")
        self.process = subprocess.Popen(
            [
                *(executable, "--data-dir", str(self.data_dir), "-p", str(self.port)),
                # its own pid and log files: the defaults in /tmp are shared by every instance
                *("--pid-file", str(self.data_dir / "nx-27017.pid")),
                *("--log-file", str(self.data_dir / "nx-27017.log")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"nx-27017 did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


class ExternalDocumentServer(DocumentServer):
    """The MongoDB server at TEST_MONGO_URI (CI: the real `mongo` image), which the suite did
    not start and never stops; it drops the test databases (`arxiv_test_*`) at the end."""

    def __init__(self, url: str):
        self._url = url
        self.process = None

    @property
    def url(self) -> str:
        return self._url

    def start(self) -> DocumentServer:
        with pymongo.MongoClient(self.url, serverSelectionTimeoutMS=10_000) as client:
            client.admin.command("ping")
        return self

    def stop(self) -> None:
        raise RuntimeError(
            f"{masked(self.url)} is not the suite's to stop: use `restartable_document_server`"
        )

    def drop_test_databases(self) -> None:
        with pymongo.MongoClient(self.url, serverSelectionTimeoutMS=10_000) as client:
            for name in client.list_database_names():
                if name.startswith("arxiv_test_"):
                    client.drop_database(name)


@pytest.fixture(scope="session")
def document_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DocumentServer]:
    """The MongoDB server of the session: TEST_MONGO_URI's when set (CI's real MongoDB), else
    an nx-27017 server on a free port with a temporary data directory (one SQLite file per
    database, so each test's database is its own)."""
    if EXTERNAL_MONGO_URI:
        external = ExternalDocumentServer(EXTERNAL_MONGO_URI).start()
        yield external
        external.drop_test_databases()
        return
    server = DocumentServer(tmp_path_factory.mktemp("nx-27017")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def restartable_document_server(
    tmp_path_factory: pytest.TempPathFactory, document_server: DocumentServer
) -> Iterator[DocumentServer]:
    """A server that outage tests may stop and start: nx-27017, the session's own unless that
    one is external."""
    if not isinstance(document_server, ExternalDocumentServer):
        yield document_server
        return
    server = DocumentServer(tmp_path_factory.mktemp("nx-27017-restartable")).start()
    yield server
    server.stop()


@pytest.fixture
def mongo_database() -> str:
    return f"arxiv_test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def redis_store() -> Iterator[RedisStore]:
    """The machine's Redis under a namespace of this test's own; its keys are removed after."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError:
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    store = RedisStore(REDIS_URL, namespace=f"arxiv-test-{uuid.uuid4().hex[:12]}")
    yield store
    keys = list(store.client.scan_iter(match=f"{store.namespace}:*"))
    if keys:
        store.client.delete(*keys)
    store.close()
