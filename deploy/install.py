"""Build the image's runtime environment: a venv with the project's runtime dependencies at the
versions of requirements.lock (no dev tools), then the project itself.

    python deploy/install.py /opt/venv deps      # pyproject.toml + requirements.lock only
    python deploy/install.py /opt/venv project   # then the source (a separate, cheaper layer)

The Dockerfile runs it; bench/image.py (the image's size) and tests/deployment (every service
started from the image's files) replay the Dockerfile's steps, so they run it too. Standard
library only: it runs on the bare base image.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Libraries that ship their own test suites (~150 MB together), never imported at run time. Not
# every `tests` folder is one: evidently's is its Test Suite API, kedro's hold project templates.
SHIPPED_TEST_SUITES = (
    "matplotlib",
    "networkx",
    "numpy",
    "pandas",
    "pyarrow",
    "scipy",
    "sklearn",
    "statsmodels",
)


def runtime_requirements(project: Path = ROOT) -> list[str]:
    """`[project].dependencies` of pyproject.toml: what the image needs, without extras."""
    return tomllib.loads((project / "pyproject.toml").read_text())["project"]["dependencies"]


def pip(venv: Path, *args: str) -> None:
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", *args], check=True)


def install_dependencies(venv: Path, project: Path = ROOT) -> None:
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip(venv, "install", "-c", str(project / "requirements.lock"), *runtime_requirements(project))
    for site in (venv / "lib").glob("python3*/site-packages"):
        for library in SHIPPED_TEST_SUITES:
            for suite in list(site.glob(f"{library}/**/tests")):
                shutil.rmtree(suite, ignore_errors=True)  # a suite inside one already removed


def install_project(venv: Path, project: Path = ROOT) -> None:
    """The project itself, not editable; every dependency is already there."""
    pip(venv, "install", "--no-deps", "-c", str(project / "requirements.lock"), str(project))


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[1] not in ("deps", "project"):
        sys.exit("usage: python deploy/install.py VENV deps|project")
    venv = Path(argv[0])
    if argv[1] == "deps":
        install_dependencies(venv)
    else:
        install_project(venv)


if __name__ == "__main__":
    main(sys.argv[1:])
