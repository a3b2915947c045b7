"""The API's two worlds, built once per session with the real pipelines on the same real papers:
"embedded" (SQLite files, the in-process cache) and "prod" (PostgreSQL, the nx-27017 MongoDB
server, a Redis cache), both labeled by one champion that `kedro run --pipeline training`
registered in a SQLite MLflow registry. The API runs over them in-process (TestClient) and, for
the UI and its client, as uvicorn processes (`embedded_api`, `modelless_api`, `prod_api`)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pytest
import redis
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from kedro.io import DataCatalog, MemoryDataset

from arxiv_kedro.classification import registry
from arxiv_kedro.datasets import LlmClientDataset, RunLockDataset, SnapshotDataset
from arxiv_kedro.datasets.documents import shared_document_store
from arxiv_kedro.papers import Paper, from_snapshot_record
from arxiv_kedro.pipelines import inference, monitoring, summarization
from arxiv_kedro.pipelines.ingestion.pipeline import create_backfill_pipeline
from arxiv_kedro.stores.documents import DocumentStore
from arxiv_kedro.stores.relational.engine import Database
from serving.settings import Settings
from tests.conftest import REDIS_URL, DocumentServer
from tests.pipelines.training.test_pipeline import set_training, training_selection
from tests.support.mistral_server import MistralServer
from tests.support.pipelines import project_catalog, run_pipeline
from tests.support.ui import running_api
from tests.test_kedro_run import PROJECT_ROOT, STORE_SETTINGS, kedro_run

OLD_STYLE_ID = "hep-th/9809096"  # two versions, cross-listed in cond-mat.stat-mech and hep-ph
SUMMARIZED_EVERY = 10  # every 10th paper is ingested first and summarized
LLM_PAPERS = 5  # of those, the newest get an LLM summary and translations
MISTRAL_KEY = "sk-serving-0123456789"
API_KEY = "api-test-key-b7e1f0"  # the only key the API processes accept
SUMMARIZATION = yaml.safe_load(
    (PROJECT_ROOT / "conf" / "base" / "parameters_summarization.yml").read_text()
)["summarization"]
MONITORING = yaml.safe_load(
    (PROJECT_ROOT / "conf" / "base" / "parameters_monitoring.yml").read_text()
)["monitoring"]
MONITORED_DAYS = 30  # the current window: the 30 days up to the newest paper


@dataclass(frozen=True)
class Corpus:
    first: Path  # ingested, then summarized
    second: Path  # ingested after the summaries: papers without one
    records: dict[str, dict[str, Any]]  # arxiv_id -> snapshot record of every stored paper
    unseen: pd.DataFrame  # title, abstract, label of papers newer than any stored

    @cached_property
    def papers(self) -> dict[str, Paper]:
        """Every stored paper as the ingestion normalized it, by arxiv_id."""
        return {arxiv_id: from_snapshot_record(r) for arxiv_id, r in self.records.items()}


@dataclass(frozen=True)
class Champion:
    uri: str  # the MLflow tracking URI (and registry)
    version: str
    run_id: str
    evaluation: dict[str, Any]  # evaluation_report.json: metrics and per-class scores
    labels: list[str]


@dataclass
class World:
    """The stores of one deployment shape, their catalog (conf + env) and its clients."""

    name: str
    conf: Path
    env: str
    taxonomy: Path
    corpus: Corpus
    stores_globals: dict[str, str]  # conf/<env>/globals.yml: where the stores are
    entries: dict[str, Any] = field(default_factory=dict)  # conf/<env>/catalog.yml
    namespace: str | None = None  # prod: the Redis namespace of `api_cache`
    stores: DataCatalog = field(init=False)
    monitoring: dict[str, Any] | None = None  # the summary of its monitoring run, once run

    def __post_init__(self) -> None:
        self.stores = self.settings().catalog()

    def settings(self, **overrides: Any) -> Settings:
        """The API's settings over this world; the rate limit is off unless asked for (the
        shared clients send far more than a burst of requests)."""
        values = {
            "conf_source": self.conf,
            "kedro_env": self.env,
            "taxonomy": self.taxonomy,
            "category_names": category_names(self.taxonomy),
            "rate_limit_per_minute": 0,
            **overrides,
        }
        return Settings(**values)

    def environment(self, **overrides: str) -> dict[str, str]:
        """The same settings as environment variables, for an API process (`running_api`)."""
        return {
            "KEDRO_ENV": self.env,
            "ARXIV_TAXONOMY": str(self.taxonomy),
            "ARXIV_CATEGORY_NAMES": str(category_names(self.taxonomy)),
            "API_RATE_LIMIT_PER_MINUTE": "0",
            **overrides,
        }

    @property
    def papers(self) -> Database:
        return Database.shared(self.stores_globals["relational_url"])

    @property
    def documents(self) -> DocumentStore:
        globals_ = self.stores_globals
        return shared_document_store(globals_["documents_url"], globals_["documents_database"])

    def catalog(self, **params: Any) -> DataCatalog:
        """The pipelines' catalog of this world, with `params` ({"ingestion": {...}, ...})."""
        return project_catalog(self.env, conf=self.conf, params=params)

    def summaries(self) -> dict[str, dict[str, Any]]:
        """Summary documents by arxiv_id."""
        return {d["arxiv_id"]: d for d in self.documents.find("summaries")}

    def close(self) -> None:
        self.papers.close()


