"""`make dags`: Airflow DAGs generated from the registered Kedro pipelines (kedro-airflow)."""

from __future__ import annotations

import argparse
import difflib
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from kedro.framework.project import pipelines
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.io import CatalogProtocol, MemoryDataset
from kedro.pipeline import GroupedNodes, Pipeline
from kedro_airflow.grouping import group_memory_nodes
from kedro_mlflow.pipeline.pipeline_ml import PipelineML
from slugify import slugify

AIRFLOW_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = AIRFLOW_DIR.parent
TEMPLATE = AIRFLOW_DIR / "templates" / "dag.py.j2"
POOLS_FILE = "pools.json"
PIPELINE_SETTINGS = {
    "owner",
    "start_date",
    "max_active_runs",
    "catchup",
    "retries",
    "retry_delay_minutes",
    "retry_exponential_backoff",
    "max_retry_delay_minutes",
    "execution_timeout_minutes",
    "variants",
}
SECTIONS = {"without_dag", "default", "schedules", "pools", "pool_slots", "assets"}


class GenerationError(Exception):
    """The pipelines or conf/*/airflow.yml cannot make DAGs that run as Kedro runs them."""


@dataclass
class Task:
    task_id: str
    nodes: list[str]
    upstream: list[str] = field(default_factory=list)
    pool: str | None = None
    outlets: list[str] = field(default_factory=list)  # assets updated when it succeeds


@dataclass
class Flag:
    """A task reading a saved output after its writer: true updates the asset, false skips."""

    task_id: str
    asset: str
    dataset: str
    field: str | None  # None: the output itself
    upstream: str


@dataclass
class Dag:
    key: str  # the pipeline's name, or `<pipeline>_<variant>`
    dag_id: str
    description: str
    schedule: str  # Python source of the `schedule` argument
    params: dict[str, Any]  # Kedro --params of every task
    settings: dict[str, Any]


@dataclass
class DagFile:
    name: str
    pipeline: str
    tasks: list[Task]
    flags: list[Flag]
    dags: list[Dag]
    assets: list[str]

    @property
    def edges(self) -> list[tuple[str, str]]:
        """(upstream, downstream) task ids."""
        edges = [(up, t.task_id) for t in self.tasks for up in t.upstream]
        return edges + [(flag.upstream, flag.task_id) for flag in self.flags]

    @property
    def imports(self) -> list[str]:
        """What the module takes from airflow.sdk."""
        names = ["dag", "task"]
        if self.assets:
            names.append("Asset")
        if any(d.schedule.startswith("CronTriggerTimetable") for d in self.dags):
            names.append("CronTriggerTimetable")
        return sorted(names, key=lambda name: (name.islower(), name))


def dataset_name(name: str) -> str:
    """The dataset behind a transcoded name (`papers@write` -> `papers`)."""
    return name.split("@", 1)[0]


def is_persisted(catalog: CatalogProtocol, name: str) -> bool:
    """False for what Kedro keeps in memory: a MemoryDataset, or a name the catalog lacks."""
    return name in catalog and not isinstance(catalog.get(name), MemoryDataset)


def group_nodes(pipeline: Pipeline, catalog: CatalogProtocol) -> list[GroupedNodes]:
    """kedro-airflow's `--group-by memory`: nodes joined by memory datasets share a task.

    A kedro-mlflow training pipeline is one task: its model is logged at the end of a run of
    the whole pipeline. Dependencies come from Kedro's own graph, which follows transcoded
    datasets (kedro-airflow 0.11 matches names literally and loses `x@write` -> `x@read`).
    """
    if isinstance(pipeline, PipelineML):
        groups = [GroupedNodes(name="_".join(n.name for n in pipeline.nodes), type="nodes")]
        groups[0].nodes = [n.name for n in pipeline.nodes]
    else:
        groups = group_memory_nodes(catalog, pipeline)
    order = [node.name for node in pipeline.nodes]  # topological
    group_of = {node: group.name for group in groups for node in group.nodes}
    by_name = {node.name: node for node in pipeline.nodes}
    for group in groups:
        group.nodes.sort(key=order.index)
        parents = {
            group_of[parent.name]
            for node in group.nodes
            for parent in pipeline.node_dependencies[by_name[node]]
        }
        group.dependencies = sorted(parents - {group.name})
    return groups


