"""Unit tests of the paper model and the rules that normalize or quarantine raw records."""

from __future__ import annotations

import dataclasses
import pickle
from datetime import UTC, datetime
from typing import Any

import pytest

from arxiv_kedro.papers import (
    MAX_AUTHOR_NAME,
    InvalidRecord,
    Paper,
    from_api_entry,
    from_snapshot_record,
    normalize,
    parse_arxiv_id,
    split_authors,
)


def api_entry(**changes: Any) -> dict[str, Any]:
    """An entry as `sources.arxiv_api.parse_feed` extracts it."""
    entry = {
        "id": "http://arxiv.org/abs/2503.11677v2",
        "title": "Simulation of\n  prosthetic  vision with $\\alpha$-PRIMA",
        "summary": "  Objective.\nPatients   see $\\mathbf{x}$.\n",
        "published": "2025-03-14T17:59:59Z",
        "updated": "2025-03-18T09:00:00Z",
        "authors": ["Jungyeon  Park", "Anna Kochnev\n Goldstein", "Daniel Palanker"],
        "primary_category": "cs.HC",
        "categories": ["cs.HC", "cs.CV"],
        "doi": None,
        "journal_ref": None,
        "comment": " 12 pages,\n 5 figures ",
        "links": [],
    }
    return entry | changes


def snapshot_record(**changes: Any) -> dict[str, Any]:
    """A line of the Kaggle snapshot format, with its version history."""
    record = {
        "id": "0704.0001",
        "authors": "C. Bal\\'azs, E. L. Berger, P. M. Nadolsky, C.-P. Yuan",
        "title": "Calculation of prompt diphoton production cross sections at Tevatron and\n  LHC",
        "comments": "37 pages, 15 figures; published version",
        "journal-ref": "Phys.Rev.D76:013009,2007",
        "doi": "10.1103/PhysRevD.76.013009",
        "categories": "hep-ph",
        "abstract": "  A fully differential\ncalculation in $\\mathcal{O}(\\alpha_s)$.\n",
        "versions": [
            {"version": "v1", "created": "Mon, 2 Apr 2007 19:18:42 GMT"},
            {"version": "v2", "created": "Tue, 24 Jul 2007 20:10:27 GMT"},
        ],
        "update_date": "2008-11-26",
        "authors_parsed": [
            ["Balázs", "C.", ""],
            ["Berger", "E. L.", ""],
            ["Nadolsky", "P. M.", ""],
            ["Yuan", "C. -P.", ""],
        ],
    }
    return record | changes


def daily_record(**changes: Any) -> dict[str, Any]:
    """A daily-listing record: no version history, `update_date` is the listing date."""
    record = {
        "id": "2503.11685",
        "authors": "Omkar Kokane, Adam Teman and Anushka Jha",
        "title": "CORDIC Is All You Need",
        "comments": None,
        "journal-ref": None,
        "doi": None,
        "categories": "cs.AR cs.CV eess.IV",
        "abstract": "Artificial intelligence necessitates adaptable hardware.",
        "versions": [],
        "update_date": "2025-03-18",
    }
    return record | changes


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0704.0001", ("0704.0001", None)),
        ("2503.11677", ("2503.11677", None)),
        ("2503.11677v12", ("2503.11677", 12)),
        (" 1111.2011v2\n", ("1111.2011", 2)),
        ("hep-th/9901001v2", ("hep-th/9901001", 2)),
        ("math.GT/0309136", ("math.GT/0309136", None)),
        ("http://arxiv.org/abs/2104.12255v1", ("2104.12255", 1)),
        ("https://arxiv.org/abs/quant-ph/0201082", ("quant-ph/0201082", None)),
        ("http://export.arxiv.org/abs/astro-ph/0601001v3", ("astro-ph/0601001", 3)),
    ],
)
def test_parse_arxiv_id_splits_id_and_version(text: str, expected: tuple[str, int | None]) -> None:
    assert parse_arxiv_id(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "2503.116",
        "2503.116777",
        "2503.11677v",
        "hep-th/990100",
        "HEP-TH/9901001",
        "https://example.org/abs/2503.11677",
        "https://arxiv.org/api/errors#incorrect_id_format_for_abc",
    ],
)
def test_parse_arxiv_id_rejects_garbage(text: str) -> None:
    with pytest.raises(InvalidRecord, match="unparseable arXiv id"):
        parse_arxiv_id(text)


