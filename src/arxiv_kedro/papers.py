"""The normalized paper model, and the rules that turn raw arXiv records into it or quarantine."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from operator import attrgetter
from typing import Any

# arXiv identifiers: https://info.arxiv.org/help/arxiv_identifier.html
# New style since April 2007 (YYMM.NNNN, five digits from 2015), old style before (archive/YYMMNNN).
_NEW_ID = re.compile(r"(\d{4}\.\d{4,5})(?:v(\d+))?")
_OLD_ID = re.compile(r"([a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7})(?:v(\d+))?")
_ABS_PREFIX = re.compile(r"^https?://(?:export\.)?arxiv\.org/abs/")
# A category id's shape (archive or archive.CLASS): the one pattern ingestion and the API check.
CATEGORY_PATTERN = r"[a-z][a-z\-]*(?:\.[A-Za-z][A-Za-z\-]*)?"
_CATEGORY = re.compile(CATEGORY_PATTERN)
# Categories are `archive.CLASS` or hyphenated (hep-th, astro-ph); a bare word is one only when it
# is one of these archives (the taxonomy's) — not a word of a comment exported among categories.
_BARE_ARCHIVES = frozenset({"cs", "econ", "eess", "math", "nlin", "physics", "stat"})
_PARENTHESES = re.compile(r"\([^()]*\)")
_AUTHOR_SEPARATOR = re.compile(r",|\band\b")
MAX_AUTHOR_NAME = 300  # longer "names" are collaboration lists that escaped splitting


class InvalidRecord(ValueError):
    """A raw record that cannot become a `Paper`; the message is the quarantine reason."""


def parse_arxiv_id(text: str) -> tuple[str, int | None]:
    """Split an arXiv id or abs URL into (versionless id, version or None).

    >>> parse_arxiv_id("http://arxiv.org/abs/hep-th/9901001v2")
    ('hep-th/9901001', 2)
    """
    candidate = _ABS_PREFIX.sub("", text.strip())
    match = _NEW_ID.fullmatch(candidate) or _OLD_ID.fullmatch(candidate)
    if match is None:
        raise InvalidRecord(f"unparseable arXiv id {text!r}")
    version = match.group(2)
    return match.group(1), int(version) if version else None


@dataclass(frozen=True, slots=True)
class Paper:
    """One arXiv paper at its latest known version. `categories` lists the primary first."""

    arxiv_id: str
    version: int
    title: str
    abstract: str
    authors: tuple[str, ...]
    primary_category: str
    categories: tuple[str, ...]
    published: datetime
    updated: datetime
    doi: str | None = None
    journal_ref: str | None = None
    comments: str | None = None
    # The source record this paper was normalized from (not part of its identity or content).
    raw: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    def __reduce__(self) -> tuple:
        # Pickles as a plain tuple: batches cross a process boundary (ingestion's reader) and
        # the dataclass default (per-field setattr) cost the writer more than its SQL.
        return (Paper, _paper_fields(self))

    @property
    def abs_url(self) -> str:
        return f"https://arxiv.org/abs/{self.arxiv_id}"

    @property
    def pdf_url(self) -> str:
        return f"https://arxiv.org/pdf/{self.arxiv_id}v{self.version}"

    def as_json(self) -> dict[str, Any]:
        """The normalized fields as JSON-ready values (ISO 8601 dates, lists), without `raw`."""
        return {
            "arxiv_id": self.arxiv_id,
            "version": self.version,
            "title": self.title,
            "abstract": self.abstract,
            "authors": list(self.authors),
            "primary_category": self.primary_category,
            "categories": list(self.categories),
            "published": self.published.isoformat(),
            "updated": self.updated.isoformat(),
            "doi": self.doi,
            "journal_ref": self.journal_ref,
            "comments": self.comments,
            "abs_url": self.abs_url,
            "pdf_url": self.pdf_url,
        }

    def content_hash(self) -> str:
        """A digest of every field: re-ingesting identical metadata is recognised as unchanged."""
        parts = [
            self.arxiv_id,
            str(self.version),
            self.title,
            self.abstract,
            "\x1e".join(self.authors),
            "\x1e".join(self.categories),
            self.published.isoformat(),
            self.updated.isoformat(),
            self.doi or "",
            self.journal_ref or "",
            self.comments or "",
        ]
        return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()


_paper_fields = attrgetter(*(f.name for f in fields(Paper)))


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A raw record that failed validation, kept with the reason so nothing is silently lost."""

    source: str
    reason: str
    raw: dict[str, Any]
    record_key: str | None = None


def clean_text(text: str | None) -> str:
    """Collapse every run of whitespace (newlines included) to one space; LaTeX is left as is."""
    return " ".join(text.split()) if text else ""


def _optional(text: str | None) -> str | None:
    return clean_text(text) or None


def _categories(primary: str | None, others: Iterable[str]) -> tuple[str, ...]:
    """Primary first. The primary must be an arXiv category; other tokens that are not (ACM or
    MSC class codes such as 'I.2.7' or '68T50' that some exports mix in) are left out."""
    ordered = [c for c in dict.fromkeys([primary or "", *others]) if c]
    if not ordered:
        raise InvalidRecord("missing category")
    if not _is_category(ordered[0]):
        raise InvalidRecord(f"unparseable primary category {ordered[0]!r}")
    return tuple(c for c in ordered if _is_category(c))


def _is_category(token: str) -> bool:
    return bool(_CATEGORY.fullmatch(token)) and (
        "." in token or "-" in token or token in _BARE_ARCHIVES
    )


