"""Each API key's library: tags on papers, and recommendations learned from them."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response

from arxiv_kedro.classification.registry import MODEL_NAME
from arxiv_kedro.stores.relational.library import Library
from serving import views
from serving.models import Problem, Recommendations, Tagged, Tags
from serving.routes.papers import ERRORS, ArxivId, scored_papers, versionless_id
from serving.security import ApiKey, check_key
from serving.services import Services, Svc

router = APIRouter(prefix="/v1/me", tags=["library"])
LOCAL_USER = "local"  # without API_KEYS, everyone shares one library
Tag = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        pattern=r"^[\w][\w .+-]*$",
        description="letters, digits, spaces, . + - _ (e.g. to-read)",
    ),
]
RESPONSES: dict[int | str, dict[str, Any]] = {**ERRORS, 422: {"model": Problem}}


async def user(svc: Svc, key: ApiKey = None) -> str:
    """The user is the API key (a hash of it is stored, never the key); every request to a
    library needs a valid key whenever API_KEYS is set."""
    check_key(svc.settings, key)
    if not svc.settings.keys:
        return LOCAL_USER
    assert key is not None
    return hashlib.sha256(key.encode()).hexdigest()[:32]


User = Annotated[str, Depends(user)]


def _library(svc: Services) -> Library:
    return Library(svc.papers.db)


@router.put(
    "/tags/{tag}/{arxiv_id:path}",
    response_model=Tagged,
    responses={**RESPONSES, 404: {"model": Problem}},
)
async def tag_paper(svc: Svc, me: User, tag: Tag, arxiv_id: ArxivId) -> Any:
    """Tag a paper (tagging it again changes nothing)."""
    versionless, _ = versionless_id(arxiv_id)
    if not await anyio.to_thread.run_sync(_library(svc).tag, me, tag, versionless):
        raise HTTPException(404, f"no paper {versionless} in the store")
    return {"tag": tag, "arxiv_id": versionless}


@router.delete(
    "/tags/{tag}/{arxiv_id:path}",
    status_code=204,
    response_class=Response,
    responses={**RESPONSES, 404: {"model": Problem}},
)
async def untag_paper(svc: Svc, me: User, tag: Tag, arxiv_id: ArxivId) -> Response:
    """Remove a tag from a paper."""
    versionless, _ = versionless_id(arxiv_id)
    if not await anyio.to_thread.run_sync(_library(svc).untag, me, tag, versionless):
        raise HTTPException(404, f"{versionless} is not tagged {tag!r}")
    return Response(status_code=204)


@router.get("/tags", response_model=Tags, responses=RESPONSES)
async def list_tags(svc: Svc, me: User) -> Any:
    """Every tag with its papers, the latest tagged first."""

    def compute() -> dict:
        tags = _library(svc).tags(me)
        ids = sorted({i for tagged in tags.values() for i in tagged})
        rows = svc.papers.papers(ids, model_name=MODEL_NAME)
        summaries = views.summaries_of(svc.documents, rows)
        listed = {r["id"]: views.paper(r, summaries.get(r["arxiv_id"]), svc.taxonomy) for r in rows}
        return {
            "items": [
                {"tag": tag, "papers": [listed[i] for i in tagged if i in listed]}
                for tag, tagged in tags.items()
            ]
        }

    return await anyio.to_thread.run_sync(compute)


@router.get("/recommendations", response_model=Recommendations, responses=RESPONSES)
async def recommendations(
    svc: Svc,
    me: User,
    tag: Annotated[
        str | None, Query(max_length=64, description="learn from this tag only (default: all)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Any:
    """The newest papers ranked by a linear model (an SVM over the words of titles and
    abstracts) that tells your tagged papers from the others; tagged papers are left out."""

    def compute() -> dict:
        tags = _library(svc).tags(me)
        tagged = sorted({i for t, ids in tags.items() if tag in (None, t) for i in ids})
        if not tagged:
            hint = f"no paper is tagged {tag!r}" if tag else "no paper is tagged yet"
            return {"tag": tag, "tagged": 0, "items": [], "hint": f"{hint}: tag papers you like"}
        seed = int.from_bytes(hashlib.sha256(f"{me}:{tag}".encode()).digest()[:8])
        vectors = svc.similarity.vectors(svc.papers)
        ranked = vectors.recommend(tagged, limit, seed=seed)
        items = scored_papers(svc, ranked)
        return {"tag": tag, "tagged": len(tagged), "items": items, "hint": None}

    return await anyio.to_thread.run_sync(compute)