def check_hand_offs(
    name: str, pipeline: Pipeline, groups: list[GroupedNodes], catalog: CatalogProtocol
) -> list[str]:
    """Every dataset a task loads must have been saved somewhere a new process finds it."""
    problems = []
    group_of = {node: group.name for group in groups for node in group.nodes}
    by_name = {node.name: node for node in pipeline.nodes}
    for node in pipeline.nodes:
        for parent in pipeline.node_dependencies[node]:
            if group_of[parent.name] == group_of[node.name]:
                continue
            written = {dataset_name(o) for o in by_name[parent.name].outputs}
            for loaded in node.inputs:
                if dataset_name(loaded) in written and not is_persisted(catalog, loaded):
                    problems.append(
                        f"pipeline {name!r}: {loaded!r} goes from task of {parent.name!r} to "
                        f"task of {node.name!r} as a MemoryDataset; declare it in the catalog"
                        " (a store, a file on a shared volume, or RedisStagingDataset)"
                    )
    for loaded in sorted(pipeline.inputs()):
        parameter = loaded.startswith("params:") or loaded == "parameters"
        if not parameter and not is_persisted(catalog, loaded):
            problems.append(
                f"pipeline {name!r}: its input {loaded!r} is not a persisted catalog "
                "entry, so no task can load it"
            )
    return problems


def task_pool(name: str, group: GroupedNodes, pipeline: Pipeline, pools: dict) -> str | None:
    loaded = {dataset_name(i) for n in pipeline.nodes if n.name in group.nodes for i in n.inputs}
    taken = sorted(pool for pool, spec in pools.items() if loaded & set(spec["datasets"]))
    if len(taken) > 1:
        raise GenerationError(
            f"pipeline {name!r}: the task of {group.nodes} needs pools {taken}; a task takes "
            "one pool, so split those nodes with a persisted dataset between them"
        )
    return taken[0] if taken else None


def task_ids(name: str, pipeline: Pipeline, groups: list[GroupedNodes]) -> dict[str, str]:
    """Group -> task id: the pipeline's name for a single task, a node's name for a task of one
    node, `<first>-to-<last>` node (topological order) otherwise; kedro-airflow's joins every
    node's name."""
    if len(groups) == 1:
        return {groups[0].name: slugify(name)}
    return {
        group.name: slugify(
            group.nodes[0] if len(group.nodes) == 1 else f"{group.nodes[0]}-to-{group.nodes[-1]}"
        )
        for group in groups
    }


def dag_file(
    name: str, pipeline: Pipeline, catalog: CatalogProtocol, config: dict, package: str, env: str
) -> DagFile:
    groups = group_nodes(pipeline, catalog)
    problems = check_hand_offs(name, pipeline, groups, catalog)
    if problems:
        raise GenerationError("\n".join(problems))
    ids = task_ids(name, pipeline, groups)
    writes = {  # group -> {dataset: the catalog entry its nodes save it as}
        group.name: {
            dataset_name(o): o for n in pipeline.nodes if n.name in group.nodes for o in n.outputs
        }
        for group in groups
    }
    tasks, flags, used_assets = [], [], set()
    for group in groups:
        task = Task(
            task_id=ids[group.name],
            nodes=group.nodes,
            upstream=[ids[parent] for parent in group.dependencies],
            pool=task_pool(name, group, pipeline, config["pools"]),
        )
        for asset, spec in config["assets"].items():
            written = sorted(
                writes[group.name][d] for d in spec["datasets"] if d in writes[group.name]
            )
            if not written:
                continue
            used_assets.add(asset)
            if "flag" not in spec:
                task.outlets.append(asset)
                continue
            if not is_persisted(catalog, written[0]):
                raise GenerationError(f"asset {asset!r}: flag {written[0]!r} is not persisted")
            field = None if spec["flag"] is True else spec["flag"]
            flags.append(Flag(f"update-{asset}", asset, written[0], field, task.task_id))
        tasks.append(task)
    settings = {**config.get("default", {}), **config.get(name, {})}
    unknown = set(settings) - PIPELINE_SETTINGS
    if unknown:
        raise GenerationError(f"conf/*/airflow.yml, {name!r}: unknown settings {sorted(unknown)}")
    variants = settings.pop("variants", None) or {}
    dags = [Dag(name, f"{package}_{name}", f"Kedro pipeline {name!r}", "", {}, settings)]
    for variant, spec in variants.items():
        dags.append(
            Dag(
                f"{name}_{variant}",
                f"{package}_{name}_{variant}",
                " ".join(spec.get("description", "").split()) or f"{name} ({variant})",
                "",
                spec.get("params", {}),
                settings,
            )
        )
    schedules = config.get("schedules") or {}
    for dag in dags:
        dag.schedule = schedule_source(dag.key, schedules.get(dag.key))
        used_assets.update(schedule_assets(schedules.get(dag.key)))
    return DagFile(
        name=f"{package}_{env}_{name}_dag.py",
        pipeline=name,
        tasks=tasks,
        flags=flags,
        dags=dags,
        assets=sorted(used_assets),
    )


