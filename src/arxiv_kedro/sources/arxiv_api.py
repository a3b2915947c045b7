"""The live arXiv API: incremental windows per category, fetched politely through `arxiv.Client`."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any
from urllib.parse import parse_qs, urlsplit

import arxiv
import requests
from arxiv._feed import FeedHeader, ParsedFeed
from lxml import etree

from arxiv_kedro import __version__
from arxiv_kedro.coordination.rate_limit import LocalTokenBucket, RateLimiter
from arxiv_kedro.papers import InvalidRecord, iso_datetime
from arxiv_kedro.retry import Backoff, GiveUp, retry_after_seconds
from arxiv_kedro.sources import Checkpoint, RawBatch

logger = logging.getLogger(__name__)

DEFAULT_URL = "https://export.arxiv.org/api/query"
MAX_PAGE_SIZE = 2000  # the API's own limit per request
MIN_DELAY_SECONDS = 3.0  # arXiv's terms of use: no more than one request every three seconds
# A request may reach the server sooner after the previous one than it left here (scheduling and
# network jitter): requests are spaced this much wider than asked, so arXiv never sees < 3 s.
SPACING_MARGIN_SECONDS = 0.25
USER_AGENT = (
    f"arxiv-kedro/{__version__} (incremental paper ingestion; arxiv.py/{arxiv.__version__})"
)

_ATOM = "{http://www.w3.org/2005/Atom}"
_ARXIV = "{http://arxiv.org/schemas/atom}"
_OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"
_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


class ArxivApiError(RuntimeError):
    """The API refused a query or kept failing; the message names the query and the URL."""

    def __init__(self, url: str, reason: str):
        self.url = url
        self.query = describe_query(url)
        self.reason = reason
        super().__init__(f"arXiv API request for {self.query} failed: {reason} [{url}]")

    def __reduce__(self) -> tuple:
        return (self.__class__, (self.url, self.reason))


class MalformedFeed(ValueError):
    """The response body is not a readable Atom feed."""


class _Transient(Exception):
    """A failure worth retrying: 429/5xx, timeouts, dropped connections, spurious empty pages."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


def request_interval(delay_seconds: float) -> float:
    """Seconds between the starts of two requests: the delay asked for, plus the margin."""
    return delay_seconds + SPACING_MARGIN_SECONDS if delay_seconds > 0 else 0.0


def describe_query(url: str) -> str:
    """The human part of a query URL: its search_query and/or id_list."""
    params = parse_qs(urlsplit(url).query)
    parts = [f"{key}={params[key][0]!r}" for key in ("search_query", "id_list") if key in params]
    return " ".join(parts) or repr(url)


def parse_feed(content: bytes) -> tuple[FeedHeader, list[dict[str, Any]]]:
    """Parse an Atom page into its opensearch header and one raw dict per entry.

    Entries are extracted without judging them: validation happens in `papers`, so an entry with
    a missing or broken field is quarantined instead of silently skipped (as `arxiv` does).
    """
    try:
        root = etree.fromstring(content, _XML_PARSER)
    except etree.XMLSyntaxError as exc:
        raise MalformedFeed(str(exc)) from None
    if root.tag != f"{_ATOM}feed":
        raise MalformedFeed(f"root element is {root.tag!r}, not an Atom feed")
    try:
        header = FeedHeader(
            total_results=int(root.findtext(f"{_OPENSEARCH}totalResults") or 0),
            items_per_page=int(root.findtext(f"{_OPENSEARCH}itemsPerPage") or 0),
            start_index=int(root.findtext(f"{_OPENSEARCH}startIndex") or 0),
        )
    except ValueError as exc:
        raise MalformedFeed(f"bad opensearch header: {exc}") from None
    return header, [_entry_to_dict(entry) for entry in root.iterfind(f"{_ATOM}entry")]


_AUTHOR, _NAME, _CATEGORY, _LINK = (
    f"{_ATOM}{tag}" for tag in ("author", "name", "category", "link")
)
_PRIMARY = f"{_ARXIV}primary_category"
_TEXT_FIELDS = {
    f"{_ATOM}id": "id",
    f"{_ATOM}title": "title",
    f"{_ATOM}summary": "summary",
    f"{_ATOM}published": "published",
    f"{_ATOM}updated": "updated",
    f"{_ARXIV}doi": "doi",
    f"{_ARXIV}journal_ref": "journal_ref",
    f"{_ARXIV}comment": "comment",
}


