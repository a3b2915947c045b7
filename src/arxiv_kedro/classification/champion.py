"""Which registered classifier version is the champion, and rolling it to another one.

    python -m arxiv_kedro.classification.champion            # the versions, the champion marked
    python -m arxiv_kedro.classification.champion set 3      # @champion -> version 3

The registry is MLFLOW_TRACKING_URI's, as for the pipelines and the API (in the compose stack:
`docker compose exec api python -m arxiv_kedro.classification.champion set 3`). The API serves
the new champion within API_MODEL_REFRESH_SECONDS (a minute); the next inference run relabels
the papers with it; the next training run's gate compares its candidate with it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime

from mlflow.exceptions import MlflowException

from arxiv_kedro.classification import registry
from arxiv_kedro.stores import masked

METRIC = "evaluation.macro_f1"  # the gate's metric, tagged on every version by ChampionHook


@dataclass(frozen=True)
class Version:
    version: str
    created: str  # ISO date and time (UTC)
    macro_f1: str | None
    champion: bool


def versions(name: str = registry.MODEL_NAME) -> list[Version]:
    """Every registered version of `name`, newest first."""
    client = registry.client()
    current = registry.champion_version(name)
    found = sorted(client.search_model_versions(f"name = '{name}'"), key=lambda v: -int(v.version))
    return [
        Version(
            version=str(v.version),
            created=f"{datetime.fromtimestamp(v.creation_timestamp / 1000, UTC):%Y-%m-%d %H:%M}",
            macro_f1=v.tags.get(METRIC),
            champion=current is not None and current.version == str(v.version),
        )
        for v in found
    ]


def set_champion(version: str, name: str = registry.MODEL_NAME) -> str | None:
    """Move @champion to `version` (which must exist and be ready); returns the version that held
    it before, or None."""
    client = registry.client()
    try:
        found = client.get_model_version(name, version)
    except MlflowException as exc:
        raise LookupError(
            f"no version {version} of {name!r} in the registry at {masked(registry.tracking_uri())}"
        ) from exc
    if found.status != "READY":
        raise LookupError(f"{name} version {version} is {found.status}, not READY")
    previous = registry.champion_version(name)
    client.set_registered_model_alias(name, registry.CHAMPION, version)
    return previous.version if previous else None


def main(argv: list[str]) -> int:
    if argv[:1] == ["set"] and len(argv) == 2:
        try:
            previous = set_champion(argv[1])
        except LookupError as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f"@{registry.CHAMPION}: version {previous or '(none)'} -> version {argv[1]}")
        return 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    listed = versions()
    if not listed:
        print(f"no version of {registry.MODEL_NAME!r} yet: `kedro run --pipeline training`")
    for v in listed:
        mark = f"@{registry.CHAMPION}" if v.champion else ""
        print(f"{v.version:>4}  {v.created}  macro_f1={v.macro_f1 or '?':<8} {mark}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