def schedule_assets(spec: dict | None) -> list[str]:
    if not spec:
        return []
    return list(spec.get("assets_any", [])) + list(spec.get("assets_all", []))


def schedule_source(key: str, spec: dict | None) -> str:
    """The `schedule=` argument: None (triggered only), a cron timetable or an asset condition."""
    if not spec:
        return "None"
    if set(spec) == {"cron", "timezone"}:
        return f"CronTriggerTimetable({spec['cron']!r}, timezone={spec['timezone']!r})"
    if set(spec) in ({"assets_any"}, {"assets_all"}):
        operator = " | " if "assets_any" in spec else " & "
        condition = operator.join(asset_constant(a) for a in schedule_assets(spec))
        return f"({condition})" if operator in condition else condition
    raise GenerationError(
        f"schedules.{key}: expected {{cron, timezone}}, {{assets_any: [...]}} or "
        f"{{assets_all: [...]}}, got {spec}"
    )


def asset_constant(asset: str) -> str:
    return slugify(asset, separator="_").upper()


def check_config(config: dict, names: list[str], files: list[DagFile]) -> list[str]:
    """Settings that name nothing would silently do nothing: errors and warnings."""
    errors, warnings = [], []
    # Settings may wait for a pipeline that is not registered yet (monitoring): a warning.
    unknown = set(config) - SECTIONS - set(names)
    if unknown:
        warnings.append(f"conf/*/airflow.yml: no registered pipeline named {sorted(unknown)}")
    dag_keys = {dag.key for f in files for dag in f.dags}
    for key in config.get("schedules") or {}:
        if key not in dag_keys:
            warnings.append(f"schedules.{key}: no DAG of that name (DAGs: {sorted(dag_keys)})")
    for pool in config.get("pool_slots") or {}:
        if pool not in config["pools"]:
            errors.append(f"pool_slots.{pool}: no pool of that name in pools")
    updated = {a for f in files for t in f.tasks for a in t.outlets} | {
        flag.asset for f in files for flag in f.flags
    }
    for f in files:
        for asset in f.assets:
            if asset not in config["assets"]:
                errors.append(f"{f.name}: schedule on unknown asset {asset!r}")
            elif asset not in updated:
                warnings.append(
                    f"asset {asset!r} starts DAGs but no pipeline writes "
                    f"{config['assets'][asset]['datasets']}: they will not start on their own"
                )
    for message in sorted(set(warnings)):
        print(f"warning: {message}", file=sys.stderr)
    return errors


def pools_json(config: dict) -> str:
    slots = config.get("pool_slots") or {}
    pools = {
        name: {
            "slots": slots.get(name, spec["slots"]),
            "description": spec["description"],
            "include_deferred": False,
        }
        for name, spec in config["pools"].items()
    }
    return json.dumps(pools, indent=2) + "\n"


