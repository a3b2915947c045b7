"""The monitoring pipeline's runs: the latest report, the history, the Evidently pages."""

from __future__ import annotations

import re
from typing import Any

import anyio
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import HTMLResponse

from serving.models import MonitoringReport, MonitoringRuns, Problem
from serving.security import read_key
from serving.services import Svc, json_response

router = APIRouter(prefix="/v1/monitoring", tags=["monitoring"], dependencies=[Depends(read_key)])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (401, 403, 404, 422, 503)
}
RUN_ID = re.compile(r"\d{8}T\d{6}Z")  # the pipeline's run ids: the run's UTC time


@router.get("/latest", response_model=MonitoringReport, responses=ERRORS)
async def latest(svc: Svc) -> Any:
    """The newest monitoring run: its window, live quality against arXiv's categories, drift,
    feed alarms, every check with its threshold, and whether to retrain."""

    def compute() -> dict | None:
        runs = svc.monitoring.recent(1)
        if not runs:
            return None
        report = svc.documents.get("reports", report_id=f"monitoring-{runs[0]['run_id']}")
        return None if report is None else _public(report)

    body = await svc.cached("monitoring:latest", compute)
    if body == "null":
        raise HTTPException(404, "no monitoring run yet: `kedro run --pipeline monitoring`")
    return json_response(body)


@router.get("/runs", response_model=MonitoringRuns, responses=ERRORS)
async def runs(svc: Svc, limit: int = Query(30, ge=1, le=365)) -> Any:
    """The newest `limit` monitoring runs, newest first: the time series of live quality,
    drift and alarms."""

    def compute() -> dict:
        found = svc.monitoring.recent(limit)
        return MonitoringRuns.model_validate({"items": found}).model_dump(mode="json")

    return json_response(await svc.cached(f"monitoring:runs:{limit}", compute))


@router.get(
    "/{run}/report.html",
    response_class=HTMLResponse,
    responses={**ERRORS, 200: {"content": {"text/html": {}}}},
)
async def report_html(run: str, svc: Svc) -> HTMLResponse:
    """The run's Evidently report, a standalone page."""
    if not RUN_ID.fullmatch(run):
        raise HTTPException(404, f"no monitoring run {run!r}: run ids look like 20260430T203000Z")
    pages = await anyio.to_thread.run_sync(svc.catalog["monitoring_report_html"].load)
    if run not in pages:
        raise HTTPException(404, f"no report of monitoring run {run}")
    return HTMLResponse(await anyio.to_thread.run_sync(pages[run]))


def _public(report: dict[str, Any]) -> dict[str, Any]:
    """The stored summary as the API's contract (the store's bookkeeping left out)."""
    return MonitoringReport.model_validate(report).model_dump(mode="json", by_alias=True)