def test_api_entry_becomes_paper() -> None:
    paper = from_api_entry(api_entry(doi="10.1/x ", journal_ref="J. X 1 (2025)"))

    assert paper == Paper(
        arxiv_id="2503.11677",
        version=2,
        title="Simulation of prosthetic vision with $\\alpha$-PRIMA",
        abstract="Objective. Patients see $\\mathbf{x}$.",
        authors=("Jungyeon Park", "Anna Kochnev Goldstein", "Daniel Palanker"),
        primary_category="cs.HC",
        categories=("cs.HC", "cs.CV"),
        published=utc(2025, 3, 14, 17, 59, 59),
        updated=utc(2025, 3, 18, 9),
        doi="10.1/x",
        journal_ref="J. X 1 (2025)",
        comments="12 pages, 5 figures",
    )


def test_api_entry_without_version_is_version_1() -> None:
    assert from_api_entry(api_entry(id="http://arxiv.org/abs/2503.11677")).version == 1


def test_api_entry_drops_blank_author_names_keeping_order() -> None:
    paper = from_api_entry(api_entry(authors=[" Zoe  Z ", None, " ", "Adam\nA", "x" * 400]))

    assert paper.authors == ("Zoe Z", "Adam A", "x" * MAX_AUTHOR_NAME)


def test_api_categories_primary_first_deduplicated_class_codes_dropped() -> None:
    entry = api_entry(
        primary_category="cs.CL",
        categories=["cs.AI", "cs.CL", "I.2.7", "cs.AI", "68T50,", "stat.ML"],
    )

    paper = from_api_entry(entry)

    assert paper.primary_category == "cs.CL"
    assert paper.categories == ("cs.CL", "cs.AI", "stat.ML")


def test_api_first_category_stands_in_for_missing_primary() -> None:
    paper = from_api_entry(api_entry(primary_category=None, categories=["astro-ph.GA", "gr-qc"]))

    assert paper.categories == ("astro-ph.GA", "gr-qc")


def test_api_invalid_primary_category_is_invalid() -> None:
    with pytest.raises(InvalidRecord, match=r"unparseable primary category 'I\.2\.7'"):
        from_api_entry(api_entry(primary_category="I.2.7", categories=["I.2.7", "cs.CL"]))


def test_api_entry_without_categories_is_invalid() -> None:
    with pytest.raises(InvalidRecord, match="missing category"):
        from_api_entry(api_entry(primary_category=None, categories=[]))


@pytest.mark.parametrize(
    ("published", "expected"),
    [
        ("2016-10-09T00:00:00-04:00", utc(2016, 10, 9, 4)),
        ("2016-10-09T06:30:00+05:30", utc(2016, 10, 9, 1)),
        ("2016-10-09T04:00:00", utc(2016, 10, 9, 4)),
        ("2016-10-09T04:00:00Z", utc(2016, 10, 9, 4)),
    ],
)
def test_api_dates_become_utc(published: str, expected: datetime) -> None:
    paper = from_api_entry(api_entry(published=published, updated=None))

    assert paper.published == paper.updated == expected
    assert paper.published.utcoffset().total_seconds() == 0


