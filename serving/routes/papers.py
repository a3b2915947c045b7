"""Papers: the newest first with filters, one paper in full, full-text search, an author's."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from arxiv_kedro.classification.registry import MODEL_NAME
from arxiv_kedro.papers import CATEGORY_PATTERN, InvalidRecord, parse_arxiv_id
from arxiv_kedro.stores.relational.read_model import (
    SEARCH_CANDIDATES,
    QuerySyntaxError,
    parse_query,
)
from serving import views
from serving.models import (
    AuthorPage,
    PaperDetail,
    PaperPage,
    Problem,
    SearchPage,
    SimilarPage,
)
from serving.security import read_key
from serving.services import Services, Svc, json_response

router = APIRouter(prefix="/v1", tags=["papers"], dependencies=[Depends(read_key)])
MAX_SCAN = 5_000  # rows read per request looking for papers with a summary
MAX_SEARCH_RESULTS = 1_000  # how deep search results can be paged
CATEGORY = f"^{CATEGORY_PATTERN}$"
Limit = Annotated[int, Query(ge=1, le=100, description="items per page")]
Cursor = Annotated[str | None, Query(max_length=200, description="next_cursor of the last page")]
Category = Annotated[
    str | None,
    Query(max_length=32, pattern=CATEGORY, description="e.g. cs.CL or hep-th (or cross-listed)"),
]
PublishedFrom = Annotated[date | None, Query(description="first day, inclusive")]
PublishedTo = Annotated[date | None, Query(description="last day, inclusive")]
HasSummary = Annotated[bool | None, Query(description="only papers with(out) a summary")]
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem},
    401: {"model": Problem},
    403: {"model": Problem},
    503: {"model": Problem},
}


@router.get("/papers", response_model=PaperPage, responses={**ERRORS, 422: {"model": Problem}})
async def list_papers(
    svc: Svc,
    category: Category = None,
    published_from: PublishedFrom = None,
    published_to: PublishedTo = None,
    has_summary: HasSummary = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Any:
    """Papers newest first (publication date), filtered, one page at a time."""
    bounds = _bounds(category, published_from, published_to)
    after = None
    if cursor is not None:
        position = views.decode_cursor(cursor, {"published": str, "id": int})
        try:
            after = (datetime.fromisoformat(position["published"]), position["id"])
        except ValueError as exc:
            raise HTTPException(400, "invalid cursor") from exc
        if not 0 < position["id"] < 2**63:  # paper ids are BIGINTs: others fail in the driver
            raise HTTPException(400, "invalid cursor: pass the next_cursor of a previous page")
    key = f"papers:{category}:{published_from}:{published_to}:{has_summary}:{limit}:{cursor}"
    return json_response(
        await svc.cached(
            key,
            lambda: _page(svc, bounds, has_summary, limit, after),
        )
    )


def _bounds(
    category: str | None, published_from: date | None, published_to: date | None
) -> dict[str, Any]:
    """The filters as the read model takes them."""
    if published_from and published_to and published_from > published_to:
        raise HTTPException(400, "published_from is after published_to")
    return {
        "category": category,
        "published_from": _start(published_from),
        # 9999-12-31 has no next day: it bounds nothing
        "published_before": _start(published_to + timedelta(days=1))
        if published_to and published_to < date.max
        else None,
    }


def _page(
    svc: Services,
    bounds: dict[str, Any],
    has_summary: bool | None,
    limit: int,
    after: tuple[datetime, int] | None,
) -> dict:
    # Summaries live in the document store: with `has_summary`, rows are read in batches and
    # kept or dropped until the page is full or MAX_SCAN rows were read (the cursor goes on).
    batch = limit + 1 if has_summary is None else max(4 * limit, 200)
    items: list[dict] = []
    scanned, last = 0, after
    while True:
        rows = svc.papers.list_papers(model_name=MODEL_NAME, after=last, limit=batch, **bounds)
        scanned += len(rows)
        summaries = views.summaries_of(svc.documents, rows)
        consumed = 0
        for row in rows:
            if len(items) == limit:
                break
            consumed += 1
            last = (row["published"], row["id"])
            summary = summaries.get(row["arxiv_id"])
            if has_summary is None or (summary is not None) == has_summary:
                items.append(views.paper(row, summary, svc.taxonomy, bounds["category"]))
        more = consumed < len(rows) or len(rows) == batch
        if not more or len(items) == limit or scanned >= MAX_SCAN:
            break
    next_cursor = None
    if more and last is not None:
        next_cursor = views.encode_cursor({"published": last[0].isoformat(), "id": last[1]})
    return {"items": items, "next_cursor": next_cursor}


def _start(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time(), tzinfo=UTC)


def scored_papers(svc: Services, scored: list[tuple[int, float]]) -> list[dict]:
    """List items of (paper id, score) pairs, in their order, each with its score."""
    scores = dict(scored)
    rows = svc.papers.papers(list(scores), model_name=MODEL_NAME)
    summaries = views.summaries_of(svc.documents, rows)
    return [
        {**views.paper(r, summaries.get(r["arxiv_id"]), svc.taxonomy), "score": scores[r["id"]]}
        for r in rows
    ]


ArxivId = Annotated[
    str,
    Path(
        max_length=64,
        description="2501.01234, hep-th/9901001; a vN suffix up to the latest serves it",
    ),
]


def versionless_id(arxiv_id: str) -> tuple[str, int | None]:
    try:
        return parse_arxiv_id(arxiv_id)
    except InvalidRecord as exc:
        raise HTTPException(422, f"{arxiv_id!r} is not an arXiv identifier: {exc}") from exc


# Before /papers/{arxiv_id:path}, which would take ".../similar" for an id.
@router.get(
    "/papers/{arxiv_id:path}/similar",
    response_model=SimilarPage,
    responses={**ERRORS, 404: {"model": Problem}, 422: {"model": Problem}},
)
async def similar_papers(
    svc: Svc,
    arxiv_id: ArxivId,
    limit: Annotated[int, Query(ge=1, le=50, description="how many")] = 10,
) -> Any:
    """The papers nearest to this one by their words (cosine of TF-IDF vectors of titles and
    abstracts; in a store of millions, among the candidates of an approximate index), most similar
    first."""
    versionless, _ = versionless_id(arxiv_id)

    def compute() -> dict | None:
        nearest = svc.similarity.vectors(svc.papers).nearest(versionless, limit)
        if nearest is None:
            return None
        return {"arxiv_id": versionless, "items": scored_papers(svc, nearest)}

    body = await svc.cached(f"similar:{limit}:{versionless}", compute)
    if body == "null":
        raise HTTPException(404, f"no paper {versionless} in the store (or not indexed yet)")
    return json_response(body)


@router.get(
    "/papers/{arxiv_id:path}",
    response_model=PaperDetail,
    responses={**ERRORS, 404: {"model": Problem}, 422: {"model": Problem}},
)
async def get_paper(svc: Svc, arxiv_id: ArxivId) -> Any:
    """One paper: abstract, summary and translations, arXiv's categories and predicted ones,
    its versions and a BibTeX entry."""
    versionless, version = versionless_id(arxiv_id)

    def compute() -> dict | None:
        row = svc.papers.get_paper(versionless, model_name=MODEL_NAME)
        if row is None:
            return None
        summary = views.summaries_of(svc.documents, [row]).get(row["arxiv_id"])
        return views.detail(row, summary, svc.taxonomy)

    body = await svc.cached(f"paper:{versionless}", compute)
    if body == "null":  # absent papers are cached too, until the next write
        raise HTTPException(404, f"no paper {versionless} in the store")
    if version is not None:  # an older version is served as the latest (its text is not kept)
        latest = json.loads(body)["version"]
        if version > latest:
            raise HTTPException(
                404, f"{versionless} has no version {version}: the latest is v{latest}"
            )
    return json_response(body)


@router.get("/search", response_model=SearchPage, responses={**ERRORS, 422: {"model": Problem}})
async def search(
    svc: Svc,
    q: Annotated[
        str,
        Query(
            max_length=300,
            description='words, "phrases", fields ti: abs: au: cat: (e.g. au:Hinton ti:"neural")',
        ),
    ] = "",
    category: Category = None,
    published_from: PublishedFrom = None,
    published_to: PublishedTo = None,
    has_summary: HasSummary = None,
    sort: Annotated[
        Literal["relevance", "newest"], Query(description="most relevant or newest first")
    ] = "relevance",
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Any:
    """Full-text search over titles, abstracts and author names, with the filters of the list:
    most relevant (or newest) first, with snippets and the number of matches. A text with
    nothing to search for answers no items and a `hint`."""
    bounds = _bounds(category, published_from, published_to)
    offset = 0 if cursor is None else views.decode_cursor(cursor, {"offset": int})["offset"]
    if not 0 <= offset <= MAX_SEARCH_RESULTS:
        raise HTTPException(400, f"search results can be paged up to {MAX_SEARCH_RESULTS}")
    try:
        query, hint = parse_query(q), None
    except QuerySyntaxError as exc:
        query, hint = None, str(exc)
    if query is not None and not query:
        hint = NO_WORDS if not query.categories else NO_WORDS_IN_CATEGORY
    if hint is not None:
        return {"items": [], "next_cursor": None, "total": 0, "total_capped": False, "hint": hint}

    def compute() -> dict:
        # As in the list, `has_summary` keeps or drops ranked rows read in batches.
        batch = limit + 1 if has_summary is None else max(4 * limit, 200)
        items: list[dict] = []
        position = offset
        while True:
            rows, total = svc.papers.search(
                query,
                model_name=MODEL_NAME,
                newest=sort == "newest",
                limit=batch,
                offset=position,
                **bounds,
            )
            summaries = views.summaries_of(svc.documents, rows)
            consumed = 0
            for row in rows:
                if len(items) == limit:
                    break
                consumed += 1
                summary = summaries.get(row["arxiv_id"])
                if has_summary is None or (summary is not None) == has_summary:
                    items.append(views.hit(row, summary, svc.taxonomy, bounds["category"]))
            position += consumed
            more = consumed < len(rows) or len(rows) == batch
            if not more or len(items) == limit or position - offset >= MAX_SCAN:
                break
        more = more and position <= MAX_SEARCH_RESULTS
        return {
            "items": items,
            "next_cursor": views.encode_cursor({"offset": position}) if more else None,
            "total": total,
            "total_capped": total >= SEARCH_CANDIDATES,
            "hint": None,
        }

    key = f"search:{bounds}:{has_summary}:{sort}:{limit}:{offset}:{q}"
    return json_response(await svc.cached(key, compute))


NO_WORDS = (
    'Type words to look for: every word and "quoted phrase" must appear in the title or '
    "abstract. Fields as on arXiv narrow it: ti:transformer (title), abs:, au:Hinton (author), "
    "cat:cs.CL (category). To browse without words, list the papers (/v1/papers)."
)
NO_WORDS_IN_CATEGORY = (
    "cat: narrows a search: add words to look for, or browse the category's newest papers "
    "(/v1/papers?category=…)."
)


@router.get(
    "/authors/{name}/papers",
    response_model=AuthorPage,
    responses={**ERRORS, 404: {"model": Problem}, 422: {"model": Problem}},
)
async def author_papers(
    svc: Svc,
    name: Annotated[str, Path(min_length=1, max_length=300, description="as in `authors`")],
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Any:
    """The papers of one author (the exact name, any case), newest first."""
    offset = 0 if cursor is None else views.decode_cursor(cursor, {"offset": int})["offset"]
    if not 0 <= offset < 2**31:
        raise HTTPException(400, "invalid cursor: pass the next_cursor of a previous page")

    def compute() -> dict | None:
        rows, total = svc.papers.author_papers(
            name, model_name=MODEL_NAME, limit=limit, offset=offset
        )
        if total == 0:
            return None
        summaries = views.summaries_of(svc.documents, rows)
        more = offset + len(rows) < total
        return {
            "author": name,
            "total": total,
            "items": [views.paper(r, summaries.get(r["arxiv_id"]), svc.taxonomy) for r in rows],
            "next_cursor": views.encode_cursor({"offset": offset + limit}) if more else None,
        }

    body = await svc.cached(f"author:{limit}:{offset}:{name}", compute)
    if body == "null":
        raise HTTPException(404, f"no author named {name!r} in the store (search with au:)")
    return json_response(body)
