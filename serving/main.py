"""The FastAPI application: `uvicorn serving.main:app` (`make serve`, port 8500)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import OperationalError
from swagger_ui_bundle import swagger_ui_path

from arxiv_kedro import __version__
from arxiv_kedro.stores import StoreError
from serving.routes import classify, feeds, health, library, meta, monitoring, papers
from serving.security import ClientLimiter, Guard
from serving.services import Services, Unavailable
from serving.settings import Settings

logger = logging.getLogger(__name__)
WORKER_THREADS = 8


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    svc = Services.start(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.keys:
            logger.warning("API_KEYS is not set: every endpoint is open (fine on localhost only)")
        # Store reads and classification run in worker threads: a few, not fighting over the GIL.
        anyio.to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS
        svc.model.warm_up()
        yield
        svc.close()

    app = FastAPI(
        title="arxiv-kedro",
        version=__version__,
        description="New arXiv papers: browse, search, summaries and translations, categories.",
        lifespan=lifespan,
        docs_url=None,  # served below from local files: the default loads Swagger UI from a CDN
    )
    app.state.services = svc
    app.mount("/docs/assets", StaticFiles(directory=swagger_ui_path), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon-32x32.png",
        )

    routers = (health, papers, feeds, library, classify, meta, monitoring)
    for router in (module.router for module in routers):
        app.include_router(router)

    @app.exception_handler(Unavailable)
    @app.exception_handler(StoreError)
    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(OperationalError)  # the database went away after the store opened
    async def database_lost(request: Request, exc: OperationalError) -> JSONResponse:
        detail = f"the relational store is not available: {exc.orig or exc}"
        return JSONResponse({"detail": detail}, status_code=503)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        return JSONResponse({"detail": problems or "invalid request"}, status_code=422)

    limiter = None
    if settings.rate_limit_per_minute > 0:
        redis = svc.redis.store if svc.redis is not None else None
        limiter = ClientLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst, redis)
    app.add_middleware(Guard, settings=settings, limiter=limiter)
    if settings.cors_origins:  # outermost: 413 and 429 answers carry CORS headers too
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "X-API-Key"],
        )
    return app


app = create_app()