def _author_names(names: Iterable[str | None]) -> tuple[str, ...]:
    cleaned = (clean_text(name)[:MAX_AUTHOR_NAME] for name in names)
    return tuple(name for name in cleaned if name)


def _required(raw: dict[str, Any], field: str, label: str) -> str:
    value = clean_text(raw.get(field))
    if not value:
        raise InvalidRecord(f"missing {label}")
    return value


def iso_datetime(text: str | None, label: str) -> datetime:
    if not text:
        raise InvalidRecord(f"missing {label} date")
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidRecord(f"unparseable {label} date {text!r}") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _version_datetime(text: str | None) -> datetime:
    """Kaggle writes 'Mon, 2 Apr 2007 19:18:42 GMT'; some exports write ISO 8601 instead."""
    try:
        value = parsedate_to_datetime(text or "")
    except (TypeError, ValueError):
        return iso_datetime(text, "version")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _category_from_old_id(arxiv_id: str) -> str | None:
    """Old-style ids carry their primary archive: 'hep-th/9901001' -> 'hep-th'."""
    archive, slash, _ = arxiv_id.partition("/")
    return archive if slash else None


def from_api_entry(raw: dict[str, Any]) -> Paper:
    """Normalize one Atom entry, as extracted by `sources.arxiv_api.parse_feed`."""
    if not raw.get("id"):
        raise InvalidRecord("missing id")
    arxiv_id, version = parse_arxiv_id(raw["id"])
    title = _required(raw, "title", "title")
    abstract = _required(raw, "summary", "abstract")
    categories = _categories(raw.get("primary_category"), raw.get("categories") or [])
    published = iso_datetime(raw.get("published"), "published")
    updated = iso_datetime(raw.get("updated") or raw.get("published"), "updated")
    return Paper(
        arxiv_id=arxiv_id,
        version=version or 1,
        title=title,
        abstract=abstract,
        authors=_author_names(raw.get("authors") or []),
        primary_category=categories[0],
        categories=categories,
        published=published,
        updated=max(updated, published),
        doi=_optional(raw.get("doi")),
        journal_ref=_optional(raw.get("journal_ref")),
        comments=_optional(raw.get("comment")),
        raw=raw,
    )


def split_authors(authors: str) -> tuple[str, ...]:
    """'A. Bc (Univ X), D. Ef and G. Hi' -> ('A. Bc', 'D. Ef', 'G. Hi')."""
    without_affiliations = _PARENTHESES.sub(" ", _PARENTHESES.sub(" ", authors))
    return _author_names(_AUTHOR_SEPARATOR.split(without_affiliations))


def _snapshot_authors(raw: dict[str, Any]) -> tuple[str, ...]:
    parsed = raw.get("authors_parsed")
    if parsed:
        # Kaggle's [last, first, suffix] triples, in author order.
        return _author_names(" ".join((first, last, suffix)) for last, first, suffix, *_ in parsed)
    return split_authors(raw.get("authors") or "")


def from_snapshot_record(raw: dict[str, Any]) -> Paper:
    """Normalize one line of the Kaggle arxiv-metadata-oai-snapshot JSON-lines format.

    Records without version history (e.g. daily listings) count as version 1, submitted on
    their `update_date`. An old-style id stands in for missing categories (it names the
    primary archive); a new-style id without categories is quarantined.
    """
    if not raw.get("id"):
        raise InvalidRecord("missing id")
    arxiv_id, _ = parse_arxiv_id(str(raw["id"]))
    title = _required(raw, "title", "title")
    abstract = _required(raw, "abstract", "abstract")
    listed = (raw.get("categories") or "").split()
    categories = _categories(None, listed or filter(None, [_category_from_old_id(arxiv_id)]))
    versions = raw.get("versions") or []
    if versions:
        published = _version_datetime(versions[0].get("created"))
        updated = _version_datetime(versions[-1].get("created"))
        version = len(versions)
    else:
        published = updated = iso_datetime(raw.get("update_date"), "update")
        version = 1
    return Paper(
        arxiv_id=arxiv_id,
        version=version,
        title=title,
        abstract=abstract,
        authors=_snapshot_authors(raw),
        primary_category=categories[0],
        categories=categories,
        published=published,
        updated=max(updated, published),
        doi=_optional(raw.get("doi")),
        journal_ref=_optional(raw.get("journal-ref")),
        comments=_optional(raw.get("comments")),
        raw=raw,
    )


NORMALIZERS = {"api": from_api_entry, "snapshot": from_snapshot_record}


def normalize(
    records: Iterable[dict[str, Any]], source: str
) -> tuple[list[Paper], list[Quarantined]]:
    """Normalize raw records of one source; invalid ones go to quarantine with their reason.

    Within the batch each paper appears once, at its latest version.
    """
    to_paper = NORMALIZERS[source]
    papers: dict[str, Paper] = {}
    quarantined: list[Quarantined] = []
    for raw in records:
        try:
            paper = to_paper(raw)
        except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
            # InvalidRecord names what is wrong; anything else is a record of the wrong shape.
            reason = str(exc) if isinstance(exc, InvalidRecord) else f"malformed record ({exc!r})"
            key = raw.get("id")
            quarantined.append(Quarantined(source, reason, raw, str(key) if key else None))
            continue
        known = papers.get(paper.arxiv_id)
        if known is None or (paper.version, paper.updated) >= (known.version, known.updated):
            papers[paper.arxiv_id] = paper
    return list(papers.values()), quarantined