def test_api_updated_never_precedes_published() -> None:
    paper = from_api_entry(api_entry(updated="2025-03-01T00:00:00Z"))

    assert paper.updated == paper.published == utc(2025, 3, 14, 17, 59, 59)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("id", None, "missing id"),
        ("id", "not an id", "unparseable arXiv id"),
        ("title", " \n ", "missing title"),
        ("summary", None, "missing abstract"),
        ("published", None, "missing published date"),
        ("published", "yesterday", "unparseable published date 'yesterday'"),
        ("updated", "18/03/2025", "unparseable updated date '18/03/2025'"),
    ],
)
def test_api_entry_invalid_with_reason(field: str, value: Any, reason: str) -> None:
    with pytest.raises(InvalidRecord, match=reason):
        from_api_entry(api_entry(**{field: value}))


def test_snapshot_record_becomes_paper() -> None:
    paper = from_snapshot_record(snapshot_record())

    assert paper == Paper(
        arxiv_id="0704.0001",
        version=2,
        title="Calculation of prompt diphoton production cross sections at Tevatron and LHC",
        abstract="A fully differential calculation in $\\mathcal{O}(\\alpha_s)$.",
        authors=("C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C. -P. Yuan"),
        primary_category="hep-ph",
        categories=("hep-ph",),
        published=utc(2007, 4, 2, 19, 18, 42),
        updated=utc(2007, 7, 24, 20, 10, 27),
        doi="10.1103/PhysRevD.76.013009",
        journal_ref="Phys.Rev.D76:013009,2007",
        comments="37 pages, 15 figures; published version",
    )


def test_snapshot_authors_parsed_keeps_suffix_and_order() -> None:
    record = snapshot_record(authors_parsed=[["Zorn", "Max", "Jr"], ["Abel", "Ann", ""]])

    assert from_snapshot_record(record).authors == ("Max Zorn Jr", "Ann Abel")


def test_snapshot_without_authors_parsed_splits_authors_string() -> None:
    paper = from_snapshot_record(daily_record())

    assert paper.authors == ("Omkar Kokane", "Adam Teman", "Anushka Jha")


def test_snapshot_categories_drop_class_codes_and_duplicates() -> None:
    record = daily_record(categories="cs.CL cs.AI I.2.7 cs.CL 68T50, cs.LG")

    paper = from_snapshot_record(record)

    assert paper.primary_category == "cs.CL"
    assert paper.categories == ("cs.CL", "cs.AI", "cs.LG")


def test_snapshot_comment_words_among_categories_are_dropped() -> None:
    # As in 20 of the 72k daily records, where class codes with their descriptions follow.
    codes = "68T07 (Artificial neural networks and deep learning)"
    record = daily_record(categories=f"cs.CV {codes} cs.LG physics hep-th")

    assert from_snapshot_record(record).categories == ("cs.CV", "cs.LG", "physics", "hep-th")
    with pytest.raises(InvalidRecord, match="unparseable primary category 'accepted'"):
        from_snapshot_record(daily_record(categories="accepted cs.CV"))


def test_snapshot_class_code_as_primary_is_invalid() -> None:
    with pytest.raises(InvalidRecord, match="unparseable primary category '68T50'"):
        from_snapshot_record(daily_record(categories="68T50 math.CO"))


@pytest.mark.parametrize(
    ("arxiv_id", "category"), [("hep-th/9901001", "hep-th"), ("math.GT/0309136", "math.GT")]
)
def test_snapshot_old_style_id_stands_in_for_missing_categories(
    arxiv_id: str, category: str
) -> None:
    paper = from_snapshot_record(snapshot_record(id=arxiv_id, categories=None))

    assert paper.arxiv_id == arxiv_id
    assert paper.categories == (category,)


def test_snapshot_new_style_id_without_categories_is_invalid() -> None:
    with pytest.raises(InvalidRecord, match="missing category"):
        from_snapshot_record(daily_record(categories="  "))


def test_snapshot_daily_record_is_version_1_on_update_date() -> None:
    paper = from_snapshot_record(daily_record())

    assert paper.version == 1
    assert paper.published == paper.updated == utc(2025, 3, 18)