def make_app(settings: Settings) -> FastAPI:
    # Imported here, not at the top: `serving.main` builds its module-level `app` from the
    # environment on import, which must not happen before `_isolated_environment` cleaned it.
    from serving.main import create_app

    return create_app(settings)


# --- the environment --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def session_env() -> Iterator[pytest.MonkeyPatch]:
    """Environment changes that last the session, undone at its end."""
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="session", autouse=True)
def _isolated_environment(session_env: pytest.MonkeyPatch) -> None:
    """No API_*, KEDRO_ENV, store or model variable of the developer's shell reaches an app."""
    for name in list(os.environ):
        if name.startswith("API_") or name in STORE_SETTINGS:
            session_env.delenv(name)
    for name in ("KEDRO_ENV", "ARXIV_TAXONOMY", "MLFLOW_REGISTRY_URI"):
        session_env.delenv(name, raising=False)


# --- the papers -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def taxonomy(shared_data: Path) -> Path:
    return shared_data / "taxonomy" / "oaipmh_browse_db_taxonomy.json"


def category_names(taxonomy: Path) -> Path:
    """arxiv-base's category definitions (today's names), next to the browse taxonomy."""
    return taxonomy.with_name("arxiv-base_arXiv_category_def.json")


@pytest.fixture(scope="session")
def official_names(taxonomy: Path) -> dict[str, str]:
    """Category id -> its name today: arxiv-base's definitions over the browse taxonomy's."""
    raw = json.loads(taxonomy.read_text())
    current = {c["category"]: c["name"] for c in json.loads(category_names(taxonomy).read_text())}
    return {
        category: current.get(category, c["category_name"])
        for c in raw["arXiv_categories"]
        for category in [
            f"{c['archive']}.{c['subject_class']}" if c["subject_class"] else c["archive"]
        ]
    }


@pytest.fixture(scope="session")
def corpus(
    tmp_path_factory: pytest.TempPathFactory, shared_data: Path, daily_snapshot: Path
) -> Corpus:
    """The training test's papers (every n-th of four categories up to UNTIL, ~2,850) and one
    old-style paper, as original snapshot lines; ten newer papers per category kept unseen."""
    directory = tmp_path_factory.mktemp("corpus")
    selected, unseen = training_selection(daily_snapshot)
    archives = shared_data / "snapshot" / "arxiv-sample-all-archives.jsonl"
    lines = archives.read_text(encoding="utf-8").splitlines(keepends=True)
    [old_style] = [line for line in lines if json.loads(line)["id"] == OLD_STYLE_ID]
    first = [old_style, *selected[::SUMMARIZED_EVERY]]
    second = [line for i, line in enumerate(selected) if i % SUMMARIZED_EVERY]
    paths = directory / "first.jsonl", directory / "second.jsonl"
    for path, part in zip(paths, (first, second), strict=True):
        path.write_text("".join(part), encoding="utf-8")
    records = {r["id"]: r for r in map(json.loads, first + second)}
    return Corpus(*paths, records, unseen)


def fill(world: World, workdir: Path) -> None:
    """Ingest the first papers, summarize them (offline, then the newest few with the local
    Mistral server), then ingest the others: they have no summary."""

    def ingest(snapshot: Path) -> None:
        catalog = world.catalog(ingestion={})
        catalog["snapshot"] = SnapshotDataset(str(snapshot), batch_size=1000)
        catalog["ingestion_lock"] = RunLockDataset("ingestion", path=str(workdir / "lock"))
        catalog["ingestion_report"] = MemoryDataset()
        run_pipeline(create_backfill_pipeline(), catalog)
        report = catalog.load("ingestion_report")
        assert (report["status"], report["quarantined"]) == ("succeeded", 0), report

    def summarize(llm: LlmClientDataset, **params: Any) -> dict[str, Any]:
        catalog = world.catalog(summarization={**copy.deepcopy(SUMMARIZATION), **params})
        catalog["llm"] = llm
        catalog["summarization_report"] = MemoryDataset()
        run_pipeline(summarization.create_pipeline(), catalog)
        return catalog.load("summarization_report")

    ingest(world.corpus.first)
    offline = summarize(LlmClientDataset(api_key=""))
    assert offline["extractive_summaries"] == offline["papers"] > 100, offline
    with MistralServer(api_key=MISTRAL_KEY) as server:
        llm = LlmClientDataset(
            api_key=MISTRAL_KEY,
            server_url=server.url,
            max_retries=1,
            backoff_seconds=0.01,
            requests_per_second=100,
        )
        online = summarize(llm, max_papers=LLM_PAPERS, concurrency=1)
    assert online["llm_summaries"] == LLM_PAPERS, online
    assert online["translations"] == LLM_PAPERS * len(SUMMARIZATION["languages"]), online
    ingest(world.corpus.second)


