"""The summarization pipeline end to end on the project's catalog: real papers in real stores, the
LLM a local Mistral server."""

from __future__ import annotations

import copy
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kedro.io import MemoryDataset
from sqlalchemy import text

from arxiv_kedro.datasets import NewestPapersDataset
from arxiv_kedro.llm.checks import problems
from arxiv_kedro.llm.client import LlmAuthError, LlmClient, Usage
from arxiv_kedro.llm.extractive import sentences, textrank
from arxiv_kedro.pipelines.summarization.pipeline import create_pipeline
from arxiv_kedro.stores.documents import DocumentStore, MongoDocumentStore, SqlDocumentStore
from arxiv_kedro.stores.relational.engine import Database
from arxiv_kedro.stores.relational.ml import MlStore
from tests.conftest import DocumentServer
from tests.support.mistral_server import (
    MistralServer,
    RequestLog,
    not_json,
    overlong,
    status,
    summary_text,
    translation_text,
    wrong_language,
)
from tests.support.pipelines import backfill, project_catalog, run_pipeline
from tests.test_kedro_run import kedro_run, project  # noqa: F401  (project: a fixture)

PROJECT_ROOT = Path(__file__).resolve().parents[3]
PARAMS = yaml.safe_load(
    (PROJECT_ROOT / "conf" / "base" / "parameters_summarization.yml").read_text()
)["summarization"]
LANGUAGES = tuple(PARAMS["languages"])  # fr, es, de
MODEL = "mistral-small-latest"
PRICES = PARAMS["prices"][MODEL]
KEY = "sk-summaries-0123456789"
PAPERS = 40
ENTRIES = PAPERS * (1 + len(LANGUAGES))


def params(**overrides: Any) -> dict[str, Any]:
    """The project's summarization parameters, four papers in flight."""
    return {**copy.deepcopy(PARAMS), "concurrency": 4, **overrides}


@pytest.fixture(autouse=True)
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The catalog's relative paths (reports) land in tmp_path."""
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    Database.close_shared()


@pytest.fixture(scope="module", autouse=True)
def _warm_language_detector() -> None:
    """Load the language identifiers the checks use before the producer's threads race to
    load them: each (candidates + language) tuple is its own cached identifier (~1 s to load,
    and every thread that misses the cache loads its own)."""
    candidates = ("en", *LANGUAGES)
    for language in (*candidates, "it"):
        problems(
            "warm up",
            language=language,
            source="",
            min_chars=1,
            max_chars=99,
            candidates=candidates if language != "it" else (*candidates, "it"),
        )


@pytest.fixture(scope="module")
def snapshot_lines(daily_snapshot: Path) -> list[str]:
    with gzip.open(daily_snapshot, "rt", encoding="utf-8") as lines:
        return [line for _, line in zip(range(PAPERS), lines, strict=False)]


@dataclass
class Stores:
    papers: Database
    documents: DocumentStore
    documents_url: str
    database: str = "arxiv"

    def catalog(self, **params: dict[str, Any]) -> Any:
        return project_catalog(
            relational_url=self.papers.url,
            documents_url=self.documents_url,
            documents_database=self.database,
            params=params,
        )

    def listed(self) -> list[dict[str, Any]]:
        """Every stored paper version, in the order the pipeline works (newest first)."""
        return [paper for batch in MlStore(self.papers).newest_papers() for paper in batch]

    def summaries(self) -> dict[tuple[str, int], dict[str, Any]]:
        return {(d["arxiv_id"], d["version"]): d for d in self.documents.find("summaries")}


def fill(stores: Stores, lines: list[str], tmp_path: Path) -> None:
    """The papers of `lines` through the backfill pipeline."""
    path = tmp_path / "snapshot.jsonl"
    path.write_text("".join(lines), encoding="utf-8")
    report = backfill(
        path,
        tmp_path,
        relational_url=stores.papers.url,
        documents_url=stores.documents_url,
        documents_database=stores.database,
    )
    assert report["new"] == len(lines)