def test_snapshot_version_count_gives_version() -> None:
    versions = [{"created": f"2020-01-0{day}T00:00:00Z"} for day in (1, 2, 3)]

    assert from_snapshot_record(snapshot_record(versions=versions)).version == 3


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        ("Mon, 2 Apr 2007 21:18:42 +0200", utc(2007, 4, 2, 19, 18, 42)),
        ("2007-04-02T19:18:42Z", utc(2007, 4, 2, 19, 18, 42)),
        ("2007-04-02 16:18:42-03:00", utc(2007, 4, 2, 19, 18, 42)),
    ],
)
def test_snapshot_version_dates_in_rfc2822_or_iso(created: str, expected: datetime) -> None:
    paper = from_snapshot_record(snapshot_record(versions=[{"created": created}]))

    assert paper.published == paper.updated == expected


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"id": ""}, "missing id"),
        ({"id": "0704.1"}, "unparseable arXiv id"),
        ({"title": None}, "missing title"),
        ({"abstract": "\n"}, "missing abstract"),
        ({"versions": [{"created": "2 Apr 07ish"}]}, "unparseable version date '2 Apr 07ish'"),
        ({"versions": [{"version": "v1"}]}, "missing version date"),
    ],
)
def test_snapshot_record_invalid_with_reason(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidRecord, match=reason):
        from_snapshot_record(snapshot_record(**changes))


@pytest.mark.parametrize(
    ("update_date", "reason"),
    [(None, "missing update date"), ("18 March 2025", "unparseable update date")],
)
def test_snapshot_daily_record_bad_update_date_is_invalid(
    update_date: str | None, reason: str
) -> None:
    with pytest.raises(InvalidRecord, match=reason):
        from_snapshot_record(daily_record(update_date=update_date))


@pytest.mark.parametrize(
    ("authors", "expected"),
    [
        ("A. Bc (Univ X), D. Ef and G. Hi", ("A. Bc", "D. Ef", "G. Hi")),
        (
            "A. Mishchenko (1 and 2), B. Smith (Los\n  Alamos), and C. Jones ((1) CREST)",
            ("A. Mishchenko", "B. Smith", "C. Jones"),
        ),
        ("Sandy Anderson and Andrea Rand", ("Sandy Anderson", "Andrea Rand")),
        ("Solo Author", ("Solo Author",)),
        ("", ()),
    ],
)
def test_split_authors(authors: str, expected: tuple[str, ...]) -> None:
    assert split_authors(authors) == expected


def test_normalize_quarantines_with_reason_and_key() -> None:
    good = snapshot_record()
    no_abstract = daily_record(abstract=None)
    no_id = daily_record(id=None)

    papers, quarantined = normalize([no_abstract, good, no_id], "snapshot")

    assert [paper.arxiv_id for paper in papers] == ["0704.0001"]
    assert [(q.source, q.reason, q.record_key) for q in quarantined] == [
        ("snapshot", "missing abstract", "2503.11685"),
        ("snapshot", "missing id", None),
    ]
    assert quarantined[0].raw is no_abstract


@pytest.mark.parametrize(
    "broken",
    [
        {"authors_parsed": [["OnlyLast"]]},
        {"authors_parsed": [None]},
        {"title": 42},
        {"categories": ["cs.CL"]},
        {"versions": ["v1"]},
    ],
)
def test_normalize_quarantines_records_of_the_wrong_shape(broken: dict[str, Any]) -> None:
    bad = {**snapshot_record(), **broken}

    papers, quarantined = normalize([bad, daily_record()], "snapshot")

    assert [paper.arxiv_id for paper in papers] == ["2503.11685"]
    assert len(quarantined) == 1
    assert quarantined[0].reason.startswith("malformed record (")
    assert quarantined[0].raw is bad