def label(world: World) -> None:
    catalog = world.catalog()
    catalog["inference_report"] = MemoryDataset()
    run_pipeline(inference.create_pipeline(), catalog)
    report = catalog.load("inference_report")
    assert report["status"] == "ok", report
    assert report["predicted"] == len(world.corpus.records), report


def monitor(world: World) -> dict[str, Any]:
    """The monitoring pipeline over `world` (once): the summary it stored."""
    if world.monitoring is None:
        catalog = world.catalog(monitoring={**MONITORING, "current_days": MONITORED_DAYS})
        run_pipeline(monitoring.create_pipeline(), catalog)
        world.monitoring = world.documents.find("reports", kind="monitoring")[-1]
    return world.monitoring


def report_entries(reports: Path) -> dict[str, Any]:
    """The monitoring pipeline's files under `reports` (the repository's catalog has them
    relative to the working directory)."""
    base = yaml.safe_load((PROJECT_ROOT / "conf" / "base" / "catalog.yml").read_text())
    entries = {n: {**base[n], "path": str(reports / "monitoring")} for n in (
        "monitoring_report_html", "monitoring_report_json"
    )}  # fmt: skip
    flag = {**base["retrain_recommended"], "filepath": str(reports / "retrain_recommended.json")}
    return {**entries, "retrain_recommended": flag}


def write_conf(
    conf: Path, env: str, stores: dict[str, str], entries: dict[str, Any] | None = None
) -> None:
    """conf/base (the repository's), the stores in conf/<env>/globals.yml and `entries` in
    conf/<env>/catalog.yml, with the monitoring reports under the project's data/."""
    if not (conf / "base").exists():
        shutil.copytree(PROJECT_ROOT / "conf" / "base", conf / "base")
    (conf / env).mkdir(parents=True, exist_ok=True)
    (conf / env / "globals.yml").write_text(yaml.safe_dump(stores))
    reports = report_entries(conf.parent / "data" / "08_reporting")
    (conf / env / "catalog.yml").write_text(yaml.safe_dump({**reports, **(entries or {})}))


# --- the embedded world and the champion --------------------------------------------------------


@pytest.fixture(scope="session")
def embedded_project(
    tmp_path_factory: pytest.TempPathFactory, corpus: Corpus, taxonomy: Path
) -> Iterator[World]:
    """A project like the repository's, its SQLite stores (conf/local) filled, not labeled."""
    project = tmp_path_factory.mktemp("embedded")
    shutil.copy(PROJECT_ROOT / "pyproject.toml", project)
    (project / "src").mkdir()  # the package itself is installed (editable) in the venv
    data = project / "data" / "03_primary"
    data.mkdir(parents=True)
    stores = {
        "relational_url": f"sqlite:///{data / 'arxiv.db'}",
        "documents_url": f"sqlite:///{data / 'documents.db'}",
        "documents_database": "arxiv",
        "redis_url": "",
    }
    write_conf(project / "conf", "local", stores)
    world = World("embedded", project / "conf", "local", taxonomy, corpus, stores)
    fill(world, project)
    yield world
    world.close()


@pytest.fixture(scope="session")
def champion(embedded_project: World, session_env: pytest.MonkeyPatch) -> Champion:
    """One champion trained on the embedded world's papers by `kedro run --pipeline training`;
    MLFLOW_TRACKING_URI points every app of the session at its registry."""
    project = embedded_project.conf.parent
    set_training(project)
    uri = f"sqlite:///{project / 'mlflow.db'}"
    result = kedro_run(project, "--pipeline", "training", MLFLOW_TRACKING_URI=uri)
    assert result.returncode == 0, result.stdout
    session_env.setenv("MLFLOW_TRACKING_URI", uri)
    found = registry.champion_version()
    assert found is not None and found.run_id is not None
    reports = project / "data" / "08_reporting"
    evaluation = json.loads((reports / "evaluation_report.json").read_text())
    labels = json.loads((reports / "training_split.json").read_text())["labels"]
    return Champion(uri, found.version, found.run_id, evaluation, labels)


