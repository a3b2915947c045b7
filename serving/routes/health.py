"""Liveness and readiness."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from arxiv_kedro import __version__
from arxiv_kedro.stores import StoreError
from serving.models import Health, Readiness
from serving.services import Svc, Unavailable

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
def health() -> Health:
    """The process answers (liveness)."""
    return Health(version=__version__)


@router.get("/health/ready", response_model=Readiness, responses={503: {"model": Readiness}})
def ready(svc: Svc) -> JSONResponse:
    """Each store, the cache and the model checked; 503 when one of them fails."""

    def papers() -> str:
        return f"{svc.papers.db.count():,} papers"

    def documents() -> str:
        svc.documents.ping()
        return "reachable"

    def cache() -> str:
        if svc.redis is None:
            return "in-process"
        svc.redis.store.ping()
        return "Redis reachable"

    def model() -> str:
        classifier = svc.model.get()
        return f"{classifier.name} version {classifier.version}"

    checks = {name: _check(probe) for name, probe in (
        ("papers", papers), ("documents", documents), ("cache", cache), ("model", model)
    )}  # fmt: skip
    ok = all(c["ok"] for c in checks.values())
    body = {"status": "ready" if ok else "not ready", "checks": checks}
    return JSONResponse(body, status_code=200 if ok else 503)


def _check(probe: Callable[[], str]) -> dict:
    try:
        return {"ok": True, "detail": probe()}
    except (Unavailable, StoreError, OperationalError) as exc:
        return {"ok": False, "detail": str(exc)}
