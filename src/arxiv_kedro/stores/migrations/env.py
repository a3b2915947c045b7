"""Alembic environment: migrates the connection handed over by `relational.engine.migrate`, or the
database named by DATABASE_URL when run as `alembic upgrade head` from the project root."""

from __future__ import annotations

import os

from alembic import context

from arxiv_kedro.stores.relational.engine import make_engine
from arxiv_kedro.stores.schema import include_object, metadata

DEFAULT_URL = "sqlite:///data/03_primary/arxiv.db"


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        with make_engine(os.environ.get("DATABASE_URL", DEFAULT_URL)).begin() as connection:
            _run(connection)
    else:
        _run(connection)


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_object=include_object,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
