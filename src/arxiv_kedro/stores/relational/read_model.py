"""The REST API's read model: papers newest first with filters, one paper in one query, full-text
search (PostgreSQL tsvector; SQLite FTS5), category counts and statistics."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Date,
    Float,
    cast,
    exists,
    func,
    literal_column,
    select,
    text,
    tuple_,
)

from arxiv_kedro.stores.relational.engine import Database, in_list
from arxiv_kedro.stores.schema import (
    ingestion_runs,
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
        query_text: str,
        *,
        model_name: str,
        limit: int = 20,
        offset: int = 0,
        candidates: int = SEARCH_CANDIDATES,
    ) -> list[dict[str, Any]]:
        """Papers matching every word (and "quoted phrase") of `query_text` in their title or
        abstract, best first, each with a relevance `score` (higher is better; comparable within
        one query). PostgreSQL: `websearch_to_tsquery` over a weighted tsvector, `ts_rank_cd`;
        SQLite: FTS5 with BM25. Relevance ranks the `candidates` matches stored last (the
        highest ids, new papers): ranking reads every candidate, and a word in a third of the
        store would cost 200 ms.
        Raises ValueError when the text holds no word to search for.
        """
        with self.db.reads.connect() as conn:
            if conn.dialect.name == "postgresql":
                # The same quoted terms: websearch_to_tsquery then reads every word literally,
                # as FTS5 does (unquoted, `or` and a leading `-` would be operators).
                sql, params = _SEARCH_POSTGRESQL, {"q": fts5_query(query_text)}
            else:
                sql, params = _SEARCH_SQLITE, {"match": fts5_query(query_text)}
            query = text(sql).columns(*_LISTED, literal_column("score", Float))
            found = conn.execute(
                query, {**params, "candidates": candidates, "limit": limit, "offset": offset}
            )
            rows = [dict(row) for row in found.mappings()]
            return self._with_details(conn, rows, model_name)

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
_SEARCH_POSTGRESQL = f"""
WITH q AS MATERIALIZED (SELECT websearch_to_tsquery('english'::regconfig, :q) AS q),
candidates AS (
    SELECT papers.id FROM papers, q WHERE papers.search_vector @@ q.q
    ORDER BY papers.id DESC LIMIT :candidates)
SELECT {_COLUMNS}, ts_rank_cd(papers.search_vector, q.q) AS score
FROM candidates JOIN papers ON papers.id = candidates.id, q
ORDER BY score DESC, papers.published DESC, papers.id DESC LIMIT :limit OFFSET :offset
"""
# Ranked inside FTS5, which reads its rowids (paper ids) newest first without a sort.
_SEARCH_SQLITE = f"""
WITH candidates AS (
    SELECT rowid AS id, -bm25(papers_fts, 4.0, 1.0) AS score FROM papers_fts
    WHERE papers_fts MATCH :match ORDER BY rowid DESC LIMIT :candidates)
SELECT {_COLUMNS}, candidates.score AS score
FROM candidates JOIN papers ON papers.id = candidates.id
ORDER BY score DESC, papers.published DESC, papers.id DESC LIMIT :limit OFFSET :offset
"""
_WORD = re.compile(r"\w+")
_TERM = re.compile(r'"([^"]*)"|(\w+)')


def fts5_query(text_: str) -> str:
    """An FTS5 MATCH expression for a user's search text: every word and "quoted phrase" must
    match. Only word characters reach FTS5, so no input can be a query-syntax error or operator.
    """
    terms = []
    for phrase, word in _TERM.findall(text_):
        words = _WORD.findall(phrase or word)
        if words:
            terms.append('"' + " ".join(words) + '"')
    if not terms:
        raise ValueError("the search text holds no word to look for")
    return " ".join(terms)
