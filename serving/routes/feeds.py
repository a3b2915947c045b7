"""Atom feeds (RFC 4287) of a category's newest papers and of a saved search, and the daily
digest of a category: its last announcement split as arXiv's listings are."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from lxml import etree

from arxiv_kedro import __version__
from arxiv_kedro.classification.registry import MODEL_NAME
from arxiv_kedro.stores.relational.read_model import QuerySyntaxError, parse_query
from serving import views
from serving.models import Digest, Problem
from serving.routes.papers import CATEGORY, ERRORS, Category, HasSummary
from serving.security import read_key
from serving.services import Services, Svc, json_response

router = APIRouter(tags=["feeds"], dependencies=[Depends(read_key)])
ATOM = "http://www.w3.org/2005/Atom"
ATOM_TYPE = "application/atom+xml"
ARXIV_SCHEME = "http://arxiv.org/schemas/atom"
ENTRIES = 50
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")  # XML 1.0
FeedCategory = Annotated[str, Path(max_length=32, pattern=CATEGORY, description="e.g. cs.CL")]
FEED_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    200: {"content": {ATOM_TYPE: {}}, "description": "an Atom feed"},
    422: {"model": Problem},
}


@router.get("/feeds/categories/{category}", response_class=Response, responses=FEED_RESPONSES)
async def category_feed(request: Request, svc: Svc, category: FeedCategory) -> Response:
    """The newest papers of a category (primary or cross-listed) as an Atom feed."""

    def compute() -> list[dict]:
        rows = svc.papers.list_papers(model_name=MODEL_NAME, category=category, limit=ENTRIES)
        return _entries(svc, rows, category)

    entries = json.loads(await svc.cached(f"feed:category:{category}", compute))
    title = f"arXiv {category} ({svc.taxonomy.name(category)}): newest papers"
    return _atom(request, title, entries)


@router.get("/feeds/search", response_class=Response, responses=FEED_RESPONSES)
async def search_feed(
    request: Request,
    svc: Svc,
    q: Annotated[str, Query(min_length=1, max_length=300, description="as for /v1/search")],
    category: Category = None,
    has_summary: HasSummary = None,
) -> Response:
    """A saved search as an Atom feed: its newest matches (subscribe to the URL)."""
    try:
        query = parse_query(q)
    except QuerySyntaxError as exc:
        raise HTTPException(422, str(exc)) from exc
    if not query:
        raise HTTPException(422, "q holds no word to look for (see /v1/search)")

    def compute() -> list[dict]:
        rows, _ = svc.papers.search(
            query, model_name=MODEL_NAME, category=category, newest=True, limit=ENTRIES
        )
        if has_summary is not None:
            summaries = views.summaries_of(svc.documents, rows)
            rows = [r for r in rows if (r["arxiv_id"] in summaries) == has_summary]
        return _entries(svc, rows, category)

    entries = json.loads(await svc.cached(f"feed:search:{category}:{has_summary}:{q}", compute))
    within = f" in {category}" if category else ""
    return _atom(request, f"arXiv search{within}: {q}", entries)


@router.get(
    "/v1/digest/{category}",
    response_model=Digest,
    responses={**ERRORS, 404: {"model": Problem}, 422: {"model": Problem}},
)
async def digest(
    svc: Svc,
    category: FeedCategory,
    day: Annotated[date | None, Query(description="UTC; default: the last with papers")] = None,
) -> Any:
    """The category's papers of one announcement day, as arXiv lists them: new submissions
    (primary here), cross-lists (primary elsewhere) and replacements (a new version that day)."""

    def compute() -> dict | None:
        start = None if day is None else datetime.combine(day, time(), tzinfo=UTC)
        found, rows = svc.papers.announced(category, model_name=MODEL_NAME, day=start)
        if found is None:
            return None
        summaries = views.summaries_of(svc.documents, rows)
        parts: dict[str, list[dict]] = {"new": [], "cross_lists": [], "replacements": []}
        for row in rows:
            if row["published"] < found:
                part = "replacements"
            else:
                part = "new" if row["primary_category"] == category else "cross_lists"
            parts[part].append(
                views.paper(row, summaries.get(row["arxiv_id"]), svc.taxonomy, category)
            )
        return {"category": category, "day": found.date().isoformat(), **parts}

    body = await svc.cached(f"digest:{category}:{day}", compute)
    if body == "null":
        raise HTTPException(404, f"no paper in {category}")
    return json_response(body)


def _entries(svc: Services, rows: list[dict], category: str | None) -> list[dict]:
    abstracts = svc.papers.abstracts([row["id"] for row in rows])
    return [
        {**views.paper(row, None, svc.taxonomy, category), "abstract": abstracts[row["id"]]}
        for row in rows
    ]


def _atom(request: Request, title: str, entries: list[dict]) -> Response:
    """An Atom document: the feed's id is its URL; entries are the papers' arXiv pages."""
    feed = etree.Element(f"{{{ATOM}}}feed", nsmap={None: ATOM})

    def add(parent: etree._Element, name: str, text: str | None = None, **attrs: str) -> Any:
        element = etree.SubElement(parent, f"{{{ATOM}}}{name}", attrs)
        element.text = None if text is None else NOT_XML.sub("\ufffd", text)
        return element

    url = str(request.url)
    add(feed, "id", url)
    add(feed, "title", title)
    newest = max((e["updated"] for e in entries), default=None)
    add(feed, "updated", newest or datetime.now(UTC).isoformat(timespec="seconds"))
    add(feed, "link", href=url, rel="self", type=ATOM_TYPE)
    add(add(feed, "author"), "name", "arxiv-kedro")  # for entries whose source names nobody
    add(feed, "generator", "arxiv-kedro", version=__version__)
    for paper in entries:
        entry = add(feed, "entry")
        add(entry, "id", paper["abs_url"])
        add(entry, "title", " ".join(paper["title"].split()))
        add(entry, "published", paper["published"])
        add(entry, "updated", paper["updated"])
        for name in paper["authors"]:
            add(add(entry, "author"), "name", name)
        add(entry, "summary", " ".join(paper["abstract"].split()), type="text")
        add(entry, "link", href=paper["abs_url"], rel="alternate", type="text/html")
        add(entry, "link", href=paper["pdf_url"], rel="related", type="application/pdf")
        for term in paper["categories"]:
            add(entry, "category", term=term, scheme=ARXIV_SCHEME)
    body = etree.tostring(feed, xml_declaration=True, encoding="utf-8")
    return Response(body, media_type=ATOM_TYPE)
