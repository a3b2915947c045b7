"""Checks of the local arXiv API test server against the recorded data and the arxiv client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import arxiv
import pytest
import requests
from lxml import etree

from .arxiv_server import (
    ARXIV_NS,
    ATOM_NS,
    OPENSEARCH_NS,
    ArxivServer,
    delay,
    empty_page,
    load_corpus,
    malformed,
    shared_data_dir,
    status,
)

DATA = shared_data_dir()
pytestmark = pytest.mark.skipif(
    DATA is None, reason="shared arXiv data not found (set ARXIV_SHARED_DATA)"
)
NS = {"a": ATOM_NS, "os": OPENSEARCH_NS, "arxiv": ARXIV_NS}
SYNTHETIC = "cat:cs.CL AND submittedDate:[202503180000 TO 202503202359]"
TESTING_PAGE = {"search_query": "testing", "id_list": "", "start": "0", "max_results": "10"}


@pytest.fixture(scope="module")
def corpus() -> list[dict]:
    assert DATA is not None
    return load_corpus(DATA / "snapshot" / "arxiv-daily-2025-03_2026-04.jsonl.gz", limit=2000)


@pytest.fixture
def server(corpus: list[dict]) -> Iterator[ArxivServer]:
    assert DATA is not None
    api = DATA / "arxiv-api"
    with ArxivServer(api / "recorded-2026", api / "legacy-2016", corpus) as running:
        yield running


def _client(server: ArxivServer, page_size: int = 10, retries: int = 3) -> arxiv.Client:
    client = arxiv.Client(page_size=page_size, delay_seconds=0, num_retries=retries)
    client.query_url_format = server.url + "?{}"
    return client


def _feed(response: requests.Response) -> etree._Element:
    return etree.fromstring(response.content)


def _total(feed: etree._Element) -> int:
    return int(feed.findtext("os:totalResults", namespaces=NS))


def test_arxiv_client_pages_through_recorded_search(server: ArxivServer) -> None:
    results = list(_client(server).results(arxiv.Search(query="testing", max_results=60)))

    assert len(results) == 60
    assert len({r.entry_id for r in results}) == 60
    assert [log.params["start"] for log in server.requests] == ["0", "10", "20", "30", "40", "50"]
    assert all(log.user_agent.startswith("arxiv.py/") for log in server.requests)
    times = [log.time for log in server.requests]
    assert times == sorted(times)


def test_recordings_are_served_as_utf8(server: ArxivServer) -> None:
    [result] = _client(server, page_size=100).results(arxiv.Search(id_list=["1707.08567"]))

    assert "Dirk Wübben" in [author.name for author in result.authors]


def test_recorded_error_feed_is_400(server: ArxivServer) -> None:
    response = requests.get(server.url, params={"id_list": "abc", "max_results": "100"})

    assert response.status_code == 400
    assert b"incorrect id format for abc" in response.content
    with pytest.raises(arxiv.HTTPError):
        list(_client(server, retries=0).results(arxiv.Search(id_list=["abc"])))


def test_unknown_query_is_404_naming_it(server: ArxivServer) -> None:
    response = requests.get(server.url, params={"search_query": "au:nobody"})

    assert response.status_code == 404
    assert "au:nobody" in response.text
    assert server.requests[-1].status == 404


def test_synthetic_query_pages_over_the_corpus(server: ArxivServer, corpus: list[dict]) -> None:
    expected = sorted(
        (r["update_date"], r["id"])
        for r in corpus
        if "cs.CL" in r["categories"].split() and "2025-03-18" <= r["update_date"] <= "2025-03-20"
    )
    search = arxiv.Search(
        query=SYNTHETIC,
        max_results=None,
        sort_by=arxiv.SortCriterion.SubmittedDate,
        sort_order=arxiv.SortOrder.Ascending,
    )

    results = list(_client(server, page_size=25).results(search))

    assert [r.get_short_id() for r in results] == [f"{i}v1" for _, i in expected]
    assert len(server.requests) == -(-len(expected) // 25)
    first = requests.get(server.url, params={"search_query": SYNTHETIC, "max_results": "5"})
    assert _total(_feed(first)) == len(expected) > 25


def test_synthetic_descending_order_and_or_group(server: ArxivServer) -> None:
    query = "(cat:cs.CL OR cat:cs.AI) AND submittedDate:[202503180000 TO 202503202359]"
    params = {"search_query": query, "max_results": "2000", "sortBy": "submittedDate"}
    ascending = _feed(requests.get(server.url, params={**params, "sortOrder": "ascending"}))
    descending = _feed(requests.get(server.url, params={**params, "sortOrder": "descending"}))

    ids = ascending.xpath("a:entry/a:id/text()", namespaces=NS)
    assert descending.xpath("a:entry/a:id/text()", namespaces=NS) == ids[::-1]
    only_cl = _feed(requests.get(server.url, params={"search_query": SYNTHETIC}))
    assert len(ids) == _total(ascending) > _total(only_cl)
    for entry in ascending.iterfind("a:entry", NS):
        terms = entry.xpath("a:category/@term", namespaces=NS)
        assert {"cs.CL", "cs.AI"} & set(terms)
        assert entry.find("arxiv:primary_category", NS).get("term") == terms[0]


def test_synthetic_entry_format() -> None:
    record = {
        "id": "0704.0001",
        "authors": "A. Mishchenko (1 and 2), B. Smith (Los\n  Alamos), and C. Jones ((1) CREST)",
        "title": "A title\n  on two lines",
        "abstract": "  First line\nwrapped.\n  Second paragraph.\n",
        "categories": "hep-ph math.CO",
        "comments": "37 pages",
        "journal-ref": "Phys.Rev.D76:013009,2007",
        "doi": "10.1103/PhysRevD.76.013009",
        "versions": [
            {"version": "v1", "created": "Mon, 2 Apr 2007 19:18:42 GMT"},
            {"version": "v2", "created": "Tue, 24 Jul 2007 20:10:27 GMT"},
        ],
        "update_date": "2008-11-13",
    }
    with ArxivServer(corpus=[record]) as server:
        response = requests.get(server.url, params={"search_query": "cat:math.CO"})

    assert response.headers["Content-Type"].startswith("application/atom+xml")
    entry = _feed(response).find("a:entry", NS)
    assert entry.findtext("a:id", namespaces=NS) == "http://arxiv.org/abs/0704.0001v2"
    assert entry.findtext("a:title", namespaces=NS) == "A title on two lines"
    assert (
        entry.findtext("a:summary", namespaces=NS) == "  First line wrapped.\n  Second paragraph."
    )
    assert entry.findtext("a:published", namespaces=NS) == "2007-04-02T19:18:42Z"
    assert entry.findtext("a:updated", namespaces=NS) == "2007-07-24T20:10:27Z"
    names = entry.xpath("a:author/a:name/text()", namespaces=NS)
    assert names == ["A. Mishchenko", "B. Smith", "C. Jones"]
    assert entry.find("arxiv:primary_category", NS).get("term") == "hep-ph"
    assert entry.findtext("arxiv:doi", namespaces=NS) == record["doi"]
    assert entry.findtext("arxiv:journal_ref", namespaces=NS) == record["journal-ref"]
    assert entry.findtext("arxiv:comment", namespaces=NS) == "37 pages"
    pdf = entry.find("a:link[@title='pdf']", NS).get("href")
    assert pdf == "https://arxiv.org/pdf/0704.0001v2"


def test_legacy_feeds(server: ArxivServer) -> None:
    assert DATA is not None
    query = 'au:del_maestro AND ti:"quantum criticality"'
    name = 'search_query=au:del_maestro+AND+ti:"quantum+criticality".xml'
    path = DATA / "arxiv-api" / "legacy-2016" / name

    response = requests.get(server.legacy_url, params={"search_query": query})

    assert response.status_code == 200
    assert response.content == path.read_bytes()
    by_id = requests.get(server.legacy_url, params={"id_list": "1111.2011v2"})
    assert by_id.status_code == 200
    assert requests.get(server.legacy_url, params={"id_list": "nope"}).status_code == 404


def test_status_faults_are_consumed_in_order(server: ArxivServer) -> None:
    server.inject(status(503, retry_after=2), status(429))

    codes = [requests.get(server.url, params=TESTING_PAGE) for _ in range(3)]

    assert [r.status_code for r in codes] == [503, 429, 200]
    assert codes[0].headers["Retry-After"] == "2"
    assert "Retry-After" not in codes[1].headers
    assert [log.status for log in server.requests] == [503, 429, 200]


def test_delay_fault_triggers_read_timeout(server: ArxivServer) -> None:
    server.inject(delay(1.0))

    with pytest.raises(requests.ReadTimeout):
        requests.get(server.url, params=TESTING_PAGE, timeout=0.2)
    assert requests.get(server.url, params=TESTING_PAGE, timeout=5).status_code == 200


def test_empty_page_keeps_totals(server: ArxivServer) -> None:
    params = {**TESTING_PAGE, "start": "20"}
    server.inject(empty_page())

    empty, normal = (_feed(requests.get(server.url, params=params)) for _ in range(2))

    assert empty.findall("a:entry", NS) == []
    assert len(normal.findall("a:entry", NS)) == 10
    assert _total(empty) == _total(normal) == 214881
    assert empty.findtext("os:startIndex", namespaces=NS) == "20"


def test_malformed_fault_is_invalid_xml(server: ArxivServer) -> None:
    server.inject(malformed())

    response = requests.get(server.url, params={"search_query": SYNTHETIC})

    assert response.status_code == 200
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(response.content)


def test_arxiv_client_retries_through_spurious_pages(server: ArxivServer) -> None:
    results = _client(server).results(arxiv.Search(query="testing", max_results=20))
    first = next(results)
    server.inject(empty_page(), status(503))

    rest = list(results)

    assert len({first.entry_id, *(r.entry_id for r in rest)}) == 20
    starts = [log.params["start"] for log in server.requests]
    assert starts == ["0", "10", "10", "10"]


def test_load_corpus_limit_and_plain_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.jsonl"
    path.write_text("\n".join(json.dumps({"id": str(i)}) for i in range(3)) + "\n\n")

    assert [r["id"] for r in load_corpus(path)] == ["0", "1", "2"]
    assert len(load_corpus(path, limit=2)) == 2
