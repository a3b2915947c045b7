"""Checks on every generated text: non-empty, bounded, in the expected language, not a copy."""

from __future__ import annotations

import re
import threading
from difflib import SequenceMatcher
from functools import lru_cache

from py3langid.langid import MODEL_FILE, LanguageIdentifier

_WORDS = re.compile(r"\w+")
_building = threading.Lock()


@lru_cache(maxsize=8)
def _identifier(languages: tuple[str, ...]) -> LanguageIdentifier:
    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(languages))
    return identifier


def detect_language(text: str, candidates: tuple[str, ...]) -> tuple[str, float]:
    """The most likely of `candidates` (ISO 639-1 codes) and its probability; offline."""
    with _building:  # the model takes ~1 s to load: once per set of languages, not per thread
        identifier = _identifier(tuple(sorted(set(candidates))))
    language, probability = identifier.classify(text)
    return language, float(probability)


def problems(
    text: str,
    *,
    language: str,
    source: str,
    min_chars: int,
    max_chars: int,
    candidates: tuple[str, ...],
    max_copy_ratio: float = 0.9,
) -> list[str]:
    """What is wrong with `text` (empty list: nothing). `source` is the abstract it came from."""
    stripped = text.strip()
    if not stripped:
        return ["empty"]
    found = []
    if len(stripped) < min_chars:
        found.append(f"too short ({len(stripped)} < {min_chars} characters)")
    if len(stripped) > max_chars:
        found.append(f"too long ({len(stripped)} > {max_chars} characters)")
    detected, probability = detect_language(stripped, (*candidates, language))
    if detected != language:
        found.append(f"language is {detected} ({probability:.2f}), not {language}")
    words, source_words = _WORDS.findall(stripped.lower()), _WORDS.findall(source.lower())
    copied = SequenceMatcher(None, words, source_words, autojunk=False).ratio()
    if words and copied > max_copy_ratio:
        found.append("a copy of the abstract")
    return found
