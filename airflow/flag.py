"""Reads a saved Kedro output as a yes/no flag for an Airflow task: exit 0 if true, 99 if not."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

# BashOperator's default `skip_on_exit_code`: the task is skipped and updates no asset.
SKIP = 99


def flag_value(data: Any, field: str | None) -> bool:
    """`data` itself, or its `field` (dotted for nested mappings), as a boolean."""
    for key in field.split(".") if field else []:
        if not isinstance(data, dict) or key not in data:
            raise KeyError(f"the saved output has no field {field!r} (got {data!r:.200})")
        data = data[key]
    if not isinstance(data, bool):
        raise TypeError(f"expected true or false, got {data!r:.200}")
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", help="a persisted catalog entry, e.g. champion_decision")
    parser.add_argument("--field", help="a field of the saved mapping, e.g. promote")
    parser.add_argument("--env", default="prod")
    args = parser.parse_args(argv)
    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
    project = Path.cwd()
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=args.env) as session:
        data = session.load_context().catalog.load(args.dataset)
    value = flag_value(data, args.field)
    name = f"{args.dataset}.{args.field}" if args.field else args.dataset
    print(f"{name} is {value}: " + ("the asset is updated" if value else "skipped, no update"))
    return 0 if value else SKIP


if __name__ == "__main__":
    sys.exit(main())
