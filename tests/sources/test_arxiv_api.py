"""Tests of the arXiv API source against the local arXiv server: feeds, paging, faults, windows."""

from __future__ import annotations

import itertools
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import arxiv
import pytest
import requests
from lxml import etree

from arxiv_kedro.papers import from_api_entry, iso_datetime, normalize, parse_arxiv_id
from arxiv_kedro.sources.arxiv_api import (
    DEFAULT_URL,
    USER_AGENT,
    ArxivApiClient,
    ArxivApiError,
    MalformedFeed,
    Window,
    parse_feed,
    plan_windows,
)
from tests.support.arxiv_server import (
    ArxivServer,
    delay,
    empty_page,
    malformed,
    status,
)

ATOM = "{http://www.w3.org/2005/Atom}"
OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"
TOLERANCE = 0.005  # seconds: clock granularity between the client's sleep and the server's log
NOW = datetime(2025, 3, 20, 12, 34, 56, 789, tzinfo=UTC)
DAY, HOUR = timedelta(days=1), timedelta(hours=1)
CATEGORIES = ("cs.CL", "cs.AI")


def make_client(url: str, **options: Any) -> ArxivApiClient:
    settings = {
        "page_size": 100,
        "delay_seconds": 0.05,
        "backoff_seconds": 0.01,
        "timeout_seconds": 5.0,
        "max_retries": 2,
    }
    return ArxivApiClient(url=url, **settings | options)


def lookup(client: ArxivApiClient, *ids: str) -> list[dict[str, Any]]:
    return list(client.results(arxiv.Search(id_list=list(ids))))


def gaps(server: ArxivServer) -> list[float]:
    times = [log.time for log in server.requests]
    return [later - earlier for earlier, later in itertools.pairwise(times)]


def lxml_ids(content: bytes) -> list[str]:
    return [entry.findtext(f"{ATOM}id") for entry in etree.fromstring(content).iter(f"{ATOM}entry")]


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.fixture(scope="module")
def recorded_search(shared_data: Path) -> bytes:
    """The recorded first 100 results of the search "testing"."""
    [path] = (shared_data / "arxiv-api" / "recorded-2026").glob("q_testing_s0_m100_*.json")
    return json.loads(path.read_text(encoding="utf-8"))["body"].encode()


def expected_ids(corpus: list[dict[str, Any]], window: Window) -> list[str]:
    """The window's papers counted straight from the corpus, in submission order."""
    first, end = f"{window.start:%Y-%m-%d}", f"{window.end:%Y-%m-%d}"
    matching = sorted(
        (record["update_date"], record["id"])
        for record in corpus
        if set(window.categories) & set(record["categories"].split())
        and first <= record["update_date"] < end
    )
    return [f"http://arxiv.org/abs/{arxiv_id}v1" for _, arxiv_id in matching]


def test_parse_feed_reads_every_recorded_body(arxiv_server: ArxivServer, shared_data: Path) -> None:
    recordings = sorted((shared_data / "arxiv-api" / "recorded-2026").glob("*.json"))
    assert len(recordings) == 20

    for path in recordings:
        exchange = json.loads(path.read_text(encoding="utf-8"))
        params = dict(parse_qsl(urlsplit(exchange["url"]).query, keep_blank_values=True))
        response = requests.get(arxiv_server.url, params=params, timeout=5)
        assert response.status_code == exchange["status_code"], path.name

        header, entries = parse_feed(response.content)

        root = etree.fromstring(response.content)
        assert [entry["id"] for entry in entries] == lxml_ids(response.content), path.name
        assert header.total_results == int(root.findtext(f"{OPENSEARCH}totalResults")), path.name
        papers, quarantined = normalize(entries, "api")
        if path.name.startswith("id_abc_"):
            [error] = entries
            assert "/api/errors#" in error["id"]
            assert error["summary"] == "incorrect id format for abc"
            assert [q.reason for q in quarantined] == [f"unparseable arXiv id {error['id']!r}"]
        else:
            assert quarantined == [], path.name
            assert len(papers) == len(entries), path.name


