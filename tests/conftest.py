"""Shared fixtures: the recorded arXiv data, a local arXiv server, isolated relational stores."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from arxiv_kedro.stores.relational import PaperStore
from tests.support.arxiv_server import ArxivServer, shared_data_dir

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# The machine's PostgreSQL (trust auth); TEST_POSTGRES_URL points elsewhere.
POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


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
def store(store_url: str) -> Iterator[PaperStore]:
    paper_store = PaperStore.open(store_url)
    yield paper_store
    paper_store.engine.dispose()
