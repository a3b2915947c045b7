"""The offline summary: sentence splitting and TextRank over real arXiv abstracts."""

from __future__ import annotations

import pytest

from arxiv_kedro.llm.extractive import sentences, textrank


@pytest.fixture(scope="module")
def abstracts(corpus: list[dict]) -> list[str]:
    """300 real abstracts of the daily snapshot."""
    return [record["abstract"] for record in corpus[:300]]


def positions(summary: str, abstract: str) -> list[int]:
    """Indices of the summary's sentences among the abstract's, or AssertionError."""
    parts = sentences(" ".join(abstract.split()))
    found, start = [], 0
    for sentence in sentences(summary):
        assert sentence in parts[start:], f"{sentence!r} is not a later sentence of the abstract"
        start = parts.index(sentence, start) + 1
        found.append(start - 1)
    return found


# --- sentences ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One. Two words here. Three!", ["One.", "Two words here.", "Three!"]),
        ("Does it work? Yes. (It does.)", ["Does it work?", "Yes.", "(It does.)"]),
        (
            "We use tools, e.g. Python or Julia. It helps.",
            ["We use tools, e.g. Python or Julia.", "It helps."],
        ),
        ("Labels, i.e. Classes, matter. Done.", ["Labels, i.e. Classes, matter.", "Done."]),
        (
            "Smith et al. (2020) did it. We extend them.",
            ["Smith et al. (2020) did it.", "We extend them."],
        ),
        ("As in Fig. 3 and Eq. 2 we see it. Next.", ["As in Fig. 3 and Eq. 2 we see it.", "Next."]),
        ("Ours vs. Theirs wins. Then.", ["Ours vs. Theirs wins.", "Then."]),
        ("Funded by the U.S. Army. We thank them.", ["Funded by the U.S. Army.", "We thank them."]),
        ("Accuracy rose 3.5 times. 42 runs agree.", ["Accuracy rose 3.5 times.", "42 runs agree."]),
        ("A claim. [1] shows it.", ["A claim.", "[1] shows it."]),
        ("no capital after. the end", ["no capital after. the end"]),
        ("No final stop", ["No final stop"]),
        ("", []),
        ("   ", []),
    ],
)
def test_sentences(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_a_sentence_ending_with_an_acronym_ends() -> None:
    assert sentences("We evaluate it with an LLM. Results show gains.") == [
        "We evaluate it with an LLM.",
        "Results show gains.",
    ]


def test_sentences_of_real_abstracts_cover_the_text(abstracts: list[str]) -> None:
    for abstract in abstracts:
        text = " ".join(abstract.split())
        parts = sentences(text)
        assert parts
        assert " ".join(parts) == text
        assert all(part == part.strip() and part for part in parts)


# --- textrank -------------------------------------------------------------------------------


def test_textrank_is_deterministic(abstracts: list[str]) -> None:
    first = [textrank(abstract, 400) for abstract in abstracts[:100]]
    again = [textrank(abstract, 400) for abstract in abstracts[:100]]

    assert first == again


@pytest.mark.parametrize("max_chars", [120, 250, 400, 700])
def test_textrank_keeps_whole_abstract_sentences_in_order_within_max_chars(
    abstracts: list[str], max_chars: int
) -> None:
    for abstract in abstracts:
        summary = textrank(abstract, max_chars)

        assert 0 < len(summary) <= max_chars
        if summary.endswith("…"):  # one sentence longer than max_chars, cut at a word
            first = summary[:-1].rstrip(",;:")
            assert " ".join(abstract.split()).find(first) >= 0
            continue
        assert positions(summary, abstract) == sorted(positions(summary, abstract))


def test_textrank_returns_a_short_abstract_whole() -> None:
    abstract = "We study  a\nproblem. We solve it with a new method. It works well in practice."

    assert textrank(abstract, 400) == (
        "We study a problem. We solve it with a new method. It works well in practice."
    )


def test_textrank_leaves_out_an_unrelated_sentence() -> None:
    abstract = (
        "Graph neural networks learn node representations from their neighbours. "
        "We propose sparse graph neural networks that learn node representations faster. "
        "Sparse graph networks match dense graph neural networks on node classification. "
        "The weather was pleasant during the conference in spring."
    )

    summary = textrank(abstract, 250)

    assert "weather" not in summary
    assert positions(summary, abstract) == [0, 1, 2]


def test_textrank_skips_section_headings_after_the_first_sentence() -> None:
    abstract = (
        "Objective. We measure how sleep affects memory in adults. Methods. We recorded sleep "
        "of forty adults and tested their memory every morning. Results. Memory improved "
        "after longer sleep in most adults we tested."
    )

    summary = textrank(abstract, 700)

    assert "Methods." not in summary
    assert "Results." not in summary
    assert "We measure how sleep affects memory in adults." in summary


def test_textrank_cuts_a_single_long_sentence_at_a_word() -> None:
    abstract = "We " + " ".join(f"study case {i}," for i in range(80)) + " and conclude."

    summary = textrank(abstract, 100)

    assert len(summary) <= 100
    assert summary.endswith("…")
    assert abstract.startswith(summary[:-1])
    assert not summary[:-1].endswith((" ", ","))


@pytest.mark.parametrize("text", ["", "   \n "])
def test_textrank_of_nothing_is_empty(text: str) -> None:
    assert textrank(text, 400) == ""