def _entry_to_dict(entry: Any) -> dict[str, Any]:
    """One pass over the entry's children (much faster than a lookup per field)."""
    raw: dict[str, Any] = dict.fromkeys(_TEXT_FIELDS.values())
    raw.update(primary_category=None, authors=[], categories=[], links=[])
    authors, categories, links = raw["authors"], raw["categories"], raw["links"]
    for child in entry:
        tag = child.tag
        if tag == _AUTHOR:
            authors.append(child.findtext(_NAME))
        elif tag == _CATEGORY:
            categories.append(child.get("term"))
        elif tag == _LINK:
            links.append(dict(child.attrib))
        elif tag == _PRIMARY:
            raw["primary_category"] = child.get("term")
        elif tag in _TEXT_FIELDS:
            raw[_TEXT_FIELDS[tag]] = child.text
    return raw


def _api_error(entries: list[dict[str, Any]]) -> str | None:
    """arXiv reports a bad query as a feed whose single entry has an .../api/errors#... id."""
    for entry in entries:
        if "/api/errors" in (entry.get("id") or ""):
            return (entry.get("summary") or "unspecified error").strip()
    return None


def _root_cause(exc: BaseException) -> str:
    """The innermost reason of a connection error, without urllib3's retry wrapping."""
    while exc.__cause__ or exc.__context__ or getattr(exc, "reason", None):
        inner = getattr(exc, "reason", None)
        exc = inner if isinstance(inner, BaseException) else exc.__cause__ or exc.__context__
    return str(exc)


@dataclass(frozen=True)
class Window:
    """Papers of `categories` submitted in [start, end), both on whole minutes, UTC."""

    categories: tuple[str, ...]
    start: datetime
    end: datetime

    def query(self) -> str:
        """The API query; submittedDate bounds are inclusive, to the minute."""
        cats = " OR ".join(f"cat:{category}" for category in self.categories)
        last = self.end - timedelta(minutes=1)
        return f"({cats}) AND submittedDate:[{self.start:%Y%m%d%H%M} TO {last:%Y%m%d%H%M}]"


