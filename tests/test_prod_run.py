"""`kedro run --env prod` in subprocesses on local PostgreSQL, Redis and MongoDB-wire servers."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from operator import itemgetter
from pathlib import Path
from urllib.parse import urlsplit

import pymongo
import pytest
import redis
import yaml
from sqlalchemy import select

from arxiv_kedro.sources.arxiv_api import ArxivApiClient, Window
from arxiv_kedro.stores import schema
from arxiv_kedro.stores.documents import SqlDocumentStore
from tests.conftest import REDIS_URL, DocumentServer, free_port
from tests.support.arxiv_server import ArxivServer, delay
from tests.test_kedro_run import (
    END,
    KEDRO,
    PROJECT_ROOT,
    UNTIL,
    committed_papers,
    expected_ids,
    kedro_env,
    kedro_run,
    paper_ids,
    query,
    run_statuses,
    sqlite_url,
    until_param,
    watermarks,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CATEGORIES = ["cs.CL", "cs.AI"]
LOOKBACK = timedelta(days=3)
PAGE_SIZE = 100
# A Redis database of these tests' own: prod keys live in the default namespace `arxiv-kedro`.
REDIS_HOST = f"{urlsplit(REDIS_URL).hostname}:{urlsplit(REDIS_URL).port or 6379}"
PROD_REDIS_URL = f"redis://{REDIS_HOST}/7"
LOCK_KEY = "arxiv-kedro:lock:ingestion"
PASSWORD = "secret"
# A setting each, with the error the run must show: `{port}` is a free (closed) port.
UNUSABLE_STORES = {
    "mongo-unreachable": (
        "MONGO_URI",
        f"mongodb://user:{PASSWORD}@127.0.0.1:{{port}}",
        "document store (MongoDB at mongodb://user:***@127.0.0.1:{port}) failed to connect",
    ),
    # A user the server does not know (its passwordless `default` user takes any password).
    "redis-wrong-credentials": (
        "REDIS_URL",
        f"redis://nobody:{PASSWORD}@{REDIS_HOST}/7",
        f"Redis at redis://nobody:***@{REDIS_HOST}/7 failed to take the ingestion lock",
    ),
    "postgres-unreachable": (
        "DATABASE_URL",
        f"postgresql://postgres:{PASSWORD}@127.0.0.1:{{port}}/x",
        "cannot use the relational store at postgresql://postgres:***@127.0.0.1:{port}/x",
    ),
}
PAPER_FIELDS = ("arxiv_id", "version", "title", "primary_category", "published", "updated", "doi")


def make_project(root: Path) -> Path:
    """The repository's project files (base and prod configuration) in `root`."""
    root.mkdir(exist_ok=True)
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root)
    for env in ("base", "prod"):
        shutil.copytree(PROJECT_ROOT / "conf" / env, root / "conf" / env)
    (root / "conf" / "local").mkdir()
    (root / "src").mkdir()  # the package itself is installed (editable) in the venv
    # Test pacing for the local arXiv server, in an `arxiv_api` entry of prod's own.
    base = yaml.safe_load((root / "conf" / "base" / "catalog.yml").read_text())
    catalog_file = root / "conf" / "prod" / "catalog.yml"
    catalog = yaml.safe_load(catalog_file.read_text())
    catalog["arxiv_api"] = base["arxiv_api"]
    catalog["arxiv_api"]["api"].update(
        delay_seconds=0.05, page_size=PAGE_SIZE, max_retries=1, backoff_seconds=0.1
    )
    catalog_file.write_text(yaml.safe_dump(catalog))
    params = {
        "categories": CATEGORIES,
        "lookback_days": LOOKBACK.days,
        "overlap_hours": 1,
        "slice_hours": 24,
        "until": None,
    }
    (root / "conf" / "prod" / "parameters_ingestion.yml").write_text(
        yaml.safe_dump({"ingestion": params})
    )
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path)