def render(files: list[DagFile], env: str, config: dict) -> dict[str, str]:
    """File name -> content: one module per pipeline, plus the pools for `airflow pools import`."""
    jinja = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE.parent),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    jinja.filters["py"] = repr
    jinja.filters["pytext"] = python_text
    jinja.filters["constant"] = asset_constant
    jinja.filters["function"] = lambda task_id: slugify(task_id, separator="_")
    template = jinja.get_template(TEMPLATE.name)
    rendered = {f.name: ruff_format(template.render(file=f, env=env)) for f in files}
    rendered[POOLS_FILE] = pools_json(config)
    return rendered


def python_text(text: str) -> str:
    """A string literal, split into adjacent literals of at most 80 characters."""
    lines = textwrap.wrap(text, 80, drop_whitespace=False)
    return repr(text) if len(lines) < 2 else "(" + " ".join(map(repr, lines)) + ")"


def ruff_format(source: str) -> str:
    ruff = Path(sys.executable).parent / "ruff"
    result = subprocess.run(
        [str(ruff), "format", "--stdin-filename", "dag.py", "-"],
        input=source,
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        check=False,
    )
    if result.returncode != 0:
        raise GenerationError(f"the template made invalid Python:\n{result.stderr}\n{source}")
    return result.stdout


def generate(env: str, project: Path = PROJECT_ROOT) -> dict[str, str]:
    """Every generated file's name and content, from the project's pipelines and conf/."""
    metadata = bootstrap_project(project)
    with KedroSession.create(project_path=project, env=env) as session:
        context = session.load_context()
        # kedro-airflow's configuration: conf/<env>/airflow.yml over conf/base/airflow.yml
        context.config_loader.config_patterns.setdefault("airflow", ["airflow*", "airflow/**"])
        config = {"pools": {}, "assets": {}, **context.config_loader["airflow"]}
        catalog = context.catalog
        skipped = {"__default__", *config.get("without_dag", ())}
        names = sorted(name for name in pipelines if name not in skipped)
        files = [
            dag_file(name, pipelines[name], catalog, config, metadata.package_name, env)
            for name in names
        ]
    errors = check_config(config, names, files)
    if errors:
        raise GenerationError("\n".join(errors))
    return render(files, env, config)


def write(files: dict[str, str], target: Path) -> None:
    """Replace the generated files in `target` (a pipeline that is gone loses its DAG)."""
    target.mkdir(parents=True, exist_ok=True)
    (target.parent / POOLS_FILE).write_text(files[POOLS_FILE])
    for stale in target.glob("*_dag.py"):
        if stale.name not in files:
            stale.unlink()
    for name, content in files.items():
        if name != POOLS_FILE:
            (target / name).write_text(content)


def differences(files: dict[str, str], target: Path) -> list[str]:
    """A unified diff per generated file that differs from the committed one."""
    committed = {p.name: p.read_text() for p in target.glob("*_dag.py")}
    pools = target.parent / POOLS_FILE
    committed[POOLS_FILE] = pools.read_text() if pools.exists() else ""
    diffs = []
    for name in sorted(set(files) | set(committed)):
        old, new = committed.get(name, ""), files.get(name, "")
        if old != new:
            diff = difflib.unified_diff(
                old.splitlines(keepends=True), new.splitlines(keepends=True), name, name
            )
            diffs.append("".join(diff))
    return diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env", default="prod", help="Kedro environment the DAGs run (prod)")
    parser.add_argument("--target", type=Path, default=AIRFLOW_DIR / "dags")
    parser.add_argument("--check", action="store_true", help="fail if the files in --target differ")
    args = parser.parse_args(argv)
    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
    try:
        files = generate(args.env)
    except GenerationError as exc:
        print(f"DAG generation failed:\n{exc}", file=sys.stderr)
        return 1
    if args.check:
        diffs = differences(files, args.target)
        if diffs:
            print("".join(diffs) + "\nThe DAGs are out of date: run `make dags`.", file=sys.stderr)
            return 1
        print(f"{len(files) - 1} DAG files in {args.target} match the pipelines")
        return 0
    write(files, args.target)
    print(f"{len(files) - 1} DAG files written to {args.target}, pools to {POOLS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
