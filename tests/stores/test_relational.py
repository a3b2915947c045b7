"""The relational store on SQLite and PostgreSQL: idempotent upserts, quarantine, watermarks,
runs, the schema."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy.exc
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text

from arxiv_kedro.papers import Paper, Quarantined, normalize
from arxiv_kedro.sources import Checkpoint
from arxiv_kedro.stores import StoreError, schema
from arxiv_kedro.stores.relational.engine import Database
from arxiv_kedro.stores.relational.ingestion import Counts, IngestionStore, author_id
from arxiv_kedro.stores.relational.read_model import (
    MARK_END,
    MARK_START,
    QuerySyntaxError,
    ReadModel,
    SearchQuery,
    parse_query,
)
from tests.support.arxiv_server import load_corpus

PUBLISHED = datetime(2025, 3, 18, 9, 30, tzinfo=UTC)
T0 = datetime(2025, 3, 20, tzinfo=UTC)
# SQLite reports it through SQLAlchemy; PostgreSQL's COPY path raises the driver's own error.
DUPLICATE_KEY = (sqlalchemy.exc.IntegrityError, psycopg.errors.UniqueViolation)
ORPHANS = {
    "paper_authors without paper": "SELECT count(*) FROM paper_authors l "
    "LEFT JOIN papers p ON p.id = l.paper_id WHERE p.id IS NULL",
    "paper_authors without author": "SELECT count(*) FROM paper_authors l "
    "LEFT JOIN authors a ON a.id = l.author_id WHERE a.id IS NULL",
    "paper_categories without paper": "SELECT count(*) FROM paper_categories l "
    "LEFT JOIN papers p ON p.id = l.paper_id WHERE p.id IS NULL",
}


def make_paper(arxiv_id: str = "2503.00001", version: int = 1, **changes) -> Paper:
    fields = {
        "arxiv_id": arxiv_id,
        "version": version,
        "title": f"On {arxiv_id}",
        "abstract": "We study things.",
        "authors": ("Ada Lovelace", "Alan Turing"),
        "primary_category": "cs.CL",
        "categories": ("cs.CL", "cs.AI"),
        "published": PUBLISHED,
        "updated": PUBLISHED + timedelta(days=version - 1),
    }
    return Paper(**{**fields, **changes})


def write(store: Database, *papers: Paper, **kwargs) -> Counts:
    return IngestionStore(store).write_batch(list(papers), source="api", **kwargs)


def table_rows(store: Database, table) -> list[tuple]:
    with store.engine.connect() as conn:
        return sorted(conn.execute(select(table)).all(), key=repr)


def all_rows(store: Database) -> dict[str, list[tuple]]:
    tables = (schema.papers, schema.authors, schema.paper_authors, schema.paper_categories)
    return {table.name: table_rows(store, table) for table in tables}


def paper_row(store: Database, arxiv_id: str) -> dict:
    with store.engine.connect() as conn:
        query = select(schema.papers).where(schema.papers.c.arxiv_id == arxiv_id)
        return dict(conn.execute(query).one()._mapping)


def author_names(store: Database, paper_id: int) -> list[str]:
    pa, au = schema.paper_authors, schema.authors
    query = (
        select(au.c.name)
        .join(pa, pa.c.author_id == au.c.id)
        .where(pa.c.paper_id == paper_id)
        .order_by(pa.c.position)
    )
    with store.engine.connect() as conn:
        return list(conn.execute(query).scalars())


def categories(store: Database, paper_id: int) -> dict[str, bool]:
    pc = schema.paper_categories
    query = select(pc.c.category, pc.c.is_primary).where(pc.c.paper_id == paper_id)
    with store.engine.connect() as conn:
        return dict(conn.execute(query).all())


def run_row(store: Database, run_id: int) -> dict:
    runs = schema.ingestion_runs
    with store.engine.connect() as conn:
        return dict(conn.execute(select(runs).where(runs.c.id == run_id)).one()._mapping)


def orphan_counts(store: Database) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {name: conn.execute(text(sql)).scalar_one() for name, sql in ORPHANS.items()}


def test_first_write_counts_every_paper_as_new(store: Database) -> None:
    counts = write(store, make_paper("2503.00001"), make_paper("2503.00002"), fetched=2)

    assert counts == Counts(fetched=2, new=2)
    assert store.count() == 2
    assert store.count(schema.authors) == 2
    assert store.count(schema.paper_authors) == 4
    assert store.count(schema.paper_categories) == 4
    row = paper_row(store, "2503.00001")
    assert row["published"] == PUBLISHED
    assert row["abs_url"] == "https://arxiv.org/abs/2503.00001"
    assert row["pdf_url"] == "https://arxiv.org/pdf/2503.00001v1"
    assert row["first_seen_at"] == row["last_changed_at"]


def test_identical_rewrite_is_unchanged_and_touches_nothing(store: Database) -> None:
    papers = [make_paper("2503.00001"), make_paper("2503.00002", doi="10.1/x")]
    write(store, *papers)
    before = all_rows(store)

    counts = write(store, *papers)

    assert counts == Counts(unchanged=2)
    assert all_rows(store) == before


def test_newer_version_updates_the_row_in_place(store: Database) -> None:
    write(store, make_paper(version=1))
    old = paper_row(store, "2503.00001")
    newer = make_paper(
        version=2,
        title="A better title",
        authors=("Grace Hopper", "Ada Lovelace", "Edsger Dijkstra"),
        primary_category="cs.LG",
        categories=("cs.LG", "cs.CL", "stat.ML"),
    )

    counts = write(store, newer)

    assert counts == Counts(updated=1)
    new = paper_row(store, "2503.00001")
    assert store.count() == 1
    assert new["id"] == old["id"]
    assert (new["version"], new["title"], new["primary_category"]) == (2, "A better title", "cs.LG")
    assert new["pdf_url"].endswith("v2")
    assert new["first_seen_at"] == old["first_seen_at"]
    assert new["last_changed_at"] > old["last_changed_at"]
    assert author_names(store, new["id"]) == ["Grace Hopper", "Ada Lovelace", "Edsger Dijkstra"]
    assert categories(store, new["id"]) == {"cs.LG": True, "cs.CL": False, "stat.ML": False}
    assert store.count(schema.paper_authors) == 3
    assert store.count(schema.paper_categories) == 3


def test_same_version_with_changed_metadata_is_updated(store: Database) -> None:
    write(store, make_paper())

    counts = write(store, make_paper(doi="10.1234/abcd", journal_ref="J. Tests 1 (2025)"))

    assert counts == Counts(updated=1)
    row = paper_row(store, "2503.00001")
    assert (row["doi"], row["journal_ref"]) == ("10.1234/abcd", "J. Tests 1 (2025)")


def test_older_version_never_downgrades(store: Database) -> None:
    write(store, make_paper(version=3, title="Third version", authors=("Grace Hopper",)))
    before = all_rows(store)

    counts = write(store, make_paper(version=1, title="First version"))

    assert counts == Counts(unchanged=1)
    assert all_rows(store) == before
    assert paper_row(store, "2503.00001")["title"] == "Third version"


def test_quarantine_keeps_reason_and_raw_and_counts_repeats(store: Database) -> None:
    raw = {"id": "2503.00009", "title": None, "authors": ["Ünïcode Ñame"], "nested": {"a": [1, 2]}}
    item = Quarantined("snapshot", "missing title", raw, "2503.00009")
    first_run = IngestionStore(store).start_run("snapshot", "first.jsonl")
    counts = IngestionStore(store).write_batch([], [item], source="snapshot", run_id=first_run)
    IngestionStore(store).finish_run(first_run, "succeeded")
    second_run = IngestionStore(store).start_run("snapshot", "second.jsonl")

    IngestionStore(store).write_batch([], [item], source="snapshot", run_id=second_run)

    assert counts == Counts(quarantined=1)
    [row] = table_rows(store, schema.quarantine)
    assert (row.source, row.record_key, row.reason) == ("snapshot", "2503.00009", "missing title")
    assert row.raw == raw
    assert row.times_seen == 2
    assert row.run_id == second_run
    assert row.last_seen_at > row.first_seen_at


def test_watermarks_advance_only_forward_and_only_for_their_categories(store: Database) -> None:
    assert IngestionStore(store).watermarks() == {}
    write(store, make_paper(), checkpoint=Checkpoint(("cs.CL", "cs.AI"), T0))
    write(store, checkpoint=Checkpoint(("cs.CL",), T0 - timedelta(days=1)))
    write(store, checkpoint=Checkpoint(("cs.AI",), T0 + timedelta(hours=5)))

    assert IngestionStore(store).watermarks() == {"cs.CL": T0, "cs.AI": T0 + timedelta(hours=5)}
    assert all(mark.tzinfo is not None for mark in IngestionStore(store).watermarks().values())


def test_failed_batch_stores_nothing_and_keeps_the_watermark(store: Database) -> None:
    write(store, make_paper("2503.00001"), checkpoint=Checkpoint(("cs.CL",), T0))
    run_id = IngestionStore(store).start_run("api", "a window")
    before = all_rows(store)
    batch = [
        make_paper("2503.00002", authors=("Someone New",)),
        make_paper("2503.00003"),
        make_paper("2503.00003", title="The same id twice"),
    ]

    with pytest.raises(DUPLICATE_KEY):
        write(
            store,
            *batch,
            run_id=run_id,
            fetched=3,
            checkpoint=Checkpoint(("cs.CL",), T0 + timedelta(days=1)),
        )

    assert all_rows(store) == before
    assert IngestionStore(store).watermarks() == {"cs.CL": T0}
    assert run_row(store, run_id)["fetched"] == 0
    assert write(store, batch[0], run_id=run_id) == Counts(new=1)
    assert store.count() == 2


def test_failed_batch_does_not_advance_a_new_watermark(store: Database) -> None:
    duplicate = [make_paper("2503.00004"), make_paper("2503.00004", title="again")]
    later = T0 + timedelta(days=2)

    with pytest.raises(DUPLICATE_KEY):
        write(store, *duplicate, checkpoint=Checkpoint(("cs.CL", "cs.AI"), later))

    assert IngestionStore(store).watermarks() == {}
    assert store.count() == 0


def test_runs_record_counts_and_duration(store: Database) -> None:
    start, end = T0, T0 + timedelta(days=1)
    run_id = IngestionStore(store).start_run(
        "api", "(cat:cs.CL) AND submittedDate:[...]", start, end
    )
    write(store, make_paper("2503.00001"), make_paper("2503.00002"), run_id=run_id, fetched=3)
    rejected = [Quarantined("api", "missing id", {"title": "x"})]
    IngestionStore(store).write_batch(
        [make_paper("2503.00001")], rejected, source="api", run_id=run_id, fetched=2, filtered=1
    )
    time.sleep(0.05)

    row = IngestionStore(store).finish_run(run_id, "succeeded")

    assert row["status"] == "succeeded"
    assert (row["window_start"], row["window_end"]) == (start, end)
    counts = {name: row[name] for name in Counts().as_dict()}
    assert counts == Counts(fetched=5, new=2, unchanged=1, filtered=1, quarantined=1).as_dict()
    assert row["duration_seconds"] >= 0.05
    expected = (row["finished_at"] - row["started_at"]).total_seconds()
    assert row["duration_seconds"] == pytest.approx(expected, abs=1e-3)
    assert row["error"] is None


def test_a_run_left_running_becomes_interrupted(store: Database) -> None:
    killed = IngestionStore(store).start_run("api", "killed")
    finished = IngestionStore(store).start_run("api", "finished")
    IngestionStore(store).finish_run(finished, "failed", error="ArxivApiError: boom")

    IngestionStore(store).start_run("api", "next")

    assert run_row(store, killed)["status"] == "interrupted"
    assert "ended before the run finished" in run_row(store, killed)["error"]
    assert run_row(store, finished)["status"] == "failed"
    assert run_row(store, finished)["error"] == "ArxivApiError: boom"


def test_unreachable_postgres_is_a_store_error_with_the_password_masked() -> None:
    started = time.monotonic()

    with pytest.raises(StoreError) as raised:
        Database.open("postgresql://postgres:secret@127.0.0.1:1/x")

    assert time.monotonic() - started < 15
    message = str(raised.value)
    assert "postgres:***@127.0.0.1:1/x" in message
    assert "secret" not in message


def test_alembic_schema_matches_the_metadata(store: Database) -> None:
    with store.engine.connect() as conn:
        differences = compare_metadata(
            MigrationContext.configure(conn, opts={"include_object": schema.include_object}),
            schema.metadata,
        )

    assert differences == []


def test_opening_twice_migrates_once_and_keeps_data(
    store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="alembic"):
        first = Database.open(store_url)
        write(first, make_paper())
        migrations = [r.message for r in caplog.records if "Running upgrade" in r.message]
        caplog.clear()
        second = Database.open(store_url)

    assert len(migrations) == 5  # 0001 … 0005
    assert not [r for r in caplog.records if "Running upgrade" in r.message]
    with second.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [("0005",)]
    assert second.count() == 1
    first.engine.dispose()
    second.engine.dispose()


def test_no_orphan_links_after_mixed_writes(store: Database) -> None:
    write(store, *(make_paper(f"2503.0000{i}") for i in range(1, 6)))
    write(
        store,
        make_paper("2503.00001", version=2, authors=("Solo Author",), categories=("cs.CL",)),
        make_paper("2503.00002"),
        make_paper("2503.00003", doi="10.5/y"),
        make_paper("2503.00006", authors=()),
    )
    write(store, make_paper("2503.00001", version=1))

    assert orphan_counts(store) == dict.fromkeys(ORPHANS, 0)
    assert store.count() == 6
    assert store.count(schema.paper_authors) == 1 + 2 * 4
    assert store.count(schema.paper_categories) == 1 + 2 * 4 + 2
    with store.engine.connect() as conn:
        primaries = conn.execute(
            text(
                "SELECT paper_id, count(*) FROM paper_categories WHERE is_primary GROUP BY paper_id"
            )
        ).all()
    assert sorted(n for _, n in primaries) == [1] * 6


def test_author_id_is_stable_and_distinct(store: Database) -> None:
    names = ["Ada Lovelace", "Alan Turing", "ada lovelace", "Ada  Lovelace", "Zoë Ðurić"]

    ids = [author_id(name) for name in names]

    assert author_id("Ada Lovelace") == -7199426179279148892  # stored keys must never drift
    assert len(set(ids)) == len(names)
    assert all(-(2**63) <= i < 2**63 for i in ids)
    write(store, make_paper(authors=tuple(names)))
    stored = {name: key for key, name in table_rows(store, schema.authors)}
    assert stored == dict(zip(names, ids, strict=True))


@pytest.fixture(scope="module")
def daily_head(daily_snapshot: Path) -> tuple[list[Paper], list[Quarantined]]:
    return normalize(load_corpus(daily_snapshot, limit=6000), "snapshot")


@pytest.mark.slow
def test_bulk_write_of_6000_daily_records(
    store: Database, daily_head: tuple[list[Paper], list[Quarantined]]
) -> None:
    papers, quarantined = daily_head
    halves = [papers[:3000], papers[3000:]]

    first = [IngestionStore(store).write_batch(half, source="snapshot") for half in halves]
    again = [IngestionStore(store).write_batch(half, source="snapshot") for half in halves]

    assert len(papers) + len(quarantined) == 6000
    assert sum(c.new for c in first) == len(papers) == store.count()
    assert sum(c.unchanged for c in again) == len(papers)
    assert sum(c.new + c.updated for c in again) == 0
    assert store.count(schema.paper_authors) == sum(len(p.authors) for p in papers)
    assert orphan_counts(store) == dict.fromkeys(ORPHANS, 0)


def test_search_ranks_the_latest_stored_candidates_title_words_first(store: Database) -> None:
    in_abstract = make_paper("2503.00001", abstract="Quasars seen in the radio band.")
    in_title = make_paper("2503.00002", title="Quasars at high redshift")
    unrelated = make_paper("2503.00003", title="Graphs", abstract="Colourings of graphs.")
    newest = make_paper("2503.00004", abstract="A note on quasars.")
    write(store, in_abstract, in_title, unrelated)
    write(store, newest)

    def search(text: str, **options: Any) -> list[dict[str, Any]]:
        rows, total = ReadModel(store).search(parse_query(text), model_name="m", **options)
        assert total == min(len(rows), options.get("candidates", total)) or "offset" in options
        return rows

    found = search("quasar")
    assert [row["arxiv_id"] for row in found][:1] == ["2503.00002"]
    assert {row["arxiv_id"] for row in found} == {"2503.00001", "2503.00002", "2503.00004"}
    assert all(row["score"] > 0 for row in found)
    [snippet] = [row["snippet"] for row in found if row["arxiv_id"] == "2503.00001"]
    assert snippet.startswith(f"{MARK_START}Quasars{MARK_END} seen in the radio band")

    latest_two = search("quasars", candidates=2)
    assert {row["arxiv_id"] for row in latest_two} == {"2503.00002", "2503.00004"}
    assert [r["arxiv_id"] for r in search("quasars", offset=1, limit=1)] == [
        [row["arxiv_id"] for row in found][1]
    ]
    assert [row["arxiv_id"] for row in search("ti:quasars")] == ["2503.00002"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("?! --", SearchQuery()),
        ("*", SearchQuery()),
        ('dark "matter halo"', SearchQuery(((None, "dark"), (None, "matter halo")))),
        ("ti:galaxy abs:dark", SearchQuery((("title", "galaxy"), ("abstract", "dark")))),
        ('au:"le cun" AU: Hinton', SearchQuery(authors=("le cun", "Hinton"))),
        ("cat:cs.CL cat:astro-ph x", SearchQuery(((None, "x"),), categories=("cs.CL", "astro-ph"))),
        ("dark:matter", SearchQuery(((None, "dark"), (None, "matter")))),
        ("all:quasar", SearchQuery(((None, "quasar"),))),
    ],
)
def test_a_search_text_is_words_phrases_and_fields(text: str, expected: SearchQuery) -> None:
    assert parse_query(text) == expected


@pytest.mark.parametrize("text", ["co:42", "x jr:ApJ", "rn:CERN-1", "id:2501.00001"])
def test_a_field_the_search_lacks_is_an_error_naming_it(text: str) -> None:
    with pytest.raises(QuerySyntaxError, match=text.split(":")[0].split()[-1].lower() + ":"):
        parse_query(text)


@pytest.mark.postgres
def test_postgresql_plans_each_search_for_its_words(postgres_url: str) -> None:
    """A generic plan (prepared statements) for search walks every paper: custom plans only."""
    store = Database.open(postgres_url)
    try:
        for engine in (store.engine, store.reads):
            with engine.connect() as conn:
                assert conn.exec_driver_sql("SHOW plan_cache_mode").scalar() == "force_custom_plan"
    finally:
        store.close()
