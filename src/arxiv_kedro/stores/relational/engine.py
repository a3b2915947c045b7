"""Connections, migrations and the bulk statements every writer shares, on SQLite or PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, Table, create_engine, event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from arxiv_kedro.stores import StoreError, masked
from arxiv_kedro.stores.schema import papers

_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
_MIGRATION_LOCK = 0x6172786976  # any constant: the advisory lock every migrating process takes
_SHARED: dict[str, Database] = {}
_SHARED_LOCK = threading.Lock()


def make_engine(url: str) -> Engine:
    """An engine for SQLite or PostgreSQL, with bounded connect time and sane SQLite pragmas."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")  # the driver we ship
    backend = parsed.get_backend_name()
    if backend not in _INSERTS:
        raise StoreError(f"unsupported database {masked(url)}: use sqlite:/// or postgresql://")
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(parsed, pool_pre_ping=True, connect_args={"connect_timeout": 10})
    event.listen(engine, "connect", _custom_plans)
    return engine


def read_only(engine: Engine) -> Engine:
    """The engine (same pool) for reads: on PostgreSQL in autocommit, without the BEGIN and
    ROLLBACK round trips around each (a third of an API read's time); SQLite sends neither."""
    if engine.dialect.name != "postgresql":
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def upsertable_insert(engine: Engine, table: Table) -> Any:
    """`INSERT` for the engine's dialect, with `on_conflict_do_update/nothing`."""
    return _INSERTS[engine.dialect.name](table)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _custom_plans(dbapi_connection: Any, _record: Any) -> None:
    """psycopg prepares a statement run 5 times, and PostgreSQL's generic plan for the search
    (words unknown) walks every paper: 220 ms a query instead of 5 to 50. (A setting, not the
    URL's `options`, which may already set e.g. the search_path.)"""
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = force_custom_plan")
    dbapi_connection.commit()


def migrate(engine: Engine) -> None:
    """Bring the schema to the latest Alembic revision.

    On PostgreSQL, processes starting together (pipelines, API workers) migrate one at a time.
    """
    config = Config()
    config.set_main_option("script_location", str(files("arxiv_kedro.stores") / "migrations"))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class Database:
    """One relational database: a transactional engine, the same pool for reads, the schema at
    the latest migration. `Database.shared(url)` gives every dataset of a process one pool."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.reads = read_only(self.engine)

    def __repr__(self) -> str:
        return f"Database({masked(self.url)!r})"

    @classmethod
    def open(cls, url: str) -> Database:
        """Connect and migrate; an unreachable database is a `StoreError` naming it."""
        database = cls(url)
        try:
            migrate(database.engine)
        except OperationalError as exc:
            raise StoreError(
                f"cannot use the relational store at {masked(url)}: {exc.orig or exc}"
            ) from exc
        return database

    @classmethod
    def shared(cls, url: str) -> Database:
        """This process's migrated database for `url`, opened on first use: the datasets of one
        run share its pool and migrate once."""
        with _SHARED_LOCK:
            if url not in _SHARED:
                _SHARED[url] = cls.open(url)
            return _SHARED[url]

    @staticmethod
    def close_shared() -> None:
        """Dispose of every shared database's pool (tests, or a process that is done)."""
        with _SHARED_LOCK:
            for database in _SHARED.values():
                database.close()
            _SHARED.clear()

    def close(self) -> None:
        self.engine.dispose()

    def count(self, table: Table = papers) -> int:
        with self.reads.connect() as conn:
            return conn.execute(select(func.count()).select_from(table)).scalar_one()


# The bulk statements below talk to the driver directly: per-row SQLAlchemy parameter processing
# cost more than the database itself (a 3x difference on the 72k-paper backfill).


def in_list(conn: Connection, column: str, values: Sequence[Any]) -> tuple[str, Any]:
    """`column IN <one parameter holding every value>` for SQLite and PostgreSQL."""
    if conn.dialect.name == "sqlite":
        return f"{column} IN (SELECT value FROM json_each(?))", json.dumps(list(values))
    return f"{column} = ANY(%s)", list(values)


def rows_where_in(
    conn: Connection, table: Table, columns: Sequence[str], keys: Sequence[Any]
) -> list[tuple]:
    """The `columns` of the rows whose first column is in `keys`, as Python values."""
    if not keys:
        return []
    condition, param = in_list(conn, columns[0], keys)
    sql = f"SELECT {', '.join(columns)} FROM {table.name} WHERE {condition}"
    dialect = conn.dialect
    processors = [
        table.c[c].type.dialect_impl(dialect).result_processor(dialect, None) for c in columns
    ]
    rows = conn.exec_driver_sql(sql, (param,)).all()
    if not any(processors):
        return [tuple(row) for row in rows]
    return [tuple(f(v) if f else v for f, v in zip(processors, row, strict=True)) for row in rows]


def delete_where_in(conn: Connection, table: Table, column: str, keys: Sequence[Any]) -> None:
    condition, param = in_list(conn, column, keys)
    conn.exec_driver_sql(f"DELETE FROM {table.name} WHERE {condition}", (param,))


def bulk_insert(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: list[tuple],
    conflict: Sequence[str] = (),
    update: Sequence[str] = (),
) -> None:
    """INSERT rows; on a `conflict` key, update the `update` columns from the incoming row, or
    keep the existing row when `update` is empty.

    PostgreSQL gets the rows through COPY (into a staging table when conflicts are possible),
    SQLite through executemany.
    """
    if not rows:
        return
    quote = conn.dialect.identifier_preparer.quote
    names = ", ".join(map(quote, columns))
    on_conflict = ""
    if conflict:
        sets = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in update)
        on_conflict = f" ON CONFLICT ({', '.join(conflict)}) " + (
            f"DO UPDATE SET {sets}" if update else "DO NOTHING"
        )
    if conn.dialect.name == "postgresql":
        with conn.connection.driver_connection.cursor() as cursor:
            target = table.name
            if conflict:
                target = f"staging_{table.name}"
                cursor.execute(
                    f"CREATE TEMP TABLE IF NOT EXISTS {target} ON COMMIT DROP AS "
                    f"SELECT {names} FROM {table.name} WITH NO DATA"
                )
            with cursor.copy(f"COPY {target} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            if conflict:
                cursor.execute(
                    f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {target}"
                    f"{on_conflict}; TRUNCATE {target}"
                )
        return
    for i, column in enumerate(columns):
        process = table.c[column].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        if process is not None:  # datetimes and booleans
            rows = [(*row[:i], process(row[i]), *row[i + 1 :]) for row in rows]
    placeholders = ", ".join("?" * len(columns))
    conn.exec_driver_sql(
        f"INSERT INTO {table.name} ({names}) VALUES ({placeholders}){on_conflict}", rows
    )
