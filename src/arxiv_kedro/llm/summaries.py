"""Summaries and translations of one paper version: what is missing, how to get it, the document.

A `summaries` document per (arxiv_id, version):

    {"arxiv_id", "version", "status": "complete" | "partial" | "failed",
     "summary": Entry, "translations": {"fr": Entry, ...},
     "usage": {"prompt_tokens", "completion_tokens", "cost"}}   # every paid call, summed

    Entry = {"text", "status": "done" | "pending" | "failed", "method": "llm" | "extractive",
             "model", "prompt_version", "usage", "error", "at"}

An entry is current when it is done by the configured model with the configured prompt version
(or, offline, when it exists at all): only entries that are not current are worked on, and a
failure recorded for the current model and prompt is not retried (that would pay again).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from arxiv_kedro.llm.client import Usage

SOURCE_LANGUAGE = "en"


class SummaryAnswer(BaseModel):
    summary: str = Field(min_length=1)
    translations: dict[str, str] = Field(default_factory=dict)


class TranslationAnswer(BaseModel):
    translations: dict[str, str]


@dataclass(frozen=True)
class Settings:
    languages: tuple[str, ...]
    prompt_version: str
    model: str | None  # None: offline (no API key)
    min_chars: int = 80
    max_chars: int = 600

    @property
    def online(self) -> bool:
        return self.model is not None


@dataclass
class Work:
    """What one paper version still needs."""

    paper: dict[str, Any]  # arxiv_id, version, title, abstract
    document: dict[str, Any] | None
    summary: bool  # a (new or upgraded) summary
    languages: list[str] = field(default_factory=list)  # translations to produce


def _current(entry: dict[str, Any] | None, settings: Settings) -> bool:
    """Done by (or, for a failure, already tried with) the configured model and prompt."""
    if entry is None:
        return False
    if not settings.online:
        return entry.get("status") in ("done", "pending", "failed")
    if entry.get("method") == "extractive":
        entry = entry.get("upgrade")  # a failed attempt to replace it by an LLM summary
        if entry is None:
            return False
    return (
        entry.get("status") in ("done", "failed")
        and entry.get("method") == "llm"
        and entry.get("model") == settings.model
        and entry.get("prompt_version") == settings.prompt_version
    )


def plan(paper: dict[str, Any], document: dict[str, Any] | None, settings: Settings) -> Work | None:
    """The work a paper version needs, or None when its document is current."""
    document = document or {}
    summary = document.get("summary")
    needs_summary = not _current(summary, settings)
    translations = document.get("translations", {})
    if settings.online:
        languages = [
            lang for lang in settings.languages if not _current(translations.get(lang), settings)
        ]
    else:
        languages = [lang for lang in settings.languages if lang not in translations]
    if not needs_summary and not languages:
        return None
    return Work(paper, document or None, needs_summary, languages)


def cache_key(paper: dict[str, Any], settings: Settings, language: str) -> str:
    return (
        f"{paper['arxiv_id']}|v{paper['version']}|{settings.prompt_version}|"
        f"{settings.model}|{language}"
    )


def entry(
    text: str | None,
    *,
    status: str,
    method: str,
    settings: Settings,
    usage: Usage | None = None,
    prices: dict[str, float] | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    return {
        "text": text,
        "status": status,
        "method": method,
        "model": settings.model if method == "llm" and status != "pending" else None,
        "prompt_version": (
            settings.prompt_version if method == "llm" and status != "pending" else None
        ),
        "usage": None if usage is None else usage_dict(usage, prices or {}),
        "error": error,
        "at": datetime.now(UTC).isoformat(),
    }


def usage_dict(usage: Usage, prices: dict[str, float]) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "cost": round(usage.cost(prices), 8),
    }


def document(
    work: Work,
    summary: dict[str, Any] | None,
    translations: dict[str, dict[str, Any]],
    paid: Usage,
    prices: dict[str, float],
) -> dict[str, Any]:
    """The paper version's document after this run: new entries over the stored ones."""
    stored = work.document or {}
    merged = {**stored.get("translations", {}), **translations}
    summary = summary or stored.get("summary")
    before = stored.get("usage") or {}
    usage = Usage(before.get("prompt_tokens", 0), before.get("completion_tokens", 0)) + paid
    statuses = [summary["status"] if summary else "pending"] + [
        t["status"] for t in merged.values()
    ]
    if summary is None or summary["status"] == "pending":
        status = "pending"
    elif summary["status"] == "failed":
        status = "failed"
    else:
        status = "complete" if all(s == "done" for s in statuses) else "partial"
    return {
        "arxiv_id": work.paper["arxiv_id"],
        "version": work.paper["version"],
        "status": status,
        "summary": summary,
        "translations": merged,
        "usage": {
            **usage_dict(usage, prices),
            "cost": round(before.get("cost", 0.0) + paid.cost(prices), 8),
        },
    }


LANGUAGE_NAMES = {
    "en": "English", "fr": "French", "es": "Spanish", "de": "German", "it": "Italian",
    "pt": "Portuguese", "nl": "Dutch", "zh": "Chinese", "ja": "Japanese", "ru": "Russian",
}  # fmt: skip


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)


def render(template: str, **values: Any) -> str:
    """Fill `{name}` placeholders; other braces (JSON examples in prompts) are left alone."""
    for name, value in values.items():
        template = template.replace("{" + name + "}", str(value))
    return template