def test_parse_feed_reads_every_legacy_feed(shared_data: Path) -> None:
    feeds = sorted((shared_data / "arxiv-api" / "legacy-2016").glob("*.xml"))
    assert len(feeds) == 5

    for path in feeds:
        content = path.read_bytes()

        header, entries = parse_feed(content)

        assert [entry["id"] for entry in entries] == lxml_ids(content), path.name
        assert len(entries) == min(header.total_results, header.items_per_page) > 0, path.name
        assert normalize(entries, "api")[1] == [], path.name


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"<feed xmlns='http://www.w3.org/2005/Atom'><entry>", "Premature end of data"),
        (b"<html><body>Too many requests</body></html>", "not an Atom feed"),
        (
            b"<feed xmlns='http://www.w3.org/2005/Atom' "
            b"xmlns:opensearch='http://a9.com/-/spec/opensearch/1.1/'>"
            b"<opensearch:totalResults>many</opensearch:totalResults></feed>",
            "bad opensearch header",
        ),
    ],
)
def test_parse_feed_rejects_unreadable_pages(content: bytes, reason: str) -> None:
    with pytest.raises(MalformedFeed, match=reason):
        parse_feed(content)


def test_client_pages_over_recorded_search(
    arxiv_server: ArxivServer, recorded_search: bytes
) -> None:
    client = make_client(arxiv_server.url, page_size=10)

    results = list(client.results(arxiv.Search(query="testing", max_results=60)))

    assert all(isinstance(result, dict) for result in results)
    assert [result["id"] for result in results] == lxml_ids(recorded_search)[:60]
    assert len({result["id"] for result in results}) == 60
    pages = [(log.params["start"], log.params["max_results"]) for log in arxiv_server.requests]
    assert pages == [(str(start), "10") for start in range(0, 60, 10)]
    assert client.total_results == parse_feed(recorded_search)[0].total_results == 214881


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        (["1707.08567"], ["1707.08567v1"]),
        (["1605.08386"], ["1605.08386v1"]),
        (["2104.12255v1"], ["2104.12255v1"]),
        (["astro-ph/0601001"], ["astro-ph/0601001v1"]),
        (["quant-ph/0201082v1"], ["quant-ph/0201082v1"]),
        (["0808.05394", "1707.08567"], ["1707.08567v1"]),
    ],
)
def test_client_looks_up_ids(
    arxiv_server: ArxivServer, ids: list[str], expected: list[str]
) -> None:
    client = make_client(arxiv_server.url)

    results = lookup(client, *ids)

    assert [result["id"] for result in results] == [f"http://arxiv.org/abs/{i}" for i in expected]
    papers = [from_api_entry(result) for result in results]
    assert [f"{paper.arxiv_id}v{paper.version}" for paper in papers] == expected
    assert len(arxiv_server.requests) == 1


def test_client_decodes_utf8_author_names(arxiv_server: ArxivServer) -> None:
    [result] = lookup(make_client(arxiv_server.url), "1707.08567")

    assert "Dirk Wübben" in from_api_entry(result).authors


@pytest.mark.parametrize("arxiv_id", ["0000.0000", "0808.05394"])
def test_client_empty_result_yields_nothing(arxiv_server: ArxivServer, arxiv_id: str) -> None:
    client = make_client(arxiv_server.url)

    assert lookup(client, arxiv_id) == []
    assert client.total_results == 0
    assert len(arxiv_server.requests) == 1


def test_error_feed_raises_naming_query_without_retry(arxiv_server: ArxivServer) -> None:
    client = make_client(arxiv_server.url, max_retries=3)

    with pytest.raises(ArxivApiError, match="incorrect id format for abc") as raised:
        lookup(client, "abc")

    assert raised.value.query == "id_list='abc'"
    assert "id_list='abc'" in str(raised.value)
    assert "HTTP 400" in str(raised.value)
    assert [log.status for log in arxiv_server.requests] == [400]