def _floor_minute(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def plan_windows(
    categories: Iterable[str],
    watermarks: Mapping[str, datetime],
    now: datetime,
    lookback: timedelta,
    overlap: timedelta,
    slice_length: timedelta,
) -> list[Window]:
    """Cut the time to fetch into windows, oldest first.

    A category starts at its watermark minus `overlap` (papers are announced days after they are
    submitted), or `lookback` before now on its first run. Categories that start at the same
    moment share one query; each span is sliced so no single query grows unbounded.
    """
    end = _floor_minute(now) + timedelta(minutes=1)
    groups: dict[datetime, list[str]] = {}
    for category in dict.fromkeys(categories):
        mark = watermarks.get(category)
        start = mark - overlap if mark is not None else now - lookback
        groups.setdefault(_floor_minute(min(start, now)), []).append(category)
    windows = []
    for start, members in sorted(groups.items()):
        cursor = start
        while cursor < end:
            stop = min(cursor + slice_length, end)
            windows.append(Window(tuple(members), cursor, stop))
            cursor = stop
    return windows


class ArxivApiClient(arxiv.Client):
    """`arxiv.Client` with what a production fetcher needs.

    The package gives paging (`Client.results`) and URL building; this class replaces its fetch
    step with: a configurable endpoint, a request timeout, a descriptive User-Agent, a rate
    limit on *every* request (retries included; shareable across processes), retries with
    exponential backoff that honour Retry-After on 429/5xx, timeouts, dropped connections and
    spurious empty pages, and clear errors naming the query for error feeds and malformed
    pages. Pages carry raw entry dicts.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        page_size: int = MAX_PAGE_SIZE,
        delay_seconds: float = MIN_DELAY_SECONDS,
        timeout_seconds: float = 60.0,
        max_retries: int = 4,
        backoff_seconds: float = 2.0,
        max_wait_seconds: float = 300.0,
        user_agent: str = USER_AGENT,
        rate_limiter: RateLimiter | None = None,
    ):
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be within 1..{MAX_PAGE_SIZE}, got {page_size}")
        host = urlsplit(url).hostname or ""
        if host.endswith("arxiv.org") and delay_seconds < MIN_DELAY_SECONDS:
            raise ValueError(
                f"delay_seconds={delay_seconds} is below arXiv's rule of one request every "
                f"{MIN_DELAY_SECONDS:g} s for {host}"
            )
        super().__init__(page_size=page_size, delay_seconds=delay_seconds, num_retries=max_retries)
        self.url = url
        self.query_url_format = f"{url}?{{}}"
        self.timeout_seconds = timeout_seconds
        self.backoff = Backoff(max_retries, backoff_seconds, max_wait_seconds)
        self._session.headers["User-Agent"] = user_agent
        # One request per `delay_seconds`: for this process, or for the whole deployment when
        # the limiter is shared (Redis).
        if rate_limiter is None and delay_seconds > 0:
            rate_limiter = LocalTokenBucket(rate=1 / request_interval(delay_seconds))
        self.rate_limiter = rate_limiter
        self.total_results: int | None = None  # of the current search, once its first page is in

    def __repr__(self) -> str:
        return f"ArxivApiClient(url={self.url!r}, page_size={self.page_size})"

    def fetch(self, window: Window) -> Iterator[RawBatch]:
        """Yield the window's entries one page at a time, oldest submission first.

        Each batch carries a checkpoint: the categories are complete up to the last submission
        date seen, and up to the window's end after its final (possibly empty) batch.
        """
        search = arxiv.Search(
            query=window.query(),
            max_results=None,
            sort_by=arxiv.SortCriterion.SubmittedDate,
            sort_order=arxiv.SortOrder.Ascending,
        )
        self.total_results = None
        results = self.results(search)
        while entries := list(islice(results, self.page_size)):
            through = _last_published(entries) or window.start
            yield RawBatch("api", entries, checkpoint=Checkpoint(window.categories, through))
        yield RawBatch("api", [], checkpoint=Checkpoint(window.categories, window.end))

    def _parse_feed(self, url: str, first_page: bool = True, _try_index: int = 0) -> ParsedFeed:
        for attempt in range(self.backoff.max_retries + 1):
            try:
                feed = self._request_page(url, first_page)
            except _Transient as exc:
                try:
                    wait = self.backoff.wait(attempt, exc.retry_after)
                except GiveUp as give_up:
                    raise ArxivApiError(url, f"{exc}; {give_up}") from exc
                logger.warning(
                    "arXiv API: %s for %s; retry %d/%d in %.1f s",
                    exc, describe_query(url), attempt + 1, self.backoff.max_retries, wait,
                )  # fmt: skip
                time.sleep(wait)
            else:
                if first_page:
                    self.total_results = feed.header.total_results
                return feed
        raise AssertionError("unreachable")

    def _request_page(self, url: str, first_page: bool) -> ParsedFeed:
        if self.rate_limiter is not None:
            self.rate_limiter.acquire()
        logger.debug("GET %s", url)
        try:
            response = self._session.get(url, timeout=self.timeout_seconds)
        except requests.Timeout:
            raise _Transient(f"no answer within {self.timeout_seconds:g} s") from None
        except requests.ConnectionError as exc:
            raise _Transient(
                f"cannot connect ({_root_cause(exc)}); check the network and ARXIV_API_URL, "
                "or backfill offline with ARXIV_SNAPSHOT=<snapshot file>"
            ) from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise _Transient(f"HTTP {status}", retry_after_seconds(response.headers))
        try:
            header, entries = parse_feed(response.content)
        except MalformedFeed as exc:
            if status != 200:
                raise ArxivApiError(url, f"HTTP {status}") from None
            raise _Transient(f"malformed feed ({exc})") from None
        error = _api_error(entries)
        if error or status != 200:
            raise ArxivApiError(url, f"HTTP {status}: {error or 'unexpected status'}")
        if not entries and (not first_page or header.total_results > header.start_index):
            raise _Transient(
                f"empty page at start={header.start_index} of {header.total_results} results"
            )
        return ParsedFeed(header=header, results=entries)


def _last_published(entries: Iterable[dict[str, Any]]) -> datetime | None:
    latest = None
    for entry in entries:
        try:
            moment = iso_datetime(entry.get("published"), "published")
        except InvalidRecord:
            continue  # the entry itself will be quarantined
        latest = moment if latest is None else max(latest, moment)
    return latest