@pytest.fixture
def redis_db() -> Iterator[redis.Redis]:
    """The prod Redis database, empty before and after the test."""
    client = redis.Redis.from_url(PROD_REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip(f"Redis is not reachable at {PROD_REDIS_URL}")
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def mongo(document_server: DocumentServer, mongo_database: str) -> Iterator[pymongo.MongoClient]:
    client = pymongo.MongoClient(document_server.url, serverSelectionTimeoutMS=10_000)
    yield client
    client.drop_database(mongo_database)
    client.close()


@pytest.fixture
def restartable_mongo(
    restartable_document_server: DocumentServer, mongo_database: str
) -> Iterator[pymongo.MongoClient]:
    client = pymongo.MongoClient(restartable_document_server.url, serverSelectionTimeoutMS=10_000)
    yield client
    client.drop_database(mongo_database)
    client.close()


@pytest.fixture
def prod_env(
    postgres_url: str, document_server: DocumentServer, mongo_database: str, redis_db: redis.Redis
) -> dict[str, str]:
    return {
        "DATABASE_URL": postgres_url,
        "MONGO_URI": document_server.url,
        "MONGO_DB": mongo_database,
        "REDIS_URL": PROD_REDIS_URL,
    }


@pytest.fixture
def expected(corpus: list[dict]) -> set[str]:
    """What the prod parameters fetch on a first run until UNTIL."""
    return expected_ids(corpus, CATEGORIES, UNTIL - LOOKBACK, END)


def start_prod_run(project: Path, log: Path, *args: str, **env: str) -> subprocess.Popen:
    """`kedro run --env prod` in the background, its output going to `log`."""
    with log.open("w") as output:
        return subprocess.Popen(
            [str(KEDRO), "run", "--env", "prod", *args],
            cwd=project,
            env=kedro_env(**env),
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def finish(process: subprocess.Popen, log: Path) -> tuple[int, str]:
    return process.wait(timeout=120), log.read_text()


def prod_run(project: Path, *args: str, **env: str) -> tuple[int, str, float]:
    """`kedro run --env prod`; returns its exit code, output and wall time."""
    started = time.monotonic()
    result = kedro_run(project, "--env", "prod", *args, **env)
    return result.returncode, result.stdout, time.monotonic() - started


def api_run(
    project: Path, corpus_server: ArxivServer, env: dict[str, str]
) -> tuple[int, str, float]:
    return prod_run(project, *until_param(UNTIL), **{**env, "ARXIV_API_URL": corpus_server.url})


def articles(mongo: pymongo.MongoClient, database: str) -> list[dict]:
    projection = {"_id": 0, "arxiv_id": 1, "raw": 1, "paper": 1, "source": 1}
    return list(mongo[database]["articles"].find({}, projection))


def paper_rows(url: str) -> dict[str, tuple]:
    columns = [schema.papers.c[name] for name in PAPER_FIELDS]
    return {row[0]: row[1:] for row in query(url, select(*columns))}


def served_entries(corpus_server: ArxivServer) -> list[dict]:
    """Every Atom entry the local server has for the prod query, as the client parses it."""
    client = ArxivApiClient(corpus_server.url, page_size=2000, delay_seconds=0.05)
    window = Window(tuple(CATEGORIES), UNTIL - LOOKBACK, END)
    return [entry for batch in client.fetch(window) for entry in batch.records]


def test_snapshot_run_on_prod_stores_what_the_embedded_default_stores(
    tmp_path: Path,
    shared_data: Path,
    prod_env: dict[str, str],
    mongo: pymongo.MongoClient,
    mongo_database: str,
) -> None:
    snapshot = shared_data / "snapshot" / "arxiv-sample-all-archives.jsonl"
    lines = [json.loads(line) for line in snapshot.read_text().splitlines()]
    prod = make_project(tmp_path / "prod")
    embedded = make_project(tmp_path / "embedded")

    on_prod = prod_run(prod, ARXIV_SNAPSHOT=str(snapshot), **prod_env)
    on_embedded = kedro_run(embedded, ARXIV_SNAPSHOT=str(snapshot))

    assert on_prod[0] == 0, on_prod[1]
    assert on_embedded.returncode == 0, on_embedded.stdout
    assert "fetched 1,628 / new 1,628 / updated 0 / unchanged 0 / quarantined 0" in on_prod[1]
    in_postgres, in_sqlite = paper_rows(prod_env["DATABASE_URL"]), paper_rows(sqlite_url(embedded))
    assert len(in_postgres) == len(lines) == 1628
    assert in_postgres == in_sqlite
    assert not (prod / "data" / "03_primary").exists()  # prod wrote to the servers only
    stored = articles(mongo, mongo_database)
    assert len(stored) == 1628
    assert sorted((a["raw"] for a in stored), key=itemgetter("id")) == sorted(
        lines, key=itemgetter("id")
    )
    embedded_documents = SqlDocumentStore(
        f"sqlite:///{embedded / 'data' / '03_primary' / 'documents.db'}"
    )
    try:
        papers_in_sqlite = {a["arxiv_id"]: a["paper"] for a in embedded_documents.find("articles")}
    finally:
        embedded_documents.close()
    assert {a["arxiv_id"]: a["paper"] for a in stored} == papers_in_sqlite
    # Monitoring ran last, with no champion to judge: no retraining, said where Airflow's flag
    # task (another process) reads it — Redis in prod, a file in the embedded default.
    flag = subprocess.run(
        [str(KEDRO.parent / "python"), str(PROJECT_ROOT / "airflow" / "flag.py"),
         "retrain_recommended", "--field", "retrain"],
        cwd=prod, env=kedro_env(**prod_env), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert flag.returncode == 99, flag.stdout + flag.stderr
    assert "retrain_recommended.retrain is False" in flag.stdout
    saved = embedded / "data" / "08_reporting" / "retrain_recommended.json"
    assert json.loads(saved.read_text())["retrain"] is False


def test_api_run_on_prod(
    project: Path,
    corpus_server: ArxivServer,
    expected: set[str],
    prod_env: dict[str, str],
    mongo: pymongo.MongoClient,
    mongo_database: str,
    redis_db: redis.Redis,
) -> None:
    cached = "arxiv-kedro:cache:paper:2503.00001"  # what the REST API would have cached
    redis_db.set(cached, "{}")
    code, output, _ = api_run(project, corpus_server, prod_env)

    assert code == 0, output
    assert redis_db.exists(cached) == 0, "the hook empties the API cache once papers are written"
    assert f"new {len(expected)} /" in output
    url = prod_env["DATABASE_URL"]
    ids = paper_ids(url)
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == expected
    assert watermarks(url) == dict.fromkeys(CATEGORIES, END)
    assert [status for status, _ in run_statuses(url)] == ["succeeded"]
    stored = articles(mongo, mongo_database)
    assert {a["source"] for a in stored} == {"api"}
    assert sorted((a["raw"] for a in stored), key=itemgetter("id")) == sorted(
        served_entries(corpus_server), key=itemgetter("id")
    )
    assert redis_db.exists(LOCK_KEY) == 0  # released


@pytest.mark.parametrize("case", list(UNUSABLE_STORES))
def test_an_unusable_store_fails_the_run_fast_and_commits_nothing(
    case: str,
    project: Path,
    corpus_server: ArxivServer,
    prod_env: dict[str, str],
    mongo: pymongo.MongoClient,
    mongo_database: str,
    redis_db: redis.Redis,
) -> None:
    setting, value, message = UNUSABLE_STORES[case]
    port = free_port()
    env = {**prod_env, setting: value.format(port=port)}

    code, output, seconds = api_run(project, corpus_server, env)

    assert code != 0
    assert seconds < 60
    assert message.format(port=port) in output
    assert PASSWORD not in output
    assert mongo[mongo_database]["articles"].count_documents({}) == 0
    assert redis_db.exists(LOCK_KEY) == 0
    url = prod_env["DATABASE_URL"]
    if setting == "MONGO_URI":  # found when the first batch's documents are stored
        assert (committed_papers(url), watermarks(url)) == (0, {})
        [(status, error)] = run_statuses(url)
        assert status == "failed" and PASSWORD not in error
    else:  # found before anything is asked of arXiv, or written
        assert corpus_server.requests == []
        assert committed_papers(url) == 0


def test_document_store_outage_mid_run_then_rerun(
    project: Path,
    corpus_server: ArxivServer,
    expected: set[str],
    prod_env: dict[str, str],
    restartable_document_server: DocumentServer,
    restartable_mongo: pymongo.MongoClient,
    mongo_database: str,
) -> None:
    """The document server goes down while pages are fetched: the store step fails on the first
    batch's documents and commits nothing; the rerun stores everything once. (A batch that fails
    after others committed: tests/pipelines/ingestion/test_pipeline.py.)"""
    document_server, mongo = restartable_document_server, restartable_mongo  # stopped mid-run
    prod_env = {**prod_env, "MONGO_URI": document_server.url}
    url = prod_env["DATABASE_URL"]
    corpus_server.inject(delay(0), delay(3))  # the second page comes 3 s after the first
    env = {**prod_env, "ARXIV_API_URL": corpus_server.url}
    started = time.monotonic()
    log = project / "failed-run.log"
    run = start_prod_run(project, log, *until_param(UNTIL), **env)
    try:
        while not corpus_server.requests and run.poll() is None:
            time.sleep(0.05)
        document_server.stop()
        code, output = finish(run, log)
    finally:
        if run.poll() is None:
            run.kill()
        document_server.start()

    assert code != 0
    assert time.monotonic() - started < 60
    assert f"document store (MongoDB at {document_server.url}) failed to" in output
    assert (committed_papers(url), watermarks(url)) == (0, {})
    assert [status for status, _ in run_statuses(url)] == ["failed"]
    assert mongo[mongo_database]["articles"].count_documents({}) == 0

    code, output, _ = api_run(project, corpus_server, prod_env)

    assert code == 0, output
    ids = paper_ids(url)
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == expected
    stored = articles(mongo, mongo_database)
    assert len(stored) == len(expected)
    assert {a["arxiv_id"] for a in stored} == expected
    assert watermarks(url) == dict.fromkeys(CATEGORIES, END)
    assert [status for status, _ in run_statuses(url)] == ["failed", "succeeded"]


def test_a_second_prod_run_while_one_is_in_progress_fails(
    project: Path,
    corpus_server: ArxivServer,
    expected: set[str],
    prod_env: dict[str, str],
    redis_db: redis.Redis,
) -> None:
    # The first run holds the lock for at least 20 s: the second one needs ~10 s to start.
    corpus_server.inject(*[delay(5)] * 4)
    env = {**prod_env, "ARXIV_API_URL": corpus_server.url}
    log = project / "first-run.log"
    first = start_prod_run(project, log, *until_param(UNTIL), **env)
    try:
        deadline = time.monotonic() + 30
        while not redis_db.exists(LOCK_KEY) and time.monotonic() < deadline:
            time.sleep(0.05)
        code, output, _ = prod_run(project, *until_param(UNTIL), **env)
        first_code, first_output = finish(first, log)
    finally:
        if first.poll() is None:
            first.kill()

    assert code != 0
    assert "LockHeld: another ingestion run is in progress (pid " in output
    assert first_code == 0, first_output
    url = prod_env["DATABASE_URL"]
    assert [status for status, _ in run_statuses(url)] == ["succeeded"]
    assert sorted(paper_ids(url)) == sorted(expected)
    assert redis_db.exists(LOCK_KEY) == 0