def test_legacy_feed_through_client_normalizes(arxiv_server: ArxivServer) -> None:
    client = make_client(arxiv_server.legacy_url)

    [result] = lookup(client, "1111.2011v2")

    paper = from_api_entry(result)
    assert (paper.arxiv_id, paper.version) == ("1111.2011", 2)
    assert paper.title == (
        "Quantum Criticality for Extended Nodes on a Bethe Lattice in the Large Connectivity Limit"
    )
    assert paper.abstract.startswith("Theoretical description of anisotropic systems, such as")
    assert paper.authors == ("James M. Murray", "Adrian Del Maestro", "Zlatko Tesanovic")
    assert paper.categories == ("cond-mat.str-el", "cond-mat.stat-mech")
    assert (paper.published, paper.updated) == (
        utc(2011, 11, 8, 18, 48, 36),
        utc(2012, 4, 2, 12, 38, 54),
    )
    assert paper.doi == "10.1103/PhysRevB.85.115117"
    assert paper.journal_ref == "Phys. Rev. B 85, 115117 (2012)"
    assert paper.comments == "8 pages, 3 figures. Published version"


def test_503_with_retry_after_is_waited_out(arxiv_server: ArxivServer) -> None:
    arxiv_server.inject(status(503, retry_after=0.3))

    results = lookup(make_client(arxiv_server.url), "1707.08567")

    assert len(results) == 1
    assert [log.status for log in arxiv_server.requests] == [503, 200]
    assert gaps(arxiv_server)[0] >= 0.3 - TOLERANCE


def test_server_errors_exhaust_retries(arxiv_server: ArxivServer) -> None:
    arxiv_server.inject(status(500), status(500), status(500))
    client = make_client(arxiv_server.url, max_retries=2, delay_seconds=0.1)

    with pytest.raises(ArxivApiError, match="HTTP 500; gave up after 3 attempts") as raised:
        lookup(client, "1707.08567")

    assert raised.value.query == "id_list='1707.08567'"
    assert [log.status for log in arxiv_server.requests] == [500, 500, 500]
    assert min(gaps(arxiv_server)) >= 0.1 - TOLERANCE


def test_timeout_is_retried(arxiv_server: ArxivServer) -> None:
    arxiv_server.inject(delay(1.0))

    results = lookup(make_client(arxiv_server.url, timeout_seconds=0.5), "1707.08567")

    assert [result["id"] for result in results] == ["http://arxiv.org/abs/1707.08567v1"]
    assert len(arxiv_server.requests) == 2
    assert gaps(arxiv_server)[0] >= 0.5 - TOLERANCE


def test_empty_page_mid_paging_is_retried(
    arxiv_server: ArxivServer, recorded_search: bytes
) -> None:
    client = make_client(arxiv_server.url, page_size=10)
    results = client.results(arxiv.Search(query="testing", max_results=30))
    first = next(results)
    arxiv_server.inject(empty_page())

    ids = [first["id"], *(result["id"] for result in results)]

    assert ids == lxml_ids(recorded_search)[:30]
    assert [log.params["start"] for log in arxiv_server.requests] == ["0", "10", "10", "20"]
    assert [log.status for log in arxiv_server.requests] == [200] * 4


def test_malformed_page_is_retried(arxiv_server: ArxivServer) -> None:
    arxiv_server.inject(malformed())

    results = lookup(make_client(arxiv_server.url), "1707.08567")

    assert len(results) == 1
    assert len(arxiv_server.requests) == 2


