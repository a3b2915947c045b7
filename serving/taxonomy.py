"""arXiv's category names and groups, read from arXiv's browse taxonomy file (`ARXIV_TAXONOMY`,
the `arXiv_groups` / `arXiv_archives` / `arXiv_categories` JSON of arxiv-browse), with the current
names from arxiv-base's category definitions (`ARXIV_CATEGORY_NAMES`, a list of
`{"category", "name"}`) where given: browse's file keeps old names ("Learning" for cs.LG)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Category:
    name: str
    group: str


class Taxonomy:
    """Category id -> official name and group; unknown ids answer with the id itself."""

    def __init__(self, categories: dict[str, Category]):
        self.categories = categories

    @classmethod
    def load(cls, path: Path | None, names: Path | None = None) -> Taxonomy:
        if path is None or not path.exists():
            logger.warning(
                "No arXiv taxonomy file (ARXIV_TAXONOMY=%s): categories are shown by their ids; "
                "point it at arxiv-browse's taxonomy JSON for their names",
                path or "",
            )
            return cls({})
        try:
            raw = json.loads(path.read_text())
            groups = {g["group_id"]: g["group_name"] for g in raw["arXiv_groups"]}
            group_of = {
                a["archive_id"]: groups.get(a["in_group"], "") for a in raw["arXiv_archives"]
            }
            categories = {}
            for c in raw["arXiv_categories"]:
                archive, subject = c["archive"], c.get("subject_class") or ""
                category = f"{archive}.{subject}" if subject else archive
                categories[category] = Category(c["category_name"], group_of.get(archive, ""))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"cannot read the arXiv taxonomy at {path}: {exc}") from exc
        if names is not None and names.exists():
            try:
                current = {c["category"]: c["name"] for c in json.loads(names.read_text())}
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"cannot read arXiv's category names at {names}: {exc}") from exc
            categories = {
                category: Category(current.get(category, found.name), found.group)
                for category, found in categories.items()
            }
        return cls(categories)

    def name(self, category: str) -> str:
        found = self.categories.get(category)
        return found.name if found else category

    def group(self, category: str) -> str:
        found = self.categories.get(category)
        return found.group if found else ""