def test_normalize_keeps_newest_version_even_if_first() -> None:
    v3 = api_entry(id="http://arxiv.org/abs/2503.11677v3", title="Third")
    v1 = api_entry(id="http://arxiv.org/abs/2503.11677v1", title="First")
    other = api_entry(id="http://arxiv.org/abs/2503.00001v1")

    papers, quarantined = normalize([v3, other, v1], "api")

    assert quarantined == []
    assert [(paper.arxiv_id, paper.version, paper.title) for paper in papers] == [
        ("2503.11677", 3, "Third"),
        ("2503.00001", 1, "Simulation of prosthetic vision with $\\alpha$-PRIMA"),
    ]


def test_normalize_same_version_keeps_latest_update() -> None:
    later = api_entry(updated="2025-04-01T00:00:00Z", title="Later")
    earlier = api_entry(updated="2025-03-20T00:00:00Z", title="Earlier")

    papers, _ = normalize([later, earlier], "api")

    assert [paper.title for paper in papers] == ["Later"]


PAPER = from_api_entry(api_entry())
# One change per field; the primary is always the first category, so it changes with them.
CHANGES = {
    "arxiv_id": {"arxiv_id": "2503.11678"},
    "version": {"version": 3},
    "title": {"title": "Another title"},
    "abstract": {"abstract": "Another abstract."},
    "authors": {"authors": ("Jungyeon Park", "Daniel Palanker", "Anna Kochnev Goldstein")},
    "primary_category": {"primary_category": "cs.CV", "categories": ("cs.CV", "cs.HC")},
    "categories": {"categories": ("cs.HC", "cs.CV", "cs.AI")},
    "published": {"published": utc(2025, 3, 14, 18)},
    "updated": {"updated": utc(2025, 3, 18, 9, 0, 1)},
    "doi": {"doi": "10.1/x"},
    "journal_ref": {"journal_ref": "J. X"},
    "comments": {"comments": "13 pages"},
}


def test_content_hash_is_stable() -> None:
    again = from_api_entry(api_entry())

    assert again is not PAPER
    assert again.content_hash() == PAPER.content_hash()
    assert len(PAPER.content_hash()) == 32


def test_changes_cover_every_field() -> None:
    content = {field.name for field in dataclasses.fields(Paper) if field.compare}
    assert set(CHANGES) == content


def test_raw_record_travels_with_the_paper_but_is_not_content() -> None:
    raw = api_entry()
    paper = from_api_entry(raw)

    assert paper.raw is raw
    assert dataclasses.replace(paper, raw={"other": 1}).content_hash() == paper.content_hash()
    assert pickle.loads(pickle.dumps(paper)).raw == raw
    assert "raw" not in paper.as_json()
    assert paper.as_json()["published"] == paper.published.isoformat()


@pytest.mark.parametrize("changes", CHANGES.values(), ids=CHANGES.keys())
def test_content_hash_changes_with_any_field(changes: dict[str, Any]) -> None:
    changed = dataclasses.replace(PAPER, **changes)

    assert changed.content_hash() != PAPER.content_hash()


def test_content_hash_separates_adjacent_fields() -> None:
    as_doi = dataclasses.replace(PAPER, doi="x", journal_ref=None)
    as_journal_ref = dataclasses.replace(PAPER, doi=None, journal_ref="x")

    assert as_doi.content_hash() != as_journal_ref.content_hash()


@pytest.mark.parametrize(
    ("arxiv_id", "version", "abs_url", "pdf_url"),
    [
        (
            "2503.11677",
            2,
            "https://arxiv.org/abs/2503.11677",
            "https://arxiv.org/pdf/2503.11677v2",
        ),
        (
            "hep-th/9901001",
            1,
            "https://arxiv.org/abs/hep-th/9901001",
            "https://arxiv.org/pdf/hep-th/9901001v1",
        ),
    ],
)
def test_abs_and_pdf_urls(arxiv_id: str, version: int, abs_url: str, pdf_url: str) -> None:
    paper = dataclasses.replace(PAPER, arxiv_id=arxiv_id, version=version)

    assert (paper.abs_url, paper.pdf_url) == (abs_url, pdf_url)
