"""`kedro run` end to end in subprocesses: snapshot smoke run, API runs, an outage, a hard crash."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from arxiv_kedro.stores import schema
from arxiv_kedro.stores.documents import SqlDocumentStore
from arxiv_kedro.stores.relational.engine import make_engine
from tests.support.arxiv_server import ArxivServer

PROJECT_ROOT = Path(__file__).resolve().parents[1]
KEDRO = Path(sys.executable).parent / "kedro"
CATEGORIES = ["cs.CL", "cs.AI"]
UNTIL = datetime(2025, 4, 3, 12, 0, tzinfo=UTC)
END = UNTIL + timedelta(minutes=1)  # the last window's end, where the watermarks land
ORPHANS = (
    "SELECT count(*) FROM paper_authors l LEFT JOIN papers p ON p.id = l.paper_id "
    "WHERE p.id IS NULL",
    "SELECT count(*) FROM paper_authors l LEFT JOIN authors a ON a.id = l.author_id "
    "WHERE a.id IS NULL",
    "SELECT count(*) FROM paper_categories l LEFT JOIN papers p ON p.id = l.paper_id "
    "WHERE p.id IS NULL",
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The repository's project files in tmp_path, so `data/` lands there."""
    shutil.copy(PROJECT_ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(PROJECT_ROOT / "conf" / "base", tmp_path / "conf" / "base")
    (tmp_path / "conf" / "local").mkdir()
    (tmp_path / "src").mkdir()  # the package itself is installed (editable) in the venv
    return tmp_path


def use_api(project: Path, categories: list[str], lookback_days: int, **api) -> None:
    """Point `arxiv_api` at $ARXIV_API_URL with test-friendly pacing and set the categories."""
    settings = {"delay_seconds": 0.05, "page_size": 200, "max_retries": 1, **api}
    source = {
        "type": "arxiv_kedro.datasets.ArxivApiDataset",
        "api": {"url": "${env:ARXIV_API_URL}", "backoff_seconds": 0.1, **settings},
    }
    params = {
        "categories": categories,
        "lookback_days": lookback_days,
        "overlap_hours": 24,
        "slice_hours": 24,
        "until": None,
    }
    local = project / "conf" / "local"
    (local / "catalog.yml").write_text(yaml.safe_dump({"arxiv_api": source}))
    (local / "parameters_ingestion.yml").write_text(yaml.safe_dump({"ingestion": params}))


# Settings a test passes explicitly, never inherited from the developer's shell (nor from the
# test process: mlflow.set_registry_uri() exports MLFLOW_REGISTRY_URI to every child process).
STORE_SETTINGS = (
    *("DATABASE_URL", "ARXIV_SNAPSHOT", "ARXIV_API_URL"),
    *("MONGO_URI", "MONGO_DB", "REDIS_URL", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"),
    *("MISTRAL_API_KEY", "MISTRAL_SERVER_URL", "MISTRAL_MODEL"),
)


def kedro_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in STORE_SETTINGS}
    return {**env, "KEDRO_DISABLE_TELEMETRY": "true", "COLUMNS": "1000", **overrides}


def until_param(until: datetime) -> list[str]:
    return ["--params", f"ingestion.until={until.isoformat()}"]


def kedro_run(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KEDRO), "run", *args],
        cwd=project,
        env=kedro_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,  # a hang guard: a training run fits 5 times, on a possibly busy machine
    )


def sqlite_url(project: Path) -> str:
    """Where the base catalog puts the store when DATABASE_URL is unset."""
    return f"sqlite:///{project / 'data' / '03_primary' / 'arxiv.db'}"


def article_count(project: Path) -> int:
    """Documents in the base catalog's embedded document store."""
    documents = SqlDocumentStore(f"sqlite:///{project / 'data' / '03_primary' / 'documents.db'}")
    try:
        return documents.count("articles")
    finally:
        documents.close()


def query(url: str, statement) -> list[tuple]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(statement)]
    finally:
        engine.dispose()


def paper_ids(url: str) -> list[str]:
    return [arxiv_id for (arxiv_id,) in query(url, select(schema.papers.c.arxiv_id))]


def run_statuses(url: str) -> list[tuple[str, str | None]]:
    runs = schema.ingestion_runs
    return query(url, select(runs.c.status, runs.c.error).order_by(runs.c.id))


def watermarks(url: str) -> dict[str, datetime]:
    return dict(query(url, select(schema.watermarks.c.category, schema.watermarks.c.through)))


def expected_ids(corpus: list[dict], categories: list[str], start: datetime, end: datetime):
    """Corpus papers in `categories` listed (at 00:00 UTC) in [start, end)."""
    return {
        record["id"]
        for record in corpus
        if set(record["categories"].split()) & set(categories)
        and start <= datetime.fromisoformat(record["update_date"]).replace(tzinfo=UTC) < end
    }


def test_smoke_snapshot_run(project: Path, shared_data: Path) -> None:
    snapshot = shared_data / "snapshot" / "kaggle-head-0704.0001-0200.jsonl"

    result = kedro_run(project, ARXIV_SNAPSHOT=str(snapshot))

    assert result.returncode == 0, result.stdout
    assert "fetched 200 / new 200 / updated 0 / unchanged 0 / quarantined 0 /" in result.stdout
    assert "papers/s" in result.stdout
    report = json.loads((project / "data" / "08_reporting" / "ingestion_report.json").read_text())
    assert (report["status"], report["fetched"], report["new"]) == ("succeeded", 200, 200)
    assert len(set(paper_ids(sqlite_url(project)))) == 200


