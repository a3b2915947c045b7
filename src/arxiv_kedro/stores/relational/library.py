"""Users' libraries: each user (an API key) tags papers; the REST API reads and writes them."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from arxiv_kedro.stores.relational.engine import Database
from arxiv_kedro.stores.schema import library_tags, papers

_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


class Library:
    def __init__(self, db: Database):
        self.db = db

    def __repr__(self) -> str:
        return f"Library({self.db!r})"

    def tag(self, user: str, tag: str, arxiv_id: str) -> bool:
        """Tag the paper (again: nothing changes); False when there is no such paper."""
        with self.db.engine.begin() as conn:
            paper_id = conn.execute(
                select(papers.c.id).where(papers.c.arxiv_id == arxiv_id)
            ).scalar_one_or_none()
            if paper_id is None:
                return False
            insert = _INSERT[conn.dialect.name](library_tags).values(
                user_id=user, tag=tag, paper_id=paper_id, tagged_at=datetime.now(UTC)
            )
            conn.execute(insert.on_conflict_do_nothing())
        return True

    def untag(self, user: str, tag: str, arxiv_id: str) -> bool:
        """False when the paper did not have the tag."""
        paper = select(papers.c.id).where(papers.c.arxiv_id == arxiv_id).scalar_subquery()
        with self.db.engine.begin() as conn:
            removed = conn.execute(
                delete(library_tags).where(
                    library_tags.c.user_id == user,
                    library_tags.c.tag == tag,
                    library_tags.c.paper_id == paper,
                )
            )
        return removed.rowcount > 0

    def tags(self, user: str) -> dict[str, list[int]]:
        """Each tag of the user, alphabetically, with its paper ids, the latest tagged first."""
        query = (
            select(library_tags.c.tag, library_tags.c.paper_id)
            .where(library_tags.c.user_id == user)
            .order_by(library_tags.c.tag, library_tags.c.tagged_at.desc(), library_tags.c.paper_id)
        )
        found: dict[str, list[int]] = {}
        with self.db.reads.connect() as conn:
            for tag, paper_id in conn.execute(query):
                found.setdefault(tag, []).append(paper_id)
        return found