def summarize(
    stores: Stores, llm: LlmClient | None, parameters: dict[str, Any], batch_size: int = 10
) -> dict[str, Any]:
    """The summarization pipeline on the project's catalog (small pages cross page boundaries);
    returns its report."""
    catalog = stores.catalog(summarization=parameters)
    catalog["llm"] = MemoryDataset(llm, copy_mode="assign")
    catalog["papers@newest"] = NewestPapersDataset(stores.papers.url, batch_size=batch_size)
    run_pipeline(create_pipeline(), catalog)
    return catalog.load("summarization_report")


@pytest.fixture
def stores(tmp_path: Path, snapshot_lines: list[str]) -> Iterator[Stores]:
    url = f"sqlite:///{tmp_path / 'documents.db'}"
    documents = SqlDocumentStore(url)
    stores = Stores(Database.open(f"sqlite:///{tmp_path / 'arxiv.db'}"), documents, url)
    fill(stores, snapshot_lines, tmp_path)
    yield stores
    documents.close()
    stores.papers.close()


@pytest.fixture
def server() -> Iterator[MistralServer]:
    with MistralServer(api_key=KEY) as running:
        yield running


@pytest.fixture
def llm(server: MistralServer) -> Iterator[LlmClient]:
    """A client of the local server; back-off waits are skipped (recorded nowhere)."""
    client = LlmClient(
        KEY,
        model=MODEL,
        server_url=server.url,
        timeout_seconds=5.0,
        max_retries=2,
        backoff_seconds=0.01,
        sleep=lambda seconds: None,
    )
    yield client
    client.close()


def title_mark(paper: dict[str, Any]) -> str:
    """What identifies a paper's summarize prompt."""
    return f"Title: {paper['title']}\n"


def requests_for(server: MistralServer, paper: dict[str, Any]) -> list[RequestLog]:
    return [r for r in server.requests if title_mark(paper) in r.prompt]


def billed(requests: list[RequestLog]) -> Usage:
    total = Usage()
    for request in requests:
        if request.usage is not None:
            total += Usage(request.usage["prompt_tokens"], request.usage["completion_tokens"])
    return total


def stamps(summaries: dict[tuple[str, int], dict[str, Any]]) -> dict[tuple, tuple]:
    return {key: (d["content_hash"], d["updated_at"]) for key, d in summaries.items()}


def assert_extractive(document: dict[str, Any], paper: dict[str, Any]) -> None:
    summary = document["summary"]
    assert summary["status"] == "done"
    assert summary["method"] == "extractive"
    assert summary["model"] is None and summary["usage"] is None
    assert summary["text"] == textrank(paper["abstract"], max_chars=PARAMS["summary_chars"]["max"])
    parts = sentences(" ".join(paper["abstract"].split()))
    chosen = [parts.index(sentence) for sentence in sentences(summary["text"])]
    assert chosen == sorted(chosen)  # whole sentences of the abstract, in their order


def assert_pending(entry: dict[str, Any]) -> None:
    assert entry["status"] == "pending"
    assert entry["text"] is None
    assert entry["model"] is None and entry["prompt_version"] is None and entry["error"] is None


def assert_llm_done(entry: dict[str, Any], expected: str, prompt_version: str) -> None:
    assert entry["status"] == "done"
    assert entry["method"] == "llm"
    assert entry["text"] == expected
    assert entry["model"] == MODEL
    assert entry["prompt_version"] == prompt_version
    assert entry["error"] is None


def assert_complete(document: dict[str, Any], paper: dict[str, Any], version: str) -> None:
    assert document["status"] == "complete"
    assert_llm_done(document["summary"], summary_text(paper["title"]), version)
    assert set(document["translations"]) == set(LANGUAGES)
    for code, entry in document["translations"].items():
        assert_llm_done(entry, translation_text(code, paper["title"]), version)


def assert_failed(entry: dict[str, Any], reason: str) -> None:
    assert entry["status"] == "failed"
    assert entry["text"] is None
    assert entry["method"] == "llm"
    assert entry["model"] == MODEL
    assert entry["prompt_version"] == PARAMS["prompt_version"]
    assert reason in entry["error"]


# --- offline --------------------------------------------------------------------------------


