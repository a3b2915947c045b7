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
    cross_list: bool | None = Field(
        None, description="listed with a category filter: true when its primary is another"
    )


class ScoredPaper(Paper):
    score: float


class SearchHit(ScoredPaper):
    snippet: str | None = Field(
        description="HTML: the abstract's best part, escaped, matched words in <mark>"
    )


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


class Version(BaseModel):
    version: int
    date: datetime | None


class PaperDetail(Paper):
    abstract: str
    doi: str | None
    journal_ref: str | None
    comments: str | None
    arxiv_categories: list[ArxivCategory]
    prediction: Prediction | None
    summary: Summary | None
    versions: list[Version] = Field(description="v1 to the latest; dates of the others unknown")
    bibtex: str


class PaperPage(BaseModel):
    items: list[Paper]
    next_cursor: str | None


class SearchPage(BaseModel):
    items: list[SearchHit]
    next_cursor: str | None
    total: int = Field(description="matches (before has_summary), counted up to 2,000")
    total_capped: bool = Field(description="true: at least `total` papers match")
    hint: str | None = Field(description="why the text held nothing to look for; what to type")


class SimilarPage(BaseModel):
    arxiv_id: str
    items: list[ScoredPaper] = Field(description="most similar first; score: cosine, 0–1")


class Digest(BaseModel):
    category: str
    day: str = Field(description="the last day papers of the category appeared, UTC")
    new: list[Paper] = Field(description="first versions with the category as primary")
    cross_lists: list[Paper] = Field(description="first versions cross-listed in the category")
    replacements: list[Paper] = Field(description="papers whose new version appeared that day")


class Tagged(BaseModel):
    tag: str
    arxiv_id: str


class TagPapers(BaseModel):
    tag: str
    papers: list[Paper] = Field(description="the latest tagged first")


class Tags(BaseModel):
    items: list[TagPapers] = Field(description="alphabetically")


class Recommendations(BaseModel):
    tag: str | None
    tagged: int = Field(description="papers the model learned from")
    items: list[ScoredPaper] = Field(description="best first; score: the model's decision value")
    hint: str | None


class AuthorPage(BaseModel):
    author: str
    total: int
    items: list[Paper]
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
