"""Local arXiv API server for integration tests and benchmarks (recorded, legacy, synthetic feeds).

`ArxivServer` speaks the export.arxiv.org query protocol (``GET /api/query``) on 127.0.0.1:

* recorded 2026 exchanges are replayed byte for byte when (search_query, id_list, start,
  max_results) match;
* synthetic ``cat:... AND submittedDate:[... TO ...]`` queries are answered from a snapshot corpus
  (Kaggle arxiv-metadata JSON-lines records) in the 2026 Atom format;
* 2016-format feeds are served under ``/legacy/api/query``;
* faults (HTTP errors, delays, spurious empty pages, malformed XML) can be queued with `inject`.

Run ``python -m tests.support.arxiv_server --snapshot PATH [--port N]`` to serve by hand.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import os
import re
import time
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qsl, unquote_plus, urlsplit

from lxml import etree

from tests.support.local_server import LocalServer

ATOM_NS = "http://www.w3.org/2005/Atom"
OPENSEARCH_NS = "http://a9.com/-/spec/opensearch/1.1/"
ARXIV_NS = "http://arxiv.org/schemas/atom"
ATOM_CONTENT_TYPE = "application/atom+xml; charset=utf-8"
API_PATH = "/api/query"
LEGACY_PATH = "/legacy/api/query"

_SYNTHETIC = re.compile(
    r"\s*(?:\((?P<group>\s*cat:[\w.-]+(?:\s+OR\s+cat:[\w.-]+)*\s*)\)|(?P<single>cat:[\w.-]+))"
    r"(?:\s+AND\s+submittedDate:\[\s*(?P<lo>\d{12})\s+TO\s+(?P<hi>\d{12})\s*\])?\s*"
)
_CAT_TERM = re.compile(r"cat:([\w.-]+)")
_PARENTHESISED = re.compile(r"\s*\([^()]*\)")
_AUTHOR_SEPARATOR = re.compile(r",\s*and\s+|\s+and\s+|,\s*")
_WRAPPED_NEWLINE = re.compile(r"\n(?!\s)")


def shared_data_dir() -> Path | None:
    """Return the shared arXiv data dir (``$ARXIV_SHARED_DATA`` or ``<repo>/../shared/data``)."""
    default = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    path = Path(os.environ.get("ARXIV_SHARED_DATA", default))
    return path if path.is_dir() else None


def load_corpus(path: Path, limit: int | None = None) -> list[dict]:
    """Read up to `limit` records from a ``.jsonl`` or ``.jsonl.gz`` snapshot, skipping blanks."""
    opener = gzip.open if path.suffix == ".gz" else open
    records: list[dict] = []
    with opener(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            if limit is not None and len(records) >= limit:
                break
            if line.strip():
                records.append(json.loads(line))
    return records


@dataclass
class RequestLog:
    """One request received by the server."""

    time: float
    path: str
    params: dict[str, str]
    status: int
    user_agent: str


@dataclass(frozen=True)
class Fault:
    """A misbehaviour applied to exactly one future request; build it with the factories below."""

    kind: str
    code: int = 200
    retry_after: float | None = None
    seconds: float = 0.0


def status(code: int, retry_after: float | None = None) -> Fault:
    """Answer with HTTP `code` (and a ``Retry-After`` header if given) and a short body."""
    return Fault("status", code=code, retry_after=retry_after)


def delay(seconds: float) -> Fault:
    """Sleep `seconds` before answering normally."""
    return Fault("delay", seconds=seconds)


def empty_page() -> Fault:
    """Answer with the normal feed's header (totals, start index) but zero entries."""
    return Fault("empty_page")


def malformed() -> Fault:
    """Answer 200 with the normal body cut in half (invalid XML)."""
    return Fault("malformed")


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes
    content_type: str = ATOM_CONTENT_TYPE
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class _Paper:
    record: dict
    published: datetime
    updated: datetime
    version: int


def _plain(code: int, text: str) -> _Response:
    return _Response(code, text.encode(), "text/plain; charset=utf-8")


def _wire_bytes(body: str) -> bytes:
    """Recover the bytes arXiv sent: recordings hold UTF-8 decoded as Latin-1 (mojibake)."""
    try:
        raw = body.encode("latin-1")
        raw.decode("utf-8")
    except UnicodeError:
        return body.encode("utf-8")
    return raw


def _query_key(params: dict[str, str]) -> tuple[str, str, str, str]:
    return (
        params.get("search_query", ""),
        params.get("id_list", ""),
        params.get("start", "0"),
        params.get("max_results", "10"),
    )


def _atom_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def _authors(authors: str | None) -> list[str]:
    """Split a snapshot authors string into names, dropping parenthesised affiliations."""
    text = _one_line(authors)
    removed = 1
    while removed:
        text, removed = _PARENTHESISED.subn("", text)
    return [name.strip() for name in _AUTHOR_SEPARATOR.split(text) if name.strip()]


