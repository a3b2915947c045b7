"""The offline summary: TextRank over the abstract's sentences — deterministic, no model, no key."""

from __future__ import annotations

import re

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

_WORD = re.compile(r"[a-z][a-z0-9-]+")

# A sentence ends at . ! or ? followed by a space and an upper-case letter, digit or opening
# bracket; "e.g. the", "Fig. 3", "et al. (2020)" and initials ("J. Smith", "U.S. Army") do not
# end one, while an acronym does ("… with an LLM. Results …").
_SENTENCE_END = re.compile(r"(?<!\b[A-Z])(?<!\be\.g)(?<!\bi\.e)(?<!\bet al)(?<!\bFig)(?<!\bEq)"
                           r"(?<!\bvs)[.!?](?=\s+[A-Z0-9(\[])")  # fmt: skip


def sentences(text: str) -> list[str]:
    parts, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        parts.append(text[start : match.end()].strip())
        start = match.end()
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def _similarity(parts: list[str]) -> np.ndarray:
    """Cosine similarity of the sentences' TF-IDF vectors (stop words left out)."""
    bags = [[w for w in _WORD.findall(p.lower()) if w not in ENGLISH_STOP_WORDS] for p in parts]
    vocabulary = {w: i for i, w in enumerate(sorted({w for bag in bags for w in bag}))}
    counts = np.zeros((len(parts), len(vocabulary)))
    for row, bag in enumerate(bags):
        for word in bag:
            counts[row, vocabulary[word]] += 1
    idf = np.log((1 + len(parts)) / (1 + (counts > 0).sum(axis=0))) + 1
    vectors = counts * idf
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, 0.0)
    return similarity


def textrank(text: str, max_chars: int = 400, damping: float = 0.85) -> str:
    """The most central sentences of `text`, in their original order, within `max_chars`.

    Sentences are nodes, TF-IDF cosine similarity the edge weights, PageRank the centrality,
    with the random jumps favouring early sentences (abstracts state their point first).
    Ties go to the earlier sentence, so the result is the same on every machine.
    """
    parts = sentences(" ".join(text.split()))
    if len(parts) <= 1:
        return _clip(parts[0] if parts else "", max_chars)
    n = len(parts)
    similarity = _similarity(parts)
    totals = similarity.sum(axis=1, keepdims=True)
    transition = np.divide(similarity, totals, out=np.full_like(similarity, 1 / n),
                           where=totals > 0)  # fmt: skip
    jump = 1 / np.arange(1, n + 1)
    jump /= jump.sum()
    rank = np.full(n, 1 / n)
    for _ in range(200):
        updated = (1 - damping) * jump + damping * transition.T @ rank
        if np.abs(updated - rank).sum() < 1e-10:
            break
        rank = updated
    order = sorted(range(n), key=lambda i: (-round(rank[i], 9), i))
    chosen: list[int] = []
    length = 0
    for i in order:
        if len(parts[i].split()) < 5 and chosen:  # headings such as "Objective." or "Methods."
            continue
        if length + len(parts[i]) + 1 > max_chars and chosen:
            continue
        chosen.append(i)
        length += len(parts[i]) + 1
    return _clip(" ".join(parts[i] for i in sorted(chosen)), max_chars)


def _clip(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    cut = text[: max_chars - 1].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"