@pytest.fixture(scope="session")
def embedded(embedded_project: World, champion: Champion) -> World:
    """SQLite stores, no `api_cache` (the API caches in its own memory), every paper labeled."""
    label(embedded_project)
    return embedded_project


# --- the prod world -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_namespace() -> Iterator[str]:
    """A namespace of this session's own on the machine's Redis, emptied at the end."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    namespace = f"arxiv-test-serving-{uuid.uuid4().hex[:12]}"
    yield namespace
    keys = list(client.scan_iter(match=f"{namespace}:*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(scope="session")
def prod(
    tmp_path_factory: pytest.TempPathFactory,
    corpus: Corpus,
    taxonomy: Path,
    champion: Champion,
    postgres_database: str,
    document_server: DocumentServer,
    redis_namespace: str,
) -> Iterator[World]:
    """PostgreSQL (a schema of its own), a database on nx-27017, the Redis `api_cache`."""
    directory = tmp_path_factory.mktemp("prod")
    schema = f"serving_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    stores = {
        "relational_url": f"{postgres_database}?options=-csearch_path%3D{schema}",
        "documents_url": document_server.url,
        "documents_database": f"arxiv_test_{uuid.uuid4().hex[:12]}",
        "redis_url": REDIS_URL,
    }
    entries = {  # the prod catalog's API cache, in a namespace of its own
        "api_cache": {
            "type": "arxiv_kedro.datasets.ApiCacheDataset",
            "redis_url": REDIS_URL,
            "namespace": redis_namespace,
        },
    }
    write_conf(directory / "conf", "prod", stores, entries)
    world = World(
        "prod", directory / "conf", "prod", taxonomy, corpus, stores, entries, redis_namespace
    )
    fill(world, directory)
    label(world)
    yield world
    world.close()


# --- the API ----------------------------------------------------------------------------------


@pytest.fixture(
    scope="session", params=["embedded", pytest.param("prod", marks=pytest.mark.postgres)]
)
def world(request: pytest.FixtureRequest) -> World:
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="session")
def client(world: World) -> Iterator[TestClient]:
    """The API over `world` with its default settings (rate limit off), for the session."""
    with TestClient(make_app(world.settings())) as running:
        yield running


@pytest.fixture
def start(world: World) -> Iterator[Callable[..., TestClient]]:
    """`start(**settings)`: another API over `world` with these settings, for this test. In
    prod every app shares the Redis cache, so it is emptied before and after: what an app with
    other settings cached (e.g. stats without a model) is no other test's answer."""
    # An address of this test's own: rate-limit buckets in Redis outlive the apps
    address = (f"client-{uuid.uuid4().hex[:8]}", 50000)
    cache = world.stores.load("api_cache") if "api_cache" in world.stores else None
    if cache is not None:
        cache.invalidate()
    with ExitStack() as stack:

        def start_app(**overrides: Any) -> TestClient:
            app = make_app(world.settings(**overrides))
            return stack.enter_context(TestClient(app, client=address))

        yield start_app
    if cache is not None:
        cache.invalidate()


# --- the API as a process (for the UI and its client) -------------------------------------------


@pytest.fixture(scope="session")
def embedded_api(
    embedded: World, champion: Champion, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`uvicorn serving.main:app` over the embedded world, requiring API_KEY to classify; its
    URL."""
    env = embedded.environment(MLFLOW_TRACKING_URI=champion.uri, API_KEYS=API_KEY)
    with running_api(embedded.conf, env, tmp_path_factory.mktemp("api")) as url:
        yield url


@pytest.fixture(scope="session")
def modelless_api(embedded: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API over the embedded world with a model registry that does not exist (yet): the
    data is served, classify answers 503; no key required."""
    log_dir = tmp_path_factory.mktemp("api-modelless")
    env = embedded.environment(MLFLOW_TRACKING_URI=f"sqlite:///{log_dir / 'mlflow.db'}")
    with running_api(embedded.conf, env, log_dir, ready=False) as url:
        yield url


@pytest.fixture(scope="session")
def prod_api(
    prod: World, champion: Champion, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The API over the prod world (PostgreSQL, nx-27017, Redis), requiring API_KEY to classify."""
    env = prod.environment(MLFLOW_TRACKING_URI=champion.uri, API_KEYS=API_KEY)
    with running_api(prod.conf, env, tmp_path_factory.mktemp("api-prod")) as url:
        yield url