def _paper(record: dict) -> _Paper:
    versions = record.get("versions") or []
    if versions:
        published = parsedate_to_datetime(versions[0]["created"])
        updated = parsedate_to_datetime(versions[-1]["created"])
    else:
        published = updated = datetime.fromisoformat(record["update_date"]).replace(tzinfo=UTC)
    return _Paper(record, published, updated, max(len(versions), 1))


def _sub(
    parent: etree._Element, tag: str, text: str | None = None, **attrib: str
) -> etree._Element:
    element = etree.SubElement(parent, tag, attrib)
    element.text = text
    return element


def _entry(feed: etree._Element, paper: _Paper) -> None:
    """Append one entry in the element order arXiv used in 2026."""
    record, atom, arxiv = paper.record, f"{{{ATOM_NS}}}", f"{{{ARXIV_NS}}}"
    versioned = f"{record['id']}v{paper.version}"
    categories = (record.get("categories") or "").split()
    entry = _sub(feed, atom + "entry")
    _sub(entry, atom + "id", f"http://arxiv.org/abs/{versioned}")
    _sub(entry, atom + "title", _one_line(record.get("title")))
    _sub(entry, atom + "updated", _atom_time(paper.updated))
    _sub(
        entry,
        atom + "link",
        href=f"https://arxiv.org/abs/{versioned}",
        rel="alternate",
        type="text/html",
    )
    _sub(
        entry,
        atom + "link",
        href=f"https://arxiv.org/pdf/{versioned}",
        rel="related",
        type="application/pdf",
        title="pdf",
    )
    summary = _WRAPPED_NEWLINE.sub(" ", (record.get("abstract") or "").rstrip())
    _sub(entry, atom + "summary", summary)
    for category in categories:
        _sub(entry, atom + "category", term=category, scheme=ARXIV_NS)
    _sub(entry, atom + "published", _atom_time(paper.published))
    if record.get("comments"):
        _sub(entry, arxiv + "comment", _one_line(record["comments"]))
    if categories:
        _sub(entry, arxiv + "primary_category", term=categories[0])
    if record.get("journal-ref"):
        _sub(entry, arxiv + "journal_ref", _one_line(record["journal-ref"]))
    for name in _authors(record.get("authors")):
        _sub(_sub(entry, atom + "author"), atom + "name", name)
    if record.get("doi"):
        doi = _one_line(record["doi"])
        _sub(entry, arxiv + "doi", doi)
        _sub(entry, atom + "link", rel="related", href=f"https://doi.org/{doi}", title="doi")