def test_retry_after_beyond_max_wait_fails_at_once(arxiv_server: ArxivServer) -> None:
    arxiv_server.inject(status(429, retry_after=30))
    client = make_client(arxiv_server.url, max_wait_seconds=1.0)
    began = time.monotonic()

    with pytest.raises(ArxivApiError, match="HTTP 429; the server asks to wait 30 s, more than"):
        lookup(client, "1707.08567")

    assert time.monotonic() - began < 1.0
    assert len(arxiv_server.requests) == 1


def test_requests_carry_descriptive_user_agent(arxiv_server: ArxivServer) -> None:
    lookup(make_client(arxiv_server.url), "1707.08567")

    assert USER_AGENT.startswith("arxiv-kedro/")
    assert [log.user_agent for log in arxiv_server.requests] == [USER_AGENT]


@pytest.mark.slow
def test_requests_are_spaced_by_delay(arxiv_server: ArxivServer) -> None:
    client = make_client(arxiv_server.url, page_size=10, delay_seconds=3.0)

    results = list(client.results(arxiv.Search(query="testing", max_results=30)))

    assert len(results) == 30
    assert len(arxiv_server.requests) == 3
    # Measured at the server, as each request arrives: never closer than arXiv's 3 s, with no
    # tolerance — the client keeps a margin (SPACING_MARGIN_SECONDS) for the jitter on the way.
    assert min(gaps(arxiv_server)) >= 3.0


@pytest.mark.parametrize("page_size", [0, 2001])
def test_page_size_out_of_range_is_refused(page_size: int) -> None:
    with pytest.raises(ValueError, match=r"page_size must be within 1\.\.2000"):
        ArxivApiClient("http://127.0.0.1:9/api/query", page_size=page_size, delay_seconds=0)


@pytest.mark.parametrize("url", [DEFAULT_URL, "https://arxiv.org/api/query"])
def test_short_delay_for_arxiv_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="below arXiv's rule of one request every 3 s"):
        ArxivApiClient(url, delay_seconds=2.9)


def test_short_delay_for_local_server_is_allowed() -> None:
    client = ArxivApiClient("http://127.0.0.1:9/api/query", page_size=2000, delay_seconds=0)

    assert (client.page_size, client.delay_seconds) == (2000, 0)
    assert ArxivApiClient().delay_seconds == 3.0


def test_window_query() -> None:
    window = Window(CATEGORIES, utc(2025, 3, 18), utc(2025, 3, 19))

    query = window.query()

    assert query == "(cat:cs.CL OR cat:cs.AI) AND submittedDate:[202503180000 TO 202503182359]"


def test_window_query_single_category_to_the_minute() -> None:
    window = Window(("astro-ph.GA",), utc(2025, 3, 18, 6, 30), utc(2025, 3, 18, 12, 1))

    query = window.query()

    assert query == "(cat:astro-ph.GA) AND submittedDate:[202503180630 TO 202503181200]"


def test_plan_first_run_uses_lookback() -> None:
    windows = plan_windows(CATEGORIES, {}, NOW, lookback=2 * DAY, overlap=HOUR, slice_length=DAY)

    assert windows == [
        Window(CATEGORIES, utc(2025, 3, 18, 12, 34), utc(2025, 3, 19, 12, 34)),
        Window(CATEGORIES, utc(2025, 3, 19, 12, 34), utc(2025, 3, 20, 12, 34)),
        Window(CATEGORIES, utc(2025, 3, 20, 12, 34), utc(2025, 3, 20, 12, 35)),
    ]


def test_plan_later_run_starts_at_watermark_minus_overlap() -> None:
    mark = utc(2025, 3, 19, 18, 0, 30)

    windows = plan_windows(
        CATEGORIES, dict.fromkeys(CATEGORIES, mark), NOW, 30 * DAY, 6 * HOUR, DAY
    )

    assert windows == [
        Window(CATEGORIES, utc(2025, 3, 19, 12), utc(2025, 3, 20, 12)),
        Window(CATEGORIES, utc(2025, 3, 20, 12), utc(2025, 3, 20, 12, 35)),
    ]