def test_the_backfill_pipeline_runs_by_its_name(project: Path, shared_data: Path) -> None:
    snapshot = shared_data / "snapshot" / "kaggle-head-0704.0001-0200.jsonl"

    result = kedro_run(project, "--pipeline", "backfill", ARXIV_SNAPSHOT=str(snapshot))

    assert result.returncode == 0, result.stdout
    assert "fetched 200 / new 200 /" in result.stdout
    assert "Summarization done" not in result.stdout  # the backfill alone


@pytest.mark.slow
@pytest.mark.postgres
def test_api_run_into_sqlite_and_postgres_stores_the_same_papers(
    project: Path, corpus_server: ArxivServer, corpus: list[dict], postgres_url: str
) -> None:
    use_api(project, CATEGORIES, lookback_days=3)
    expected = expected_ids(corpus, CATEGORIES, UNTIL - timedelta(days=3), END)

    into_sqlite = kedro_run(project, *until_param(UNTIL), ARXIV_API_URL=corpus_server.url)
    into_postgres = kedro_run(
        project, *until_param(UNTIL), ARXIV_API_URL=corpus_server.url, DATABASE_URL=postgres_url
    )

    assert into_sqlite.returncode == 0, into_sqlite.stdout
    assert into_postgres.returncode == 0, into_postgres.stdout
    assert sorted(paper_ids(sqlite_url(project))) == sorted(expected)
    assert sorted(paper_ids(postgres_url)) == sorted(expected)
    assert f"new {len(expected)} /" in into_postgres.stdout
    assert watermarks(sqlite_url(project)) == dict.fromkeys(CATEGORIES, END)
    assert watermarks(postgres_url) == dict.fromkeys(CATEGORIES, END)


@pytest.mark.slow
def test_unreachable_api_fails_the_run_clearly(project: Path) -> None:
    use_api(project, CATEGORIES, lookback_days=1)
    unreachable = "http://127.0.0.1:1/api/query"

    result = kedro_run(project, *until_param(UNTIL), ARXIV_API_URL=unreachable)

    assert result.returncode != 0
    assert "ArxivApiError" in result.stdout
    assert "arXiv API request for search_query='(cat:cs.CL OR cat:cs.AI) AND" in result.stdout
    assert f"[{unreachable}?search_query=" in result.stdout
    [(status, error)] = run_statuses(sqlite_url(project))
    assert status == "failed"
    assert error.startswith("ArxivApiError: arXiv API request for search_query=")
    assert "gave up after 2 attempts" in error
    assert watermarks(sqlite_url(project)) == {}
    assert not (project / "data" / "08_reporting" / "ingestion_report.json").exists()


def committed_papers(url: str) -> int:
    """Papers the store shows right now; 0 before the first run has created the tables."""
    try:
        return query(url, text("SELECT count(*) FROM papers"))[0][0]
    except DBAPIError:
        return 0


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["fetch", "store"])
@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_killed_run_resumes_without_loss_or_duplicates(
    backend: str,
    phase: str,
    project: Path,
    corpus_server: ArxivServer,
    corpus: list[dict],
    request: pytest.FixtureRequest,
) -> None:
    """SIGKILL while pages are fetched, or while batches are stored: the rerun stores every
    paper exactly once and, after a kill in the store step, resumes from the watermarks."""
    url = (
        request.getfixturevalue("postgres_url") if backend == "postgresql" else sqlite_url(project)
    )
    categories = ["cs.CV", "cs.CL", "cs.LG", "cs.AI"]
    lookback = timedelta(days=17)
    expected = expected_ids(corpus, categories, UNTIL - lookback, END)
    assert len(expected) == 3000
    use_api(project, categories, lookback_days=lookback.days, page_size=100)
    env = {"ARXIV_API_URL": corpus_server.url, "DATABASE_URL": url}

    killed = subprocess.Popen(
        [str(KEDRO), "run", "--pipeline", "ingestion", *until_param(UNTIL)],
        cwd=project,
        env=kedro_env(**env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the run and its forked reader share a process group
    )

    def caught() -> bool:  # the run makes 43 requests, then stores 30 batches of 100
        if phase == "fetch":
            return len(corpus_server.requests) >= 16
        return committed_papers(url) >= 500

    deadline = time.monotonic() + 60
    while not caught() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait(timeout=10)
    stored_at_kill = committed_papers(url)
    if phase == "fetch":
        assert stored_at_kill == 0, "the run was not caught fetching"
    else:
        assert 500 <= stored_at_kill < len(expected), "the run was not caught storing"
    marks = watermarks(url)
    requests_of_killed_run = len(corpus_server.requests)

    rerun = kedro_run(project, *until_param(UNTIL), **env)

    assert rerun.returncode == 0, rerun.stdout
    ids = paper_ids(url)
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == expected
    assert f"new {len(expected) - stored_at_kill:,} /" in rerun.stdout
    assert watermarks(url) == dict.fromkeys(categories, END)
    assert article_count(project) == len(ids)
    statuses = run_statuses(url)
    assert [status for status, _ in statuses] == (
        ["succeeded"] if phase == "fetch" else ["interrupted", "succeeded"]
    )
    if phase == "store":
        assert "ended before the run finished" in statuses[0][1]
    assert [count for statement in ORPHANS for (count,) in query(url, text(statement))] == [0] * 3
    if phase == "store":  # the rerun asks only for what the watermarks lack
        first_window = f"submittedDate:[{UNTIL - lookback:%Y%m%d%H%M} TO"
        rerun_queries = [
            r.params["search_query"] for r in corpus_server.requests[requests_of_killed_run:]
        ]
        assert min(marks.values()) > UNTIL - lookback
        assert not [q for q in rerun_queries if first_window in q], "the rerun started over"
