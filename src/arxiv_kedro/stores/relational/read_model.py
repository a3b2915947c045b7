"""The REST API's read model: papers newest first with filters, one paper in one query, full-text
search (PostgreSQL tsvector; SQLite FTS5), category counts and statistics."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Date,
    Float,
    bindparam,
    cast,
    exists,
    func,
    literal_column,
    select,
    text,
    tuple_,
)

from arxiv_kedro.stores.relational.engine import Database, in_list
from arxiv_kedro.stores.relational.ingestion import author_id
from arxiv_kedro.stores.schema import (
    UTCDateTime,
    authors,
    ingestion_runs,
    paper_authors,
    paper_categories,
    papers,
    predictions,
    quarantine,
)

SEARCH_CANDIDATES = 2_000  # relevance ranks the latest stored matches, at most this many


class ReadModel:
    """What the REST API reads; every read uses the autocommit pool (`Database.reads`)."""

    def __init__(self, db: Database):
        self.db = db

    def __repr__(self) -> str:
        return f"ReadModel({self.db!r})"

    def list_papers(
        self,
        *,
        model_name: str,
        category: str | None = None,
        published_from: datetime | None = None,
        published_before: datetime | None = None,
        after: tuple[datetime, int] | None = None,
        limit: int = 20,
    ) -> list[dict[str, Any]]:
        """Papers newest first (by publication, then id), with authors, categories and the
        model's top prediction. Keyset-paged: pass the last row's `(published, id)` as `after`.
        """
        query = select(*_LISTED).order_by(papers.c.published.desc(), papers.c.id.desc())
        if category is not None:
            query = query.where(
                exists().where(
                    paper_categories.c.paper_id == papers.c.id,
                    paper_categories.c.category == category,
                )
            )
        if published_from is not None:
            query = query.where(papers.c.published >= published_from)
        if published_before is not None:
            query = query.where(papers.c.published < published_before)
        if after is not None:
            query = query.where(tuple_(papers.c.published, papers.c.id) < tuple_(*after))
        with self.db.reads.connect() as conn:
            rows = [dict(row) for row in conn.execute(query.limit(limit)).mappings()]
            return self._with_details(conn, rows, model_name)

    def get_paper(self, arxiv_id: str, *, model_name: str) -> dict[str, Any] | None:
        """One paper by versionless id, every column plus authors, categories, prediction —
        in one query: the API's hottest read (one round trip instead of four)."""
        with self.db.reads.connect() as conn:
            dialect = conn.dialect.name
            row = conn.execute(_GET_PAPER[dialect], {"arxiv_id": arxiv_id, "model": model_name})
            found = row.mappings().first()
        if found is None:
            return None
        paper = {k: found[k] for k in (*_LISTED_NAMES, *_DETAIL_NAMES)}
        for name in ("authors", "categories"):
            paper[name] = json.loads(found[name]) if dialect == "sqlite" else found[name]
        paper["prediction"] = (
            None
            if found["model_version"] is None
            else {"paper_id": found["id"], **{c.name: found[c.name] for c in _PREDICTED}}
        )
        return paper

    def search(
        self,
        query: SearchQuery,
        *,
        model_name: str,
        category: str | None = None,
        published_from: datetime | None = None,
        published_before: datetime | None = None,
        newest: bool = False,
        limit: int = 20,
        offset: int = 0,
        candidates: int = SEARCH_CANDIDATES,
    ) -> tuple[list[dict[str, Any]], int]:
        """Papers matching `query` (see `parse_query`) and the filters, best first (`newest`:
        newest first), each with a relevance `score` (higher is better; comparable within one
        query; 0 without words) and a `snippet` of its abstract (matched words between
        `MARK_START` and `MARK_END`; None without words); and the number of matches, at most
        `candidates`. PostgreSQL: `websearch_to_tsquery` over a weighted tsvector,
        `ts_rank_cd`; SQLite: FTS5 with BM25. Relevance ranks the `candidates` matches stored
        last (the highest ids, new papers): ranking reads every candidate, and a word in a
        third of the store would cost 200 ms.
        """
        conditions, params = [], {"candidates": candidates, "limit": limit, "offset": offset}
        categories = [*query.categories, *([category] if category else [])]
        for i, name in enumerate(categories):
            conditions.append(
                "EXISTS (SELECT 1 FROM paper_categories c WHERE c.paper_id = papers.id "
                f"AND (c.category = :cat{i} OR c.category LIKE :archive{i}))"
            )
            params |= {f"cat{i}": name, f"archive{i}": f"{name}.%"}
        moments = []
        if published_from is not None:
            conditions.append("papers.published >= :published_from")
            moments.append(bindparam("published_from", published_from, type_=UTCDateTime))
        if published_before is not None:
            conditions.append("papers.published < :published_before")
            moments.append(bindparam("published_before", published_before, type_=UTCDateTime))
        order = "papers.published DESC, papers.id DESC"
        with self.db.reads.connect() as conn:
            postgresql = conn.dialect.name == "postgresql"
            # The authors a name matches, first: in one statement, planners may scan every
            # author once per paper (seconds at 72k papers).
            for i, name in enumerate(query.authors):
                like = func.lower(authors.c.name).like(_like(name), escape="\\")
                ids = _author_ids(conn, like)
                if not ids:
                    return [], 0
                listed = (
                    f"= ANY(:author{i})"
                    if postgresql
                    else f"IN (SELECT value FROM json_each(:author{i}))"
                )
                linked = f"SELECT l.paper_id FROM paper_authors l WHERE l.author_id {listed}"
                conditions.append(f"papers.id IN ({linked})")
                params[f"author{i}"] = ids if postgresql else json.dumps(ids)
            if not query.terms:
                matched = "SELECT papers.id, 0.0 AS score FROM papers"
            elif postgresql:
                # The same quoted terms: websearch_to_tsquery then reads every word literally,
                # as FTS5 does (unquoted, `or` and a leading `-` would be operators).
                params["q"] = fts5_query(query.terms)
                for i, (column, phrase) in enumerate(query.terms):
                    if column is not None:  # the index finds all the words, this their column
                        conditions.append(
                            f"to_tsvector('english'::regconfig, papers.{column}) "
                            f"@@ phraseto_tsquery('english'::regconfig, :term{i})"
                        )
                        params[f"term{i}"] = phrase
                matched = (
                    "SELECT papers.id, ts_rank_cd(papers.search_vector, q.q) AS score "
                    "FROM papers, q WHERE papers.search_vector @@ q.q"
                )
            else:
                params["match"] = fts5_query(query.terms, columns=True)
                matched = (
                    "SELECT papers.id, -bm25(papers_fts, 4.0, 1.0) AS score FROM papers_fts "
                    "JOIN papers ON papers.id = papers_fts.rowid WHERE papers_fts MATCH :match"
                )
            where = " AND ".join(conditions)
            if where:
                matched += (" AND " if " WHERE " in matched else " WHERE ") + where
            prefix = _QUERY_CTE if postgresql and query.terms else "WITH "
            ctes = f"{prefix}candidates AS ({matched} ORDER BY papers.id DESC LIMIT :candidates)"
            ranked = order if newest else f"score DESC, {order}"
            page = text(
                f"{ctes} SELECT {_COLUMNS}, candidates.score AS score FROM candidates "
                f"JOIN papers ON papers.id = candidates.id ORDER BY {ranked} "
                "LIMIT :limit OFFSET :offset"
            ).bindparams(*moments)
            found = conn.execute(page.columns(*_LISTED, literal_column("score", Float)), params)
            rows = [dict(row) for row in found.mappings()]
            count = text(f"{ctes} SELECT count(*) FROM candidates").bindparams(*moments)
            total = conn.execute(count, params).scalar_one()
            snippets = self._snippets(conn, query, [row["id"] for row in rows])
            for row in rows:
                row["snippet"] = snippets.get(row["id"])
            return self._with_details(conn, rows, model_name), total

    def _snippets(self, conn: Connection, query: SearchQuery, ids: list[int]) -> dict[int, str]:
        """The best part of each paper's abstract, the query's words marked."""
        if not ids or not query.terms:
            return {}
        condition, param = in_list(conn, "papers.id", ids)
        if conn.dialect.name == "postgresql":
            sql = (
                "SELECT papers.id, ts_headline('english'::regconfig, papers.abstract, "
                "websearch_to_tsquery('english'::regconfig, %s), %s) FROM papers "
                f"WHERE {condition}"
            )
            options = (
                f"StartSel={MARK_START}, StopSel={MARK_END}, MaxWords=40, MinWords=20, "
                'MaxFragments=2, FragmentDelimiter=" … "'
            )
            # any of the terms: a fragment need not hold all of them (some may be in the title)
            any_term = " or ".join(f'"{words}"' for _, words in query.terms)
            found = conn.exec_driver_sql(sql, (any_term, options, param))
        else:
            sql = (
                "SELECT papers.id, snippet(papers_fts, 1, ?, ?, '…', 40) FROM papers_fts "
                f"JOIN papers ON papers.id = papers_fts.rowid WHERE papers_fts MATCH ? "
                f"AND {condition}"
            )
            match = fts5_query(query.terms, columns=True)
            found = conn.exec_driver_sql(sql, (MARK_START, MARK_END, match, param))
        return dict(found.all())

    def author_papers(
        self, name: str, *, model_name: str, limit: int = 20, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        """The papers of the author named exactly `name` (any case), newest first, and how many
        there are."""
        with self.db.reads.connect() as conn:
            # The exact name by its key (indexed), else any case (a scan of the authors).
            ids = _author_ids(conn, authors.c.id == author_id(name)) or _author_ids(
                conn, func.lower(authors.c.name) == name.lower()
            )
            linked = select(paper_authors.c.paper_id).where(paper_authors.c.author_id.in_(ids))
            query = (
                select(*_LISTED)
                .where(papers.c.id.in_(linked))
                .order_by(papers.c.published.desc(), papers.c.id.desc())
            )
            rows = [dict(row) for row in conn.execute(query.limit(limit).offset(offset)).mappings()]
            total = conn.execute(
                select(func.count()).select_from(papers).where(papers.c.id.in_(linked))
            ).scalar_one()
            return self._with_details(conn, rows, model_name), total

    def papers(self, ids: list[int], *, model_name: str) -> list[dict[str, Any]]:
        """The papers with these ids, in that order, as `list_papers` answers them."""
        with self.db.reads.connect() as conn:
            found = conn.execute(select(*_LISTED).where(papers.c.id.in_(ids))).mappings()
            rows = {row["id"]: dict(row) for row in found}
            return self._with_details(conn, [rows[i] for i in ids if i in rows], model_name)

    def abstracts(self, ids: list[int]) -> dict[int, str]:
        """The abstract of each paper id."""
        with self.db.reads.connect() as conn:
            query = select(papers.c.id, papers.c.abstract).where(papers.c.id.in_(ids))
            return dict(conn.execute(query).all())

    def announced(
        self, category: str, *, model_name: str, day: datetime | None = None, limit: int = 2_000
    ) -> tuple[datetime | None, list[dict[str, Any]]]:
        """The papers of `category` (primary or cross-listed) announced on `day` (UTC midnight;
        default: the last day on which one was), newest first: published that day, or updated
        that day to a version above 1; and that day (None when the category has no paper)."""
        in_category = exists().where(
            paper_categories.c.paper_id == papers.c.id, paper_categories.c.category == category
        )
        with self.db.reads.connect() as conn:
            if day is None:
                last = conn.execute(
                    select(func.max(papers.c.published), func.max(papers.c.updated)).where(
                        in_category
                    )
                ).one()
                if last[0] is None:
                    return None, []
                day = max(last).replace(hour=0, minute=0, second=0, microsecond=0)
            after = day + timedelta(days=1)
            query = (
                select(*_LISTED)
                .where(
                    in_category,
                    ((papers.c.published >= day) & (papers.c.published < after))
                    | (
                        (papers.c.updated >= day)
                        & (papers.c.updated < after)
                        & (papers.c.version > 1)
                    ),
                )
                .order_by(papers.c.published.desc(), papers.c.id.desc())
                .limit(limit)
            )
            rows = [dict(row) for row in conn.execute(query).mappings()]
            return day, self._with_details(conn, rows, model_name)

    def texts(self, after: int = 0) -> list[tuple[int, str, str, str, datetime]]:
        """(id, arxiv_id, title, abstract, published) of every paper with an id above `after`,
        by id."""
        query = select(
            papers.c.id, papers.c.arxiv_id, papers.c.title, papers.c.abstract, papers.c.published
        ).where(papers.c.id > after)
        with self.db.reads.connect() as conn:
            return [tuple(row) for row in conn.execute(query.order_by(papers.c.id))]

    def fingerprint(self, through: int | None = None) -> tuple:
        """Changes when a paper is added, changed or removed; with `through`, only when one with
        an id up to it is (new papers get higher ids, so an unchanged prefix means appends)."""
        query = select(func.count(), func.max(papers.c.id), func.max(papers.c.last_changed_at))
        if through is not None:
            query = query.where(papers.c.id <= through)
        with self.db.reads.connect() as conn:
            return tuple(conn.execute(query).one())

    def category_counts(self) -> list[tuple[str, int, int]]:
        """(category, papers with it as primary, papers cross-listed in it), most papers first."""
        primary = select(papers.c.primary_category, func.count()).group_by(
            papers.c.primary_category
        )
        cross = (
            select(paper_categories.c.category, func.count())
            .where(paper_categories.c.is_primary.is_(False))
            .group_by(paper_categories.c.category)
        )
        with self.db.reads.connect() as conn:
            counts = {c: [n, 0] for c, n in conn.execute(primary)}
            for category, n in conn.execute(cross):
                counts.setdefault(category, [0, 0])[1] = n
        return sorted(
            ((c, p, x) for c, (p, x) in counts.items()),
            key=lambda item: (-item[1], -item[2], item[0]),
        )

    def stats(self, *, model_name: str, days: int = 90) -> dict[str, Any]:
        """Totals, the latest ingestion run and papers per publication day and primary category
        over the `days` up to the newest paper."""
        with self.db.reads.connect() as conn:
            latest = conn.execute(select(func.max(papers.c.published))).scalar_one()
            per_day: list[dict[str, Any]] = []
            if latest is not None:
                day = (
                    func.date(papers.c.published)
                    if conn.dialect.name == "sqlite"
                    else cast(func.timezone("UTC", papers.c.published), Date)
                )
                since = latest - timedelta(days=days)
                query = (
                    select(day.label("day"), papers.c.primary_category, func.count())
                    .where(papers.c.published > since)
                    .group_by(day, papers.c.primary_category)
                    .order_by(day, papers.c.primary_category)
                )
                per_day = [
                    {"day": str(d), "category": c, "papers": n} for d, c, n in conn.execute(query)
                ]
            last_run = (
                conn.execute(
                    select(ingestion_runs)
                    .where(ingestion_runs.c.finished_at.is_not(None))
                    .order_by(ingestion_runs.c.finished_at.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
            return {
                "papers": conn.execute(select(func.count()).select_from(papers)).scalar_one(),
                "predictions": conn.execute(
                    select(func.count())
                    .select_from(predictions)
                    .where(predictions.c.model_name == model_name)
                ).scalar_one(),
                "quarantined": conn.execute(
                    select(func.count()).select_from(quarantine)
                ).scalar_one(),
                "latest_published": latest,
                "last_ingestion": None if last_run is None else dict(last_run),
                "papers_per_day": per_day,
            }

    def _with_details(
        self, conn: Connection, rows: list[dict[str, Any]], model_name: str
    ) -> list[dict[str, Any]]:
        """Each row with its `authors` (in order), `categories` (primary first) and
        `prediction` (the model's stored answer, or None)."""
        if not rows:
            return rows
        ids = [row["id"] for row in rows]
        condition, param = in_list(conn, "l.paper_id", ids)
        authors_of: dict[int, list[str]] = {i: [] for i in ids}
        for paper_id, name in conn.exec_driver_sql(
            "SELECT l.paper_id, a.name FROM paper_authors l JOIN authors a ON a.id = l.author_id "
            f"WHERE {condition} ORDER BY l.paper_id, l.position",
            (param,),
        ):
            authors_of[paper_id].append(name)
        categories_of: dict[int, list[str]] = {i: [] for i in ids}
        for paper_id, category in conn.exec_driver_sql(
            f"SELECT l.paper_id, l.category FROM paper_categories l WHERE {condition} "
            "ORDER BY l.paper_id, l.is_primary DESC, l.category",
            (param,),
        ):
            categories_of[paper_id].append(category)
        found = conn.execute(
            select(predictions).where(
                predictions.c.model_name == model_name, predictions.c.paper_id.in_(ids)
            )
        )
        predicted = {row["paper_id"]: dict(row) for row in found.mappings()}
        for row in rows:
            row["authors"] = authors_of[row["id"]]
            row["categories"] = categories_of[row["id"]]
            row["prediction"] = predicted.get(row["id"])
        return rows


_LISTED = (
    papers.c.id, papers.c.arxiv_id, papers.c.version, papers.c.title, papers.c.primary_category,
    papers.c.published, papers.c.updated, papers.c.abs_url, papers.c.pdf_url,
    papers.c.content_hash,
)  # fmt: skip
_DETAIL = (papers.c.abstract, papers.c.doi, papers.c.journal_ref, papers.c.comments)
_LISTED_NAMES = [c.name for c in _LISTED]
_DETAIL_NAMES = [c.name for c in _DETAIL]
_PREDICTED = [c for c in predictions.c if c.name not in ("paper_id", "content_hash")]
_AUTHORS = (
    "SELECT a.name FROM paper_authors l JOIN authors a ON a.id = l.author_id "
    "WHERE l.paper_id = papers.id ORDER BY l.position"
)
_CATEGORIES = (
    "SELECT c.category AS name FROM paper_categories c WHERE c.paper_id = papers.id "
    "ORDER BY c.is_primary DESC, c.category"
)
_GET_PAPER_SQL = """
SELECT {columns}, {prediction}, {authors} AS authors, {categories} AS categories
FROM papers LEFT JOIN predictions ON predictions.paper_id = papers.id
    AND predictions.model_name = :model
WHERE papers.arxiv_id = :arxiv_id
"""
_GET_PAPER = {
    dialect: text(
        _GET_PAPER_SQL.format(
            columns=", ".join(f"papers.{c.name}" for c in (*_LISTED, *_DETAIL)),
            prediction=", ".join(f"predictions.{c.name}" for c in _PREDICTED),
            authors=aggregate.format(_AUTHORS),
            categories=aggregate.format(_CATEGORIES),
        )
    ).columns(*_LISTED, *_DETAIL, *_PREDICTED)
    for dialect, aggregate in (
        ("postgresql", "ARRAY({})"),
        ("sqlite", "(SELECT json_group_array(name) FROM ({}))"),
    )
}
_COLUMNS = ", ".join(f"papers.{c.name}" for c in _LISTED)
# The query in a MATERIALIZED CTE hides its words from the planner, which then reads the GIN
# index: with them in sight, it walks the primary key backwards for words it thinks common,
# which takes 100 ms when their papers are old (measured on the 72k daily snapshot).
_QUERY_CTE = "WITH q AS MATERIALIZED (SELECT websearch_to_tsquery('english'::regconfig, :q) AS q), "
# Matched words in snippets: private-use characters, which no abstract holds.
MARK_START, MARK_END = "\ue000", "\ue001"
_WORD = re.compile(r"\w+")
_TERM = re.compile(r'(?:\b([a-zA-Z]+):\s*)?(?:"([^"]*)"|(\S*))')
FIELDS = {"ti": "title", "abs": "abstract", "au": "authors", "cat": "categories", "all": None}
UNSUPPORTED = {"co": "comments", "jr": "journal reference", "rn": "report number", "id": "id"}


def _author_ids(conn: Connection, condition: Any) -> list[int]:
    return list(conn.execute(select(authors.c.id).where(condition)).scalars())


def _like(name: str) -> str:
    """A LIKE pattern: the name's words in this order, anywhere in a name."""
    escaped = re.sub(r"([\\%_])", r"\\\1", name.lower())
    return "%" + "%".join(escaped.split()) + "%"


class QuerySyntaxError(ValueError):
    """A search text that cannot mean anything: the message says what to type instead."""


@dataclass(frozen=True)
class SearchQuery:
    """What a user's search text asks for: `terms` (column or None for title and abstract,
    words) that must all match, author names (their words in order in one author's name),
    categories (or archives)."""

    terms: tuple[tuple[str | None, str], ...] = ()
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.terms or self.authors)


def parse_query(text_: str) -> SearchQuery:
    """Words and "quoted phrases", each optionally in a field as on arXiv: `ti:` (title),
    `abs:` (abstract), `au:` (an author's name holds it), `cat:` (a category such as cs.CL or
    an archive such as cs), `all:`. Words are only ever words: nothing else is an operator.
    Raises QuerySyntaxError for a field arXiv has and this search does not."""
    terms: list[tuple[str | None, str]] = []
    found_authors: list[str] = []
    categories: list[str] = []
    for field_, phrase, bare in _TERM.findall(text_):
        value = phrase or bare
        field_ = field_.lower()
        if field_ in UNSUPPORTED:
            raise QuerySyntaxError(
                f"{field_}: ({UNSUPPORTED[field_]}) is not searchable here: use ti: (title), "
                "abs: (abstract), au: (author), cat: (category, e.g. cat:cs.CL) or plain words"
            )
        if field_ and field_ not in FIELDS:  # e.g. "dark:matter": words, not a field
            terms.append((None, field_))
            field_ = ""
        column = FIELDS.get(field_)
        if column == "categories":
            categories += re.findall(r"[\w.-]+", value)
            continue
        words = _WORD.findall(value)
        if not words:
            continue
        if column == "authors":
            found_authors.append(" ".join(words))
        else:
            terms.append((column, " ".join(words)))
    return SearchQuery(tuple(terms), tuple(found_authors), tuple(categories))


def fts5_query(terms: tuple[tuple[str | None, str], ...], *, columns: bool = False) -> str:
    """Quoted phrases that must all match (FTS5 MATCH syntax, or websearch_to_tsquery's):
    only word characters are quoted, so no input can be a syntax error or operator. With
    `columns`, a phrase of one column is matched in that column (FTS5 only)."""
    return " ".join(
        f'{column} : "{words}"' if columns and column else f'"{words}"' for column, words in terms
    )
