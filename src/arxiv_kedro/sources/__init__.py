"""Where raw arXiv records come from: the live API and bulk snapshots, read in batches."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from arxiv_kedro.papers import Quarantined


@dataclass(frozen=True)
class Checkpoint:
    """Once the batch carrying it is committed, `categories` are complete up to `through`
    (exclusive: papers submitted at `through` itself may be on the next page)."""

    categories: tuple[str, ...]
    through: datetime


@dataclass
class RawBatch:
    """Raw records as the source delivered them, plus those it could not even decode."""

    source: str
    records: list[dict[str, Any]]
    rejected: list[Quarantined] = field(default_factory=list)
    checkpoint: Checkpoint | None = None
