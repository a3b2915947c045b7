"""Run by Airflow's own Python: imports a DAG folder with Airflow's DagBag and writes as JSON what
the tests check (tasks, schedules, pools, retries, commands, import errors). Variables and
connections raise while the DAGs are imported: reading one at import time is an import error."""

from __future__ import annotations

import json
import sys
from typing import Any

import attrs
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import BaseHook, Variable


def forbidden(*args: Any, **kwargs: Any) -> None:
    raise RuntimeError("a DAG read an Airflow Variable or Connection while it was imported")


def schedule(timetable: Any) -> dict[str, Any]:
    fields = attrs.asdict(timetable, recurse=False) if attrs.has(type(timetable)) else {}
    described = {"type": type(timetable).__name__}
    if "asset_condition" in fields:
        described["assets"] = repr(fields["asset_condition"])
    if "expression" in fields:
        described.update(cron=fields["expression"], timezone=str(fields["timezone"]))
    return described


def seconds(delta: Any) -> float | None:
    return None if delta is None else delta.total_seconds()


def task(operator: Any) -> dict[str, Any]:
    return {
        "pool": operator.pool,
        "outlets": [asset.name for asset in operator.outlets],
        "upstream": sorted(operator.upstream_task_ids),
        "retries": operator.retries,
        "retry_delay": seconds(operator.retry_delay),
        "retry_exponential_backoff": operator.retry_exponential_backoff,
        "max_retry_delay": seconds(operator.max_retry_delay),
        "execution_timeout": seconds(operator.execution_timeout),
        "skip_on_exit_code": list(operator.skip_on_exit_code),
        "command": operator.python_callable(),  # @task.bash: the function returns the command
    }


def main(folder: str, output: str) -> None:
    Variable.get = BaseHook.get_connection = forbidden  # type: ignore[method-assign]
    bag = DagBag(folder)
    report = {
        "import_errors": {path: str(error) for path, error in bag.import_errors.items()},
        "kedro_imported": "kedro" in sys.modules,
        "dags": {
            dag.dag_id: {
                "schedule": schedule(dag.timetable),
                "max_active_runs": dag.max_active_runs,
                "catchup": dag.catchup,
                "owner": dag.owner,
                "tasks": {operator.task_id: task(operator) for operator in dag.tasks},
            }
            for dag in bag.dags.values()
        },
    }
    with open(output, "w") as file:  # Airflow logs to stdout
        json.dump(report, file, indent=1)


if __name__ == "__main__":
    main(*sys.argv[1:3])