def test_offline_every_paper_gets_an_extractive_summary_and_pending_translations(
    stores: Stores,
) -> None:
    report = summarize(stores, None, params())

    assert report | {"seconds": 0} == {
        "papers": PAPERS,
        "llm_summaries": 0,
        "extractive_summaries": PAPERS,
        "translations": 0,
        "pending": PAPERS * len(LANGUAGES),
        "failed": 0,
        "llm_calls": 0,
        "cache_hits": 0,
        "cache_hit_rate": None,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "cost": 0.0,
        "seconds": 0,
        "mode": "offline",
        "model": None,
    }
    summaries = stores.summaries()
    assert len(summaries) == PAPERS
    for paper in stores.listed():
        document = summaries[(paper["arxiv_id"], paper["version"])]
        assert document["status"] == "partial"
        assert_extractive(document, paper)
        assert set(document["translations"]) == set(LANGUAGES)
        for entry in document["translations"].values():
            assert_pending(entry)
        assert document["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "cost": 0.0}
    assert stores.documents.count("llm_cache") == 0


def test_an_offline_rerun_does_nothing(stores: Stores) -> None:
    summarize(stores, None, params())
    before = stamps(stores.summaries())

    report = summarize(stores, None, params())

    assert report["papers"] == 0
    assert report["extractive_summaries"] == report["pending"] == 0
    assert stamps(stores.summaries()) == before


def test_offline_a_prompt_change_does_not_redo_extractive_summaries(stores: Stores) -> None:
    summarize(stores, None, params())
    before = stamps(stores.summaries())

    report = summarize(stores, None, params(prompt_version="v9"))

    assert report["papers"] == 0
    assert stamps(stores.summaries()) == before


# --- online ---------------------------------------------------------------------------------


def check_online_documents(
    stores: Stores, server: MistralServer, report: dict[str, Any], version: str
) -> None:
    """Every paper complete, with the usage the server billed for it, summed in the report."""
    summaries = stores.summaries()
    assert len(summaries) == PAPERS
    run_cost = 0.0
    for paper in stores.listed():
        document = summaries[(paper["arxiv_id"], paper["version"])]
        assert_complete(document, paper, version)
        paid = billed(requests_for(server, paper))
        entries = [document["summary"], *document["translations"].values()]
        for entry in entries:
            usage = Usage(entry["usage"]["prompt_tokens"], entry["usage"]["completion_tokens"])
            assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
            assert entry["usage"]["cost"] == pytest.approx(usage.cost(PRICES), abs=1e-8)
        shares = sum(e["usage"]["prompt_tokens"] for e in entries)
        assert 0 <= paid.prompt_tokens - shares < len(entries)  # split evenly, remainder dropped
        assert document["usage"]["prompt_tokens"] == paid.prompt_tokens
        assert document["usage"]["completion_tokens"] == paid.completion_tokens
        assert document["usage"]["cost"] == pytest.approx(paid.cost(PRICES), abs=1e-8)
        run_cost += document["usage"]["cost"]
    total = billed(server.completions())
    assert report["prompt_tokens"] == total.prompt_tokens
    assert report["completion_tokens"] == total.completion_tokens
    assert report["cost"] == pytest.approx(run_cost, abs=1e-6)
    assert report["cost"] == pytest.approx(total.cost(PRICES), abs=1e-6)
    assert report["cost"] > 0


def test_online_upgrades_every_extractive_summary_and_fills_every_translation(
    stores: Stores, server: MistralServer, llm: LlmClient
) -> None:
    summarize(stores, None, params())

    report = summarize(stores, llm, params())

    assert len(server.requests) == PAPERS
    assert all(r.authorization == f"Bearer {KEY}" for r in server.requests)
    assert all(r.body["model"] == MODEL for r in server.requests)
    for paper in stores.listed():  # one summarize prompt per paper, asking for every language
        [request] = requests_for(server, paper)
        assert "fr (French), es (Spanish), de (German)" in request.prompt
        assert paper["abstract"] in request.prompt
    assert report["mode"] == "llm"
    assert report["model"] == MODEL
    assert report["papers"] == PAPERS
    assert report["llm_summaries"] == PAPERS
    assert report["extractive_summaries"] == 0
    assert report["translations"] == PAPERS * len(LANGUAGES)
    assert report["pending"] == report["failed"] == 0
    assert report["llm_calls"] == PAPERS
    assert report["cache_hits"] == 0
    assert report["cache_hit_rate"] == 0.0
    check_online_documents(stores, server, report, PARAMS["prompt_version"])
    assert stores.documents.count("llm_cache") == ENTRIES


def test_a_second_online_run_asks_nothing(
    stores: Stores, server: MistralServer, llm: LlmClient
) -> None:
    summarize(stores, llm, params())
    asked, before = len(server.requests), stamps(stores.summaries())

    report = summarize(stores, llm, params())

    assert len(server.requests) == asked == PAPERS
    assert report["papers"] == report["llm_calls"] == 0
    assert report["cost"] == 0.0
    assert stamps(stores.summaries()) == before


def test_the_cache_answers_when_the_documents_are_lost(
    stores: Stores, server: MistralServer, llm: LlmClient
) -> None:
    summarize(stores, llm, params())
    texts = {key: d["translations"]["de"]["text"] for key, d in stores.summaries().items()}
    with stores.documents.engine.begin() as conn:
        conn.execute(text("DELETE FROM documents WHERE collection = 'summaries'"))
    assert stores.documents.count("summaries") == 0

    report = summarize(stores, llm, params())

    assert len(server.requests) == PAPERS  # no new request
    assert report["papers"] == PAPERS
    assert report["cache_hits"] == ENTRIES
    assert report["cache_hit_rate"] == 1.0
    assert report["llm_calls"] == 0
    assert report["cost"] == 0.0
    summaries = stores.summaries()
    for paper in stores.listed():
        key = (paper["arxiv_id"], paper["version"])
        assert_complete(summaries[key], paper, PARAMS["prompt_version"])
        assert summaries[key]["translations"]["de"]["text"] == texts[key]


def test_online_without_an_offline_run_first(
    stores: Stores, server: MistralServer, llm: LlmClient
) -> None:
    report = summarize(stores, llm, params(concurrency=8))

    assert report["papers"] == report["llm_summaries"] == PAPERS
    check_online_documents(stores, server, report, PARAMS["prompt_version"])


def test_max_papers_bounds_an_online_run_newest_first(
    stores: Stores, server: MistralServer, llm: LlmClient
) -> None:
    summarize(stores, None, params())

    report = summarize(stores, llm, params(max_papers=15))

    assert report["papers"] == 15
    assert len(server.requests) == 15
    summaries, listed = stores.summaries(), stores.listed()
    statuses = [summaries[(p["arxiv_id"], p["version"])]["status"] for p in listed]
    assert statuses == ["complete"] * 15 + ["partial"] * (PAPERS - 15)


def test_a_new_language_is_translated_from_the_stored_summary(
    stores: Stores, server: MistralServer, llm: LlmClient
) -> None:
    summarize(stores, llm, params())

    report = summarize(stores, llm, params(languages=[*LANGUAGES, "it"]))

    new = server.requests[PAPERS:]
    assert len(new) == PAPERS
    assert all("Translate this summary into: it (Italian)." in r.prompt for r in new)
    assert all("Title:" not in r.prompt for r in new)
    assert report["translations"] == PAPERS
    assert report["llm_summaries"] == 0
    summaries = stores.summaries()
    for paper in stores.listed():
        document = summaries[(paper["arxiv_id"], paper["version"])]
        assert document["status"] == "complete"
        assert document["summary"]["text"] in "\n".join(r.prompt for r in new)
        assert_llm_done(
            document["translations"]["it"],
            translation_text("it", paper["title"]),
            PARAMS["prompt_version"],
        )


def test_a_prompt_version_change_redoes_everything_online_only(
    stores: Stores, server: MistralServer, llm: LlmClient
) -> None:
    summarize(stores, llm, params())

    report = summarize(stores, llm, params(prompt_version="v2"))

    assert report["papers"] == report["llm_summaries"] == PAPERS
    assert report["cache_hits"] == 0  # the cache is keyed by prompt version too
    assert len(server.requests) == 2 * PAPERS
    for paper in stores.listed():
        assert len(requests_for(server, paper)) == 2
    summaries = stores.summaries()
    for paper in stores.listed():
        assert_complete(summaries[(paper["arxiv_id"], paper["version"])], paper, "v2")
    assert stores.documents.count("llm_cache") == 2 * ENTRIES
    before = stamps(summaries)

    offline = summarize(stores, None, params(prompt_version="v3"))

    assert offline["papers"] == 0
    assert stamps(stores.summaries()) == before


# --- an unavailable endpoint, refused requests, bad answers ---------------------------------


def test_an_unavailable_endpoint_leaves_the_paper_pending_for_the_next_run(
    stores: Stores, server: MistralServer, llm: LlmClient
) -> None:
    summarize(stores, None, params())
    unlucky = stores.listed()[12]
    server.inject(*[status(429, retry_after=0, match=title_mark(unlucky))] * 3)  # 1 + 2 retries

    report = summarize(stores, llm, params())

    assert [r.status for r in requests_for(server, unlucky)] == [429, 429, 429]
    assert report["papers"] == PAPERS
    assert report["llm_summaries"] == PAPERS - 1
    assert report["pending"] == 1 + len(LANGUAGES)
    assert report["failed"] == 0
    key = (unlucky["arxiv_id"], unlucky["version"])
    document = stores.summaries()[key]
    assert document["status"] == "partial"
    assert_extractive(document, unlucky)  # the offline summary is kept until the upgrade
    for entry in document["translations"].values():
        assert_pending(entry)
    asked = len(server.requests)

    again = summarize(stores, llm, params())

    assert again["papers"] == again["llm_summaries"] == 1
    assert len(server.requests) == asked + 1
    assert requests_for(server, unlucky)[-1].status == 200
    assert_complete(stores.summaries()[key], unlucky, PARAMS["prompt_version"])
    assert stores.documents.count("summaries") == PAPERS  # no duplicates
    assert stores.documents.count("llm_cache") == ENTRIES
    assert len({(d["arxiv_id"], d["version"]) for d in stores.documents.find("summaries")}) == (
        PAPERS
    )


def test_an_unavailable_endpoint_on_a_new_paper_is_not_reported_failed(
    stores: Stores, server: MistralServer, llm: LlmClient
) -> None:
    unlucky = stores.listed()[3]
    server.inject(*[status(503, match=title_mark(unlucky))] * 3)

    summarize(stores, llm, params())

    document = stores.summaries()[(unlucky["arxiv_id"], unlucky["version"])]
    assert document["status"] != "failed"


def test_a_refused_request_is_recorded_as_failed_and_not_retried(
    stores: Stores, server: MistralServer, llm: LlmClient
) -> None:
    refused = stores.listed()[7]
    message = "Prompt contains forbidden content"
    server.inject(
        status(400, body={"object": "error", "message": message}, match=title_mark(refused))
    )

    report = summarize(stores, llm, params())

    assert report["failed"] == 1 + len(LANGUAGES)
    assert report["llm_summaries"] == PAPERS - 1
    summaries = stores.summaries()
    document = summaries[(refused["arxiv_id"], refused["version"])]
    assert document["status"] == "failed"
    for entry in (document["summary"], *document["translations"].values()):
        assert_failed(entry, f"HTTP 400: {message}")
    assert sum(d["status"] == "complete" for d in summaries.values()) == PAPERS - 1
    asked = len(server.requests)

    again = summarize(stores, llm, params())

    assert len(server.requests) == asked  # a failure with this model and prompt is not re-paid
    assert again["papers"] == 0


def test_a_failed_upgrade_keeps_the_extractive_summary(
    stores: Stores, server: MistralServer, llm: LlmClient
) -> None:
    summarize(stores, None, params())
    refused = stores.listed()[7]
    server.inject(status(400, match=title_mark(refused)))

    summarize(stores, llm, params())

    document = stores.summaries()[(refused["arxiv_id"], refused["version"])]
    assert document["summary"]["text"] == textrank(refused["abstract"], max_chars=700)


def test_a_refused_key_stops_the_run_and_keeps_what_was_produced(
    stores: Stores, server: MistralServer, llm: LlmClient
) -> None:
    listed = stores.listed()
    server.inject(status(401, match=title_mark(listed[14])))
    one_at_a_time = params(concurrency=1)

    with pytest.raises(LlmAuthError) as raised:
        summarize(stores, llm, one_at_a_time)

    assert "refused the API key (HTTP 401)" in str(raised.value)
    assert "MISTRAL_API_KEY" in str(raised.value)
    assert KEY not in str(raised.value)
    summaries = stores.summaries()
    for paper in listed[:14]:  # the first batch, and the papers of the second done before
        assert_complete(
            summaries[(paper["arxiv_id"], paper["version"])], paper, PARAMS["prompt_version"]
        )
    assert (listed[14]["arxiv_id"], listed[14]["version"]) not in summaries
    assert len(summaries) <= 15  # at most the paper in flight when the run stopped

    report = summarize(stores, llm, one_at_a_time)

    assert report["papers"] == PAPERS - len(summaries)
    answered = [r for r in server.requests if r.status == 200]
    assert len(answered) == PAPERS  # every paper paid for exactly once
    assert len({r.prompt for r in answered}) == PAPERS
    for paper in listed:
        assert_complete(
            stores.summaries()[(paper["arxiv_id"], paper["version"])],
            paper,
            PARAMS["prompt_version"],
        )


def test_an_invalid_answer_twice_is_recorded_as_failed(
    stores: Stores, server: MistralServer, llm: LlmClient
) -> None:
    broken = stores.listed()[21]
    server.inject(not_json(match=title_mark(broken)), not_json(match=title_mark(broken)))

    report = summarize(stores, llm, params())

    assert len(requests_for(server, broken)) == 2
    assert report["failed"] == 1 + len(LANGUAGES)
    document = stores.summaries()[(broken["arxiv_id"], broken["version"])]
    assert document["status"] == "failed"
    for entry in (document["summary"], *document["translations"].values()):
        assert_failed(entry, "invalid structured answer")
    assert stores.documents.count("llm_cache") == ENTRIES - (1 + len(LANGUAGES))
    asked = len(server.requests)

    assert summarize(stores, llm, params())["papers"] == 0
    assert len(server.requests) == asked


def test_paid_invalid_answers_are_counted(
    stores: Stores, server: MistralServer, llm: LlmClient
) -> None:
    broken = stores.listed()[21]
    server.inject(not_json(match=title_mark(broken)), not_json(match=title_mark(broken)))

    report = summarize(stores, llm, params())

    assert report["llm_calls"] == PAPERS + 1
    assert report["prompt_tokens"] == billed(server.completions()).prompt_tokens


def test_a_wrong_language_translation_is_asked_again_and_fixed(
    stores: Stores, server: MistralServer, llm: LlmClient
) -> None:
    paper = stores.listed()[5]
    server.inject(wrong_language("fr", written_in="en", match=title_mark(paper)))

    report = summarize(stores, llm, params())

    asked = requests_for(server, paper)
    assert len(asked) == 2
    assert asked[0].answer["translations"]["fr"] == summary_text(paper["title"])
    assert report["failed"] == 0
    assert report["llm_calls"] == PAPERS + 1
    document = stores.summaries()[(paper["arxiv_id"], paper["version"])]
    assert_complete(document, paper, PARAMS["prompt_version"])
    paid = billed(asked)  # both answers were paid for
    assert document["usage"]["prompt_tokens"] == paid.prompt_tokens
    assert document["usage"]["completion_tokens"] == paid.completion_tokens
    assert report["prompt_tokens"] == billed(server.requests).prompt_tokens


def test_an_overlong_summary_is_asked_again_then_failed(
    stores: Stores, server: MistralServer, llm: LlmClient
) -> None:
    once, twice = stores.listed()[2], stores.listed()[33]
    server.inject(overlong(1500, match=title_mark(once)))
    server.inject(*[overlong(1500, match=title_mark(twice))] * 2)

    report = summarize(stores, llm, params())

    summaries = stores.summaries()
    assert_complete(summaries[(once["arxiv_id"], once["version"])], once, PARAMS["prompt_version"])
    document = summaries[(twice["arxiv_id"], twice["version"])]
    assert_failed(document["summary"], "too long (1500 > 700 characters)")
    assert document["status"] == "failed"
    for code, entry in document["translations"].items():  # their checks passed the first time
        assert_llm_done(entry, translation_text(code, twice["title"]), PARAMS["prompt_version"])
    assert report["failed"] == 1
    assert len(requests_for(server, once)) == len(requests_for(server, twice)) == 2


# --- MongoDB ----------------------------------------------------------------------------------


def test_online_on_mongodb(
    document_server: DocumentServer,
    mongo_database: str,
    tmp_path: Path,
    snapshot_lines: list[str],
    server: MistralServer,
    llm: LlmClient,
) -> None:
    papers = Database.open(f"sqlite:///{tmp_path / 'arxiv.db'}")
    documents = MongoDocumentStore(document_server.url, mongo_database)
    stores = Stores(papers, documents, document_server.url, mongo_database)
    try:
        fill(stores, snapshot_lines, tmp_path)
        offline = summarize(stores, None, params())
        assert offline["extractive_summaries"] == PAPERS

        report = summarize(stores, llm, params())

        assert report["papers"] == report["llm_summaries"] == PAPERS
        assert len(server.requests) == PAPERS
        check_online_documents(stores, server, report, PARAMS["prompt_version"])
        assert documents.count("llm_cache") == ENTRIES
        again = summarize(stores, llm, params())
        assert again["papers"] == 0
        assert len(server.requests) == PAPERS
    finally:
        documents.close()
        papers.close()


# --- kedro run --------------------------------------------------------------------------------


def test_kedro_run_summarization_offline_then_online(
    project: Path,  # noqa: F811
    snapshot_lines: list[str],
    server: MistralServer,
) -> None:
    """With the project's configuration (conf/base/mlflow.yml must keep kedro-mlflow from
    installing MLflow's import hooks: they break importing the namespace package mistralai)."""
    primary = project / "data" / "03_primary"
    primary.mkdir(parents=True)
    url = f"sqlite:///{primary / 'documents.db'}"
    documents = SqlDocumentStore(url)
    stores = Stores(Database.open(f"sqlite:///{primary / 'arxiv.db'}"), documents, url)
    try:
        fill(stores, snapshot_lines[:8], project)
    finally:
        documents.close()
        stores.papers.close()
    report_path = project / "data" / "08_reporting" / "summarization_report.json"

    offline = kedro_run(project, "--pipeline", "summarization")

    assert offline.returncode == 0, offline.stdout[-3000:]
    report = json.loads(report_path.read_text())
    assert report["mode"] == "offline"
    assert report["papers"] == report["extractive_summaries"] == 8
    assert report["pending"] == 8 * len(LANGUAGES)
    assert server.requests == []

    online = kedro_run(
        project,
        *("--pipeline", "summarization"),
        # one thread: the language checks' identifiers then load once each, not once per thread
        *("--params", "summarization.concurrency=1"),
        MISTRAL_API_KEY=KEY,
        MISTRAL_SERVER_URL=server.url,
    )

    assert online.returncode == 0, online.stdout[-3000:]
    report = json.loads(report_path.read_text())
    assert report["mode"] == "llm"
    assert report["model"] == MODEL
    assert report["papers"] == report["llm_summaries"] == 8
    assert report["translations"] == 8 * len(LANGUAGES)
    assert report["cost"] > 0
    assert len(server.requests) == 8
    assert all(r.authorization == f"Bearer {KEY}" for r in server.requests)
    assert KEY not in online.stdout  # stderr is merged into stdout
    assert KEY not in offline.stdout
    documents = SqlDocumentStore(f"sqlite:///{primary / 'documents.db'}")
    try:
        assert [d["status"] for d in documents.find("summaries")] == ["complete"] * 8
    finally:
        documents.close()
