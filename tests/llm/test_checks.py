"""Checks on generated texts: offline language detection and every kind of problem."""

from __future__ import annotations

import pytest

from arxiv_kedro.llm.checks import detect_language, problems

CANDIDATES = ("en", "fr", "es", "de")
ABSTRACT = (
    "Large language models often hallucinate facts when answering questions about recent "
    "events. We propose a retrieval step that grounds every answer in documents published "
    "after the model's training cut-off, and we show on two benchmarks that it halves the "
    "rate of unsupported claims while keeping answers fluent."
)
SENTENCES = {
    "en": (
        "Language models sometimes invent facts about recent events. The authors let the model "
        "look up fresh documents first, which makes its answers far more reliable."
    ),
    "fr": (
        "Les modèles de langage inventent parfois des faits sur l'actualité. Les auteurs "
        "laissent le modèle consulter d'abord des documents récents, ce qui rend ses réponses "
        "bien plus fiables."
    ),
    "es": (
        "Los modelos de lenguaje a veces inventan hechos sobre la actualidad. Los autores dejan "
        "que el modelo consulte primero documentos recientes, lo que hace que sus respuestas "
        "sean mucho más fiables."
    ),
    "de": (
        "Sprachmodelle erfinden manchmal Fakten über aktuelle Ereignisse. Die Autoren lassen "
        "das Modell zuerst neue Dokumente nachschlagen, wodurch seine Antworten viel "
        "zuverlässiger werden."
    ),
    "it": (
        "I modelli linguistici a volte inventano fatti sugli eventi recenti. Gli autori fanno "
        "consultare al modello documenti nuovi, e così le sue risposte diventano più affidabili."
    ),
}


def check(text: str, language: str = "en", **options) -> list[str]:
    settings = {
        "source": ABSTRACT,
        "min_chars": 80,
        "max_chars": 400,
        "candidates": CANDIDATES,
        **options,
    }
    return problems(text, language=language, **settings)


@pytest.mark.parametrize("language", ["en", "fr", "es", "de"])
def test_detect_language(language: str) -> None:
    detected, probability = detect_language(SENTENCES[language], CANDIDATES)

    assert detected == language
    assert 0.5 < probability <= 1.0


def test_detect_language_only_picks_among_the_candidates() -> None:
    assert detect_language(SENTENCES["it"], ("en", "it"))[0] == "it"
    assert detect_language(SENTENCES["it"], CANDIDATES)[0] in CANDIDATES


def test_detect_language_does_not_depend_on_the_candidates_order() -> None:
    assert detect_language(SENTENCES["fr"], CANDIDATES) == detect_language(
        SENTENCES["fr"], tuple(reversed(CANDIDATES))
    )


@pytest.mark.parametrize("language", ["en", "fr", "es", "de"])
def test_a_good_text_has_no_problem(language: str) -> None:
    assert check(SENTENCES[language], language) == []


def test_a_language_outside_the_candidates_is_still_considered() -> None:
    assert check(SENTENCES["it"], "it") == []


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_an_empty_text(text: str) -> None:
    assert check(text) == ["empty"]


def test_a_too_short_text() -> None:
    found = check("Models invent facts; retrieval helps them.")

    assert found == ["too short (42 < 80 characters)"]


def test_a_too_long_text() -> None:
    text = " ".join([SENTENCES["en"]] * 3)

    assert check(text) == [f"too long ({len(text)} > 400 characters)"]


def test_surrounding_whitespace_does_not_count() -> None:
    assert check("\n  " + SENTENCES["en"] + "  \n", max_chars=len(SENTENCES["en"])) == []


@pytest.mark.parametrize(
    ("written_in", "expected"), [("en", "fr"), ("fr", "de"), ("es", "en"), ("de", "es")]
)
def test_a_text_in_the_wrong_language(written_in: str, expected: str) -> None:
    [found] = check(SENTENCES[written_in], expected)

    assert found.startswith(f"language is {written_in} (")
    assert found.endswith(f"), not {expected}")


def test_a_copy_of_the_abstract() -> None:
    assert check(ABSTRACT, max_chars=1000) == ["a copy of the abstract"]


def test_a_near_copy_of_the_abstract() -> None:
    near = ABSTRACT.replace("often", "sometimes").replace("two", "three")

    assert check(near, max_chars=1000) == ["a copy of the abstract"]
    assert check(near, max_chars=1000, max_copy_ratio=0.99) == []


def test_a_summary_reusing_some_words_is_no_copy() -> None:
    first_sentence = ABSTRACT.split(". ")[0] + "."
    text = first_sentence + " " + SENTENCES["en"]

    assert check(text) == []


def test_several_problems_at_once() -> None:
    found = check(" ".join([SENTENCES["de"]] * 4), "fr")

    assert len(found) == 2
    assert found[0].startswith("too long (")
    assert found[1].startswith("language is de (")