def _serialize(feed: etree._Element) -> bytes:
    etree.indent(feed, space="  ")
    return etree.tostring(feed, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _render_feed(
    search_query: str, start: int, max_results: int, total: int, papers: Iterable[_Paper]
) -> bytes:
    """Render a 2026-format arXiv Atom feed."""
    atom, opensearch = f"{{{ATOM_NS}}}", f"{{{OPENSEARCH_NS}}}"
    nsmap = {"opensearch": OPENSEARCH_NS, "arxiv": ARXIV_NS, None: ATOM_NS}
    feed = etree.Element(atom + "feed", nsmap=nsmap)
    query = f"search_query={search_query}&id_list=&start={start}&max_results={max_results}"
    digest = base64.b64encode(hashlib.sha1(query.encode()).digest()).decode().rstrip("=")
    _sub(feed, atom + "id", f"https://arxiv.org/api/{digest}")
    _sub(feed, atom + "title", f"arXiv Query: {query}")
    _sub(feed, atom + "updated", _atom_time(datetime.now(UTC)))
    link = f"https://arxiv.org/api/query?search_query={search_query}&start={start}"
    _sub(
        feed,
        atom + "link",
        href=f"{link}&max_results={max_results}&id_list=",
        type="application/atom+xml",
    )
    _sub(feed, opensearch + "itemsPerPage", str(max_results))
    _sub(feed, opensearch + "totalResults", str(total))
    _sub(feed, opensearch + "startIndex", str(start))
    for paper in papers:
        _entry(feed, paper)
    return _serialize(feed)


def _without_entries(body: bytes) -> bytes:
    """Drop every entry of a feed, keeping its header (and so its opensearch totals)."""
    feed = etree.fromstring(body)
    for entry in feed.findall(f"{{{ATOM_NS}}}entry"):
        feed.remove(entry)
    return _serialize(feed)


class ArxivServer(LocalServer):
    """A local arXiv API on 127.0.0.1 serving recordings, legacy feeds and a synthetic corpus."""

    name = "arxiv-server"

    def __init__(
        self,
        recordings_dir: Path | None = None,
        legacy_dir: Path | None = None,
        corpus: Iterable[dict] = (),
    ) -> None:
        super().__init__()
        self.requests: list[RequestLog] = []
        self._recordings: dict[tuple[str, str, str, str], tuple[int, bytes]] = {}
        for path in sorted(recordings_dir.glob("*.json")) if recordings_dir else ():
            exchange = json.loads(path.read_text(encoding="utf-8"))
            params = dict(parse_qsl(urlsplit(exchange["url"]).query, keep_blank_values=True))
            self._recordings[_query_key(params)] = (
                exchange["status_code"],
                _wire_bytes(exchange["body"]),
            )
        self._legacy: dict[tuple[str, str], Path] = {}
        for path in sorted(legacy_dir.glob("*.xml")) if legacy_dir else ():
            key, _, value = path.name.removesuffix(".xml").partition("=")
            query = unquote_plus(value)
            self._legacy[(query, "") if key == "search_query" else ("", query)] = path
        self._papers = sorted(
            (_paper(record) for record in corpus), key=lambda p: (p.published, p.record["id"])
        )
        self._times = [paper.published for paper in self._papers]
        self._ranks_by_category: dict[str, list[int]] = {}
        for rank, paper in enumerate(self._papers):
            for category in set((paper.record.get("categories") or "").split()):
                self._ranks_by_category.setdefault(category, []).append(rank)

    @property
    def url(self) -> str:
        """The query endpoint, without query string."""
        return self.base_url + API_PATH

    @property
    def legacy_url(self) -> str:
        """The endpoint serving the 2016-format feeds."""
        return self.base_url + LEGACY_PATH

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        received = time.monotonic()
        parts = urlsplit(handler.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        response = self._route(parts.path, params)
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
            response = self._apply(fault, response)
            self.requests.append(
                RequestLog(
                    received,
                    parts.path,
                    params,
                    response.status,
                    handler.headers.get("User-Agent", ""),
                )
            )
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.seconds)
        self._write(handler, response)

    @staticmethod
    def _apply(fault: Fault | None, response: _Response) -> _Response:
        if fault is None or fault.kind == "delay":
            return response
        if fault.kind == "status":
            headers = (
                () if fault.retry_after is None else (("Retry-After", f"{fault.retry_after:g}"),)
            )
            return _Response(
                fault.code,
                f"injected HTTP {fault.code}\n".encode(),
                "text/plain; charset=utf-8",
                headers,
            )
        if fault.kind == "empty_page":
            if response.status != 200:
                return response
            return _Response(200, _without_entries(response.body))
        return _Response(200, response.body[: len(response.body) // 2])

    def _route(self, path: str, params: dict[str, str]) -> _Response:
        if path == API_PATH:
            key = _query_key(params)
            if key in self._recordings:
                code, body = self._recordings[key]
                return _Response(code, body)
            match = _SYNTHETIC.fullmatch(key[0])
            if match:
                return self._synthetic(match, params)
            return _plain(404, f"no recording or synthetic match for query {params!r}\n")
        if path == LEGACY_PATH:
            legacy = self._legacy.get((params.get("search_query", ""), params.get("id_list", "")))
            if legacy is not None:
                return _Response(200, legacy.read_bytes())
            return _plain(404, f"no legacy feed for query {params!r}\n")
        return _plain(404, f"unknown path {path}\n")

    def _synthetic(self, match: re.Match[str], params: dict[str, str]) -> _Response:
        """Answer a category/date query from the corpus, sorted by (published, id)."""
        try:
            start = int(params.get("start", "0"))
            max_results = int(params.get("max_results", "10"))
        except ValueError:
            return _plain(400, f"start and max_results must be integers: {params!r}\n")
        low, high = 0, len(self._papers)
        if match["lo"]:
            first = datetime.strptime(match["lo"], "%Y%m%d%H%M").replace(tzinfo=UTC)
            last = datetime.strptime(match["hi"], "%Y%m%d%H%M").replace(tzinfo=UTC)
            low = bisect_left(self._times, first)
            high = bisect_left(self._times, last + timedelta(minutes=1))
        ranks: set[int] = set()
        for category in _CAT_TERM.findall(match["group"] or match["single"]):
            in_category = self._ranks_by_category.get(category, [])
            ranks.update(
                in_category[bisect_left(in_category, low) : bisect_left(in_category, high)]
            )
        ordered = sorted(ranks)
        if params.get("sortBy") == "submittedDate" and params.get("sortOrder") == "descending":
            ordered.reverse()
        page = (self._papers[rank] for rank in ordered[start : start + max_results])
        return _Response(200, _render_feed(match.string, start, max_results, len(ordered), page))


def main() -> None:
    """Serve recordings, legacy feeds and a snapshot corpus until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot", type=Path, required=True, help=".jsonl or .jsonl.gz")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: any free)")
    args = parser.parse_args()
    data = shared_data_dir()
    server = ArxivServer(
        recordings_dir=data / "arxiv-api" / "recorded-2026" if data else None,
        legacy_dir=data / "arxiv-api" / "legacy-2016" if data else None,
        corpus=load_corpus(args.snapshot),
    )
    server.start(args.port)
    print(
        f"arXiv API at {server.url} (legacy feeds: {server.legacy_url}); Ctrl-C stops", flush=True
    )
    server.serve_until_interrupted()


if __name__ == "__main__":
    main()
