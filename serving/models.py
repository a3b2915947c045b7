"""Request and response models: the API's contract (docs/api.md), as pydantic models."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Generous bounds on what people paste; arXiv caps abstracts at 1,920 characters.
MAX_TITLE, MAX_ABSTRACT, MAX_BATCH = 1_000, 20_000, 256


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str


class Check(BaseModel):
    ok: bool
    detail: str


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    checks: dict[str, Check]


class ScoredCategory(BaseModel):
    category: str
    name: str
    probability: float


class ArxivCategory(BaseModel):
    category: str
    name: str
    primary: bool


class Paper(BaseModel):
    arxiv_id: str
    version: int
    title: str
    authors: list[str]
    primary_category: str
    categories: list[str]
    published: datetime
    updated: datetime
    abs_url: str
    pdf_url: str
    predicted_category: ScoredCategory | None
    summary_languages: list[str]


class SearchHit(Paper):
    score: float


class Prediction(BaseModel):
    model_name: str
    model_version: str
    predicted_at: datetime
    categories: list[ScoredCategory]


class SummaryText(BaseModel):
    language: str
    text: str | None
    status: str
    method: str | None = None
    model: str | None = None


class Summary(BaseModel):
    version: int
    status: str
    texts: dict[str, SummaryText]


class PaperDetail(Paper):
    abstract: str
    doi: str | None
    journal_ref: str | None
    comments: str | None
    arxiv_categories: list[ArxivCategory]
    prediction: Prediction | None
    summary: Summary | None


class PaperPage(BaseModel):
    items: list[Paper]
    next_cursor: str | None


class SearchPage(BaseModel):
    items: list[SearchHit]
    next_cursor: str | None


class ClassifyRequest(Strict):
    title: str = Field(min_length=1, max_length=MAX_TITLE)
    abstract: str = Field(min_length=1, max_length=MAX_ABSTRACT)


class BatchRequest(Strict):
    items: list[ClassifyRequest] = Field(min_length=1, max_length=MAX_BATCH)


class ModelRef(BaseModel):
    name: str
    version: str


class Classification(BaseModel):
    categories: list[ScoredCategory]


class ClassifyResponse(Classification):
    model: ModelRef


class BatchResponse(BaseModel):
    results: list[Classification]
    model: ModelRef


class CategoryCount(BaseModel):
    category: str
    name: str
    group: str
    papers: int
    cross_listed: int


class Categories(BaseModel):
    items: list[CategoryCount]


class IngestionRun(BaseModel):
    status: str
    source: str
    started_at: datetime
    finished_at: datetime | None
    new: int
    updated: int
    quarantined: int


class DayCount(BaseModel):
    day: str
    category: str
    papers: int


class ClassScore(BaseModel):
    category: str
    name: str
    precision: float
    recall: float
    f1: float
    support: int


class ModelInfo(BaseModel):
    name: str
    version: str
    trained_through: str | None
    metrics: dict[str, float]
    per_class: list[ClassScore]


class Stats(BaseModel):
    papers: int
    summaries: int
    predictions: int
    quarantined: int
    latest_published: datetime | None
    last_ingestion: IngestionRun | None
    papers_per_day: list[DayCount]
    model: ModelInfo | None


class Problem(BaseModel):
    detail: str


class MonitoringWindow(BaseModel):
    from_: datetime | None = Field(alias="from")
    to: datetime | None
    papers: int


class LiveQuality(BaseModel):
    papers: int
    accuracy: float | None
    macro_f1: float | None
    top3: float | None
    ece: float | None
    per_class: dict[str, dict[str, float]]
    champion_macro_f1: float | None
    macro_f1_change: float | None


class Drift(BaseModel):
    detected: bool
    share: float
    columns: dict[str, dict[str, Any]]


class FeedHealth(BaseModel):
    alarms: list[dict[str, Any]]
    days: dict[str, int]  # papers per announcement day of the window


class MonitoringCheck(BaseModel):
    name: str
    passed: bool
    value: float | None
    threshold: float


class MonitoringReport(BaseModel):
    run_id: str
    run_at: datetime
    status: str  # "ok", or why nothing could be compared
    model: dict[str, Any] | None
    window: MonitoringWindow
    reference: dict[str, Any] | None
    live_quality: LiveQuality
    drift: Drift
    data_quality: dict[str, float]
    feed: FeedHealth
    checks: list[MonitoringCheck]
    retrain_recommended: bool
    reason: str


class MonitoringRun(BaseModel):
    run_id: str
    run_at: datetime
    model_version: str | None
    current_from: datetime
    current_to: datetime
    current_papers: int
    accuracy: float | None
    macro_f1: float | None
    champion_macro_f1: float | None
    drift_detected: bool
    drift_share: float
    text_drift: bool
    feed_alarms: int
    checks_failed: int
    retrain_recommended: bool
    reason: str


class MonitoringRuns(BaseModel):
    items: list[MonitoringRun]