def test_plan_groups_categories_by_start_oldest_first() -> None:
    watermarks = {"cs.CL": utc(2025, 3, 20, 6), "cs.AI": utc(2025, 3, 19, 6)}
    categories = ["cs.CL", "cs.AI", "cs.LG", "cs.CL"]

    windows = plan_windows(categories, watermarks, NOW, 3 * DAY, 6 * HOUR, 2 * DAY)

    end = utc(2025, 3, 20, 12, 35)
    assert windows == [
        Window(("cs.LG",), utc(2025, 3, 17, 12, 34), utc(2025, 3, 19, 12, 34)),
        Window(("cs.LG",), utc(2025, 3, 19, 12, 34), end),
        Window(("cs.AI",), utc(2025, 3, 19), end),
        Window(("cs.CL",), utc(2025, 3, 20), end),
    ]


def test_plan_watermark_in_the_future_fetches_the_current_minute() -> None:
    windows = plan_windows(["cs.CL"], {"cs.CL": NOW + DAY}, NOW, DAY, HOUR, DAY)

    assert windows == [Window(("cs.CL",), utc(2025, 3, 20, 12, 34), utc(2025, 3, 20, 12, 35))]


def test_fetch_yields_raw_pages_with_checkpoints(
    corpus_server: ArxivServer, corpus: list[dict[str, Any]]
) -> None:
    window = Window(CATEGORIES, utc(2025, 3, 18), utc(2025, 3, 21))
    client = make_client(corpus_server.url)

    batches = list(client.fetch(window))

    expected = expected_ids(corpus, window)
    assert len(expected) == 225
    assert [len(batch.records) for batch in batches] == [100, 100, 25, 0]
    assert [raw["id"] for batch in batches for raw in batch.records] == expected
    assert all(isinstance(raw, dict) for batch in batches for raw in batch.records)
    assert all(batch.source == "api" and batch.rejected == [] for batch in batches)
    checkpoints = [batch.checkpoint for batch in batches]
    assert all(checkpoint.categories == CATEGORIES for checkpoint in checkpoints)
    throughs = [checkpoint.through for checkpoint in checkpoints]
    assert throughs == sorted(throughs)
    for batch in batches[:-1]:
        published = [iso_datetime(raw["published"], "published") for raw in batch.records]
        assert batch.checkpoint.through == max(published)
    assert throughs[-1] == window.end
    assert client.total_results == len(expected)
    assert len(corpus_server.requests) == 3


def test_fetch_planned_windows_lose_nothing_at_boundaries(
    corpus_server: ArxivServer, corpus: list[dict[str, Any]]
) -> None:
    now = utc(2025, 3, 20, 23, 59, 30)
    windows = plan_windows(CATEGORIES, {}, now, 3 * DAY - timedelta(minutes=1), HOUR, DAY)
    assert [(w.start, w.end) for w in windows] == [
        (utc(2025, 3, day), utc(2025, 3, day + 1)) for day in (18, 19, 20)
    ]
    client = make_client(corpus_server.url)

    ids = [
        raw["id"] for window in windows for batch in client.fetch(window) for raw in batch.records
    ]

    assert ids == expected_ids(corpus, Window(CATEGORIES, utc(2025, 3, 18), utc(2025, 3, 21)))
    assert len({parse_arxiv_id(i)[0] for i in ids}) == len(ids)


def test_fetch_empty_window_yields_final_checkpoint(corpus_server: ArxivServer) -> None:
    window = Window(("math.AG",), utc(2025, 3, 18), utc(2025, 3, 21))
    client = make_client(corpus_server.url)

    [batch] = client.fetch(window)

    assert batch.records == []
    assert batch.checkpoint is not None
    assert (batch.checkpoint.categories, batch.checkpoint.through) == (("math.AG",), window.end)
    assert client.total_results == 0
    assert len(corpus_server.requests) == 1
