"""Papers: the newest first with filters, one paper in full, and full-text search."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from arxiv_kedro.classification.registry import MODEL_NAME
from arxiv_kedro.papers import CATEGORY_PATTERN, InvalidRecord, parse_arxiv_id
from serving import views
from serving.models import PaperDetail, PaperPage, Problem, SearchPage
from serving.security import read_key
from serving.services import Services, Svc, json_response

router = APIRouter(prefix="/v1", tags=["papers"], dependencies=[Depends(read_key)])
MAX_SCAN = 5_000  # rows read per request looking for papers with a summary
MAX_SEARCH_RESULTS = 1_000  # how deep search results can be paged
CATEGORY = f"^{CATEGORY_PATTERN}$"
Limit = Annotated[int, Query(ge=1, le=100, description="items per page")]
Cursor = Annotated[str | None, Query(max_length=200, description="next_cursor of the last page")]
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem},
    401: {"model": Problem},
    403: {"model": Problem},
    503: {"model": Problem},
}


@router.get("/papers", response_model=PaperPage, responses={**ERRORS, 422: {"model": Problem}})
async def list_papers(
    svc: Svc,
    category: Annotated[
        str | None, Query(max_length=32, pattern=CATEGORY, description="e.g. cs.CL or hep-th")
    ] = None,
    published_from: Annotated[date | None, Query(description="first day, inclusive")] = None,
    published_to: Annotated[date | None, Query(description="last day, inclusive")] = None,
    has_summary: Annotated[
        bool | None, Query(description="only papers with(out) a summary")
    ] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Any:
    """Papers newest first (publication date), filtered, one page at a time."""
    if published_from and published_to and published_from > published_to:
        raise HTTPException(400, "published_from is after published_to")
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
            lambda: _page(svc, category, published_from, published_to, has_summary, limit, after),
        )
    )


def _page(
    svc: Services,
    category: str | None,
    published_from: date | None,
    published_to: date | None,
    has_summary: bool | None,
    limit: int,
    after: tuple[datetime, int] | None,
) -> dict:
    # Summaries live in the document store: with `has_summary`, rows are read in batches and
    # kept or dropped until the page is full or MAX_SCAN rows were read (the cursor goes on).
    bounds = {
        "category": category,
        "published_from": _start(published_from),
        # 9999-12-31 has no next day: it bounds nothing
        "published_before": _start(published_to + timedelta(days=1))
        if published_to and published_to < date.max
        else None,
    }
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
                items.append(views.paper(row, summary, svc.taxonomy))
        more = consumed < len(rows) or len(rows) == batch
        if not more or len(items) == limit or scanned >= MAX_SCAN:
            break
    next_cursor = None
    if more and last is not None:
        next_cursor = views.encode_cursor({"published": last[0].isoformat(), "id": last[1]})
    return {"items": items, "next_cursor": next_cursor}


def _start(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time(), tzinfo=UTC)


@router.get(
    "/papers/{arxiv_id:path}",
    response_model=PaperDetail,
    responses={**ERRORS, 404: {"model": Problem}, 422: {"model": Problem}},
)
async def get_paper(
    svc: Svc,
    arxiv_id: Annotated[
        str, Path(max_length=64, description="2501.01234, hep-th/9901001 (a vN suffix is ignored)")
    ],
) -> Any:
    """One paper: abstract, summary and translations, arXiv's categories and predicted ones."""
    try:
        versionless, _ = parse_arxiv_id(arxiv_id)
    except InvalidRecord as exc:
        raise HTTPException(422, f"{arxiv_id!r} is not an arXiv identifier: {exc}") from exc

    def compute() -> dict | None:
        row = svc.papers.get_paper(versionless, model_name=MODEL_NAME)
        if row is None:
            return None
        summary = views.summaries_of(svc.documents, [row]).get(row["arxiv_id"])
        return views.detail(row, summary, svc.taxonomy)

    body = await svc.cached(f"paper:{versionless}", compute)
    if body == "null":  # absent papers are cached too, until the next write
        raise HTTPException(404, f"no paper {versionless} in the store")
    return json_response(body)


@router.get("/search", response_model=SearchPage, responses={**ERRORS, 422: {"model": Problem}})
async def search(
    svc: Svc,
    q: Annotated[str, Query(min_length=1, max_length=300, description='words, "phrases"')],
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Any:
    """Full-text search over titles and abstracts, most relevant first."""
    offset = 0 if cursor is None else views.decode_cursor(cursor, {"offset": int})["offset"]
    if not 0 <= offset <= MAX_SEARCH_RESULTS:
        raise HTTPException(400, f"search results can be paged up to {MAX_SEARCH_RESULTS}")

    def compute() -> dict:
        try:
            rows = svc.papers.search(q, model_name=MODEL_NAME, limit=limit + 1, offset=offset)
        except ValueError as exc:
            raise HTTPException(422, f"nothing to search for in q: {exc}") from exc
        more = len(rows) > limit
        rows = rows[:limit]
        summaries = views.summaries_of(svc.documents, rows)
        items = [
            {**views.paper(r, summaries.get(r["arxiv_id"]), svc.taxonomy), "score": r["score"]}
            for r in rows
        ]
        next_offset = offset + limit
        more = more and next_offset <= MAX_SEARCH_RESULTS
        return {
            "items": items,
            "next_cursor": views.encode_cursor({"offset": next_offset}) if more else None,
        }

    return json_response(await svc.cached(f"search:{limit}:{offset}:{q}", compute))
