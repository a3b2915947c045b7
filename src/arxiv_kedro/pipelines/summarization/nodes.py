"""Summaries and translations for every stored paper version that lacks a current one."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from arxiv_kedro.llm import summaries as s
from arxiv_kedro.llm.checks import problems
from arxiv_kedro.llm.client import (
    LlmAuthError,
    LlmClient,
    LlmError,
    LlmInvalidOutput,
    LlmRequestError,
    LlmUnavailable,
    Usage,
)
from arxiv_kedro.llm.extractive import textrank

if TYPE_CHECKING:
    from arxiv_kedro.datasets.documents import DocumentLookup

logger = logging.getLogger(__name__)


@dataclass
class Tally:
    papers: int = 0  # paper versions worked on
    llm_summaries: int = 0
    extractive_summaries: int = 0
    translations: int = 0
    pending: int = 0  # entries left for a later run (offline, or the endpoint unavailable)
    failed: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    calls: int = 0
    usage: Usage = field(default_factory=Usage)

    @property
    def hit_rate(self) -> float | None:
        looked_up = self.cache_hits + self.cache_misses
        return self.cache_hits / looked_up if looked_up else None

    def report(self, prices: dict[str, float], seconds: float) -> dict[str, Any]:
        return {
            "papers": self.papers,
            "llm_summaries": self.llm_summaries,
            "extractive_summaries": self.extractive_summaries,
            "translations": self.translations,
            "pending": self.pending,
            "failed": self.failed,
            "llm_calls": self.calls,
            "cache_hits": self.cache_hits,
            "cache_hit_rate": None if self.hit_rate is None else round(self.hit_rate, 4),
            "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "cost": round(self.usage.cost(prices), 6),
            "seconds": round(seconds, 3),
        }


def summarize_papers(
    papers: Iterator[list[dict[str, Any]]],
    stored_summaries: DocumentLookup,
    paid_answers: DocumentLookup,
    llm: LlmClient | None,
    params: dict[str, Any],
) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]]:
    """Newest papers first. Offline (no key): extractive summaries, translations pending.
    Online: LLM summaries (upgrading extractive ones) and the missing translations, at most
    `max_papers` paper versions per run.

    Yields (paid LLM answers, summary documents, the running report); the answers are saved
    first, and online each paper is yielded as soon as it is done, so a crash never loses what
    was paid for.
    """
    settings = s.Settings(
        languages=tuple(params["languages"]),
        prompt_version=str(params["prompt_version"]),
        model=llm.model if llm is not None else None,
        min_chars=params["summary_chars"]["min"],
        max_chars=params["summary_chars"]["max"],
    )
    prices = params["prices"].get(settings.model, {}) if settings.online else {}
    if settings.online and not prices:
        logger.warning("No price for model %s in summarization.prices: cost shows 0", llm.model)
    budget = params["max_papers"] if settings.online else None
    tally, started = Tally(), time.perf_counter()

    def report() -> dict[str, Any]:
        done = tally.report(prices, time.perf_counter() - started)
        return done | {"mode": "llm" if settings.online else "offline", "model": settings.model}

    producer = _Producer(llm, paid_answers, settings, params, prices) if llm else None
    for batch in papers:
        stored = stored_summaries.get_many([(p["arxiv_id"], p["version"]) for p in batch])
        works = [
            w
            for p in batch
            if (w := s.plan(p, stored.get((p["arxiv_id"], p["version"])), settings))
        ]
        if budget is not None:
            works = works[: max(0, budget - tally.papers)]
        if not works:
            if budget is not None and tally.papers >= budget:
                break
            continue
        if producer is None:
            written = [_offline(work, settings, tally) for work in works]
            tally.papers += len(works)
            yield [], written, report()
        else:
            for answers, document in producer.run(works, tally):
                tally.papers += 1
                yield answers, [document], report()
        logger.info(
            "Summaries: %s paper versions done (%d LLM calls, cache hit rate %s, $%.4f)",
            f"{tally.papers:,}",
            tally.calls,
            _rate(tally),
            tally.usage.cost(prices),
        )
    final = report()
    logger.info(
        "Summarization done (%s): %s paper versions, %s LLM and %s extractive summaries, "
        "%s translations, %s pending, %s failed; cache hit rate %s; run cost $%.4f",
        final["mode"],
        f"{tally.papers:,}",
        f"{tally.llm_summaries:,}",
        f"{tally.extractive_summaries:,}",
        f"{tally.translations:,}",
        f"{tally.pending:,}",
        f"{tally.failed:,}",
        _rate(tally),
        final["cost"],
    )
    yield [], [], final


def _rate(tally: Tally) -> str:
    return "n/a" if tally.hit_rate is None else f"{tally.hit_rate:.0%}"


def _offline(work: s.Work, settings: s.Settings, tally: Tally) -> dict[str, Any]:
    summary = None
    if work.summary:
        text = textrank(work.paper["abstract"], max_chars=settings.max_chars)
        summary = s.entry(text, status="done", method="extractive", settings=settings)
        tally.extractive_summaries += 1
    pending = {
        lang: s.entry(None, status="pending", method="llm", settings=settings)
        for lang in work.languages
    }
    tally.pending += len(pending)
    return s.document(work, summary, pending, Usage(), {})


# A paper's summary document, the paid answers to cache, and its counts for the tally.
Produced = tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]


class _Producer:
    """The online path: cache first, then the LLM, `concurrency` papers at a time."""

    def __init__(self, llm, paid_answers, settings, params, prices):
        self.llm, self.paid_answers, self.settings = llm, paid_answers, settings
        self.prompts, self.prices = params["prompts"], prices
        self.concurrency = params["concurrency"]
        self.max_tokens = params["max_tokens"]

    def run(
        self, works: list[s.Work], tally: Tally
    ) -> Iterator[tuple[list[dict[str, Any]], dict[str, Any]]]:
        """(paid answers, document) for each paper, as soon as it is done. An authentication
        error stops the run once the papers already done are handed over."""
        refused = threading.Event()  # set by the worker that met it: no paper starts after

        def attempt(work: s.Work) -> Produced | None:
            if refused.is_set():
                return None
            try:
                return self.produce(work)
            except LlmAuthError:
                refused.set()
                raise

        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="llm") as pool:
            futures = [pool.submit(attempt, work) for work in works]
            failure: BaseException | None = None
            for future in as_completed(futures):
                if future.cancelled():
                    continue
                if future.exception() is not None:
                    if failure is None or isinstance(future.exception(), LlmAuthError):
                        failure = future.exception()
                    for pending in futures:
                        pending.cancel()
                    continue
                if (produced := future.result()) is None:
                    continue  # not started: the key was refused meanwhile
                document, answers, counts = produced
                for name, value in counts.items():
                    setattr(tally, name, getattr(tally, name) + value)
                yield answers, document
            if failure is not None:
                raise failure

    def produce(self, work: s.Work) -> Produced:
        settings, paper = self.settings, work.paper
        wanted = ([s.SOURCE_LANGUAGE] if work.summary else []) + work.languages
        keys = {lang: s.cache_key(paper, settings, lang) for lang in wanted}
        cached = self.paid_answers.get_many([(k,) for k in keys.values()])
        texts = {lang: cached[(key,)]["text"] for lang, key in keys.items() if (key,) in cached}
        counts: dict[str, Any] = {
            "cache_hits": len(texts),
            "cache_misses": len(wanted) - len(texts),
        }
        entries: dict[str, dict[str, Any]] = {
            lang: s.entry(text, status="done", method="llm", settings=settings)
            for lang, text in texts.items()
        }
        missing = [lang for lang in work.languages if lang not in texts]
        paid, calls = Usage(), 0
        stored_summary = (work.document or {}).get("summary")
        try:
            if work.summary and s.SOURCE_LANGUAGE not in texts:
                answer, paid, calls = self._ask_summary(paper, missing)
                entries |= answer
            elif missing:
                summary = entries.get(s.SOURCE_LANGUAGE) or stored_summary or {}
                if not summary.get("text"):
                    raise LlmRequestError("no summary to translate")
                answer, paid, calls = self._ask_translations(paper, summary["text"], missing)
                entries |= answer
        except LlmUnavailable as exc:
            logger.warning("%s v%s stays pending: %s", paper["arxiv_id"], paper["version"], exc)
            paid, calls = exc.usage, exc.attempts
            counts["pending"] = len(wanted) - len(entries)
        except (LlmRequestError, LlmInvalidOutput) as exc:
            paid, calls = exc.usage, exc.attempts
            for lang in wanted:
                entries.setdefault(
                    lang,
                    s.entry(
                        None, status="failed", method="llm", settings=settings, error=exc.reason
                    ),
                )
        summary = entries.get(s.SOURCE_LANGUAGE)
        if summary and summary["status"] == "failed" and (stored_summary or {}).get("text"):
            # A failed upgrade keeps the extractive summary; the attempt is recorded on it.
            entries[s.SOURCE_LANGUAGE] = {**stored_summary, "upgrade": summary}
        fresh = {lang: e for lang, e in entries.items() if lang not in texts}
        done = {k: e for k, e in fresh.items() if e["status"] == "done" and e["method"] == "llm"}
        share = _split(paid, len(done))
        for e in done.values():
            e["usage"] = s.usage_dict(share, self.prices)
        # Paid for: saved to the cache before the document, so a crash loses nothing paid.
        answers = [
            {"key": keys[lang], "text": e["text"], "usage": e["usage"]} for lang, e in done.items()
        ]
        summary_entry = entries.pop(s.SOURCE_LANGUAGE, None)
        counts |= {
            "calls": calls,
            "usage": paid,
            "llm_summaries": int(s.SOURCE_LANGUAGE in done),
            "translations": sum(e["status"] == "done" for e in entries.values()),
            "failed": sum(e["status"] == "failed" or "upgrade" in e for e in fresh.values()),
        }
        return s.document(work, summary_entry, entries, paid, self.prices), answers, counts

    def _ask_summary(self, paper, languages):
        prompt = self.prompts["summarize"]
        values = {
            "title": paper["title"],
            "abstract": paper["abstract"],
            "min_chars": self.settings.min_chars,
            "max_chars": self.settings.max_chars,
            "languages": ", ".join(f"{code} ({s.language_name(code)})" for code in languages),
        }
        return self._ask(prompt, values, s.SummaryAnswer, languages, paper, summary=True)

    def _ask_translations(self, paper, text, languages):
        prompt = self.prompts["translate"]
        values = {
            "summary": text,
            "languages": ", ".join(f"{code} ({s.language_name(code)})" for code in languages),
        }
        return self._ask(prompt, values, s.TranslationAnswer, languages, paper, summary=False)

    def _ask(self, prompt, values, schema, languages, paper, *, summary):
        """Ask; check every text; one more try if any check fails, then record failures."""
        messages = [
            {"role": "system", "content": s.render(prompt["system"], **values)},
            {"role": "user", "content": s.render(prompt["user"], **values)},
        ]
        paid, calls, entries = Usage(), 0, {}
        wanted = ([s.SOURCE_LANGUAGE] if summary else []) + list(languages)
        for attempt in (1, 2):
            try:
                completion = self.llm.complete(messages, schema, max_tokens=self.max_tokens)
            except LlmError as exc:  # what this paper cost before the error counts too
                exc.usage, exc.attempts = paid + exc.usage, calls + exc.attempts
                raise
            paid, calls = paid + completion.usage, calls + completion.attempts
            answer = completion.value
            texts = dict(answer.translations)
            if summary:
                texts[s.SOURCE_LANGUAGE] = answer.summary
            issues = {}
            for lang in wanted:
                text = texts.get(lang)
                found = (
                    ["missing"]
                    if text is None
                    else problems(
                        text,
                        language=lang,
                        source=paper["abstract"],
                        min_chars=self.settings.min_chars,
                        max_chars=self.settings.max_chars,
                        candidates=(s.SOURCE_LANGUAGE, *self.settings.languages),
                    )
                )
                if found:
                    issues[lang] = "; ".join(found)
                else:
                    entries[lang] = s.entry(
                        text, status="done", method="llm", settings=self.settings
                    )
            if not issues:
                break
            if attempt == 2:
                for lang, reason in issues.items():
                    entries[lang] = s.entry(
                        None, status="failed", method="llm", settings=self.settings, error=reason
                    )
                break
            logger.info("%s: checks failed (%s); asking once more", paper["arxiv_id"], issues)
            wanted = list(issues)
        return entries, paid, calls


def _split(usage: Usage, parts: int) -> Usage:
    if parts <= 1:
        return usage
    return Usage(usage.prompt_tokens // parts, usage.completion_tokens // parts)
