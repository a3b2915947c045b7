"""The project image's size, measured without a Docker engine: its files are made on this machine
by the Dockerfile's own steps (tests/deployment/stack.py `LocalImage`: the build stage's RUN
lines replayed, which run deploy/install.py from requirements.lock; the runtime stage's COPYs
through .dockerignore), then measured. The base image (python:3.11-slim-bookworm, pinned by
digest) comes on top and is not measured here. Writes its section of docs/benchmarks.md and a
plot of the largest installed packages.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from matplotlib.figure import Figure

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import DOCS, machine, write_section  # noqa: E402
from deploy.install import SHIPPED_TEST_SUITES  # noqa: E402
from tests.deployment.stack import BuildContext, LocalImage  # noqa: E402

PLOT = DOCS / "benchmarks-image-size.svg"
MB = 1e6


def size(path: Path) -> int:
    """Bytes of every file under `path` (what an image layer stores), links not followed."""
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() or p.is_symlink())


def packages(site: Path) -> dict[str, int]:
    """Bytes per top-level entry of site-packages (a package, its .libs, its metadata)."""
    found: dict[str, int] = {}
    for entry in site.iterdir():
        name = entry.name.split("-")[0].removesuffix(".libs").split(".")[0].lower()
        found[name] = found.get(name, 0) + (size(entry) if entry.is_dir() else entry.stat().st_size)
    return found


def plot(largest: list[tuple[str, int]], total: int) -> None:
    names, sizes = zip(*reversed(largest), strict=True)
    figure = Figure(figsize=(8, 0.32 * len(names) + 1.2))
    axis = figure.subplots()
    axis.barh(names, [s / MB for s in sizes], color="#4c72b0")
    axis.set_xlabel("MB (file sizes summed)")
    axis.set_title(f"Largest packages of the image's /opt/venv ({total / MB:,.0f} MB in all)")
    figure.tight_layout()
    figure.savefig(PLOT)


def main() -> None:
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-image-") as directory:
        root = Path(directory)
        print("Making the image's files with its Dockerfile's steps (a few minutes)…", flush=True)
        started = time.monotonic()
        dockerfile = ROOT / "Dockerfile"
        image = LocalImage.build(
            dockerfile, BuildContext.of(ROOT, dockerfile), root, root / "build.log"
        )
        seconds = time.monotonic() - started
        venv, app = image.paths["/opt/venv"], image.workdir
        venv_bytes, app_bytes = size(venv), size(app)
        [site] = (venv / "lib").glob("python3*/site-packages")
        per_package = packages(site)
        print(f"/opt/venv {venv_bytes / MB:,.0f} MB, /app {app_bytes / MB:,.1f} MB", flush=True)
    largest = sorted(per_package.items(), key=lambda item: -item[1])[:15]
    plot(largest, venv_bytes)
    lines = [
        "## Image size (`bench/image.py`)",
        "",
        f"{machine()}; load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the start.",
        "",
        "Measured without a Docker engine: the Dockerfile's build-stage RUN lines replayed "
        "(`deploy/install.py`: the runtime dependencies at the versions of requirements.lock, "
        "then the project), the runtime stage's COPYs through `.dockerignore`; file sizes "
        "summed. The base image `python:3.11-slim-bookworm` (pinned by digest) is not "
        "included; the CI `image` job prints the built image's full size in its summary.",
        "",
        f"- `/opt/venv` (the runtime environment): **{venv_bytes / MB:,.0f} MB** in "
        f"{len(per_package)} top-level entries; test suites shipped inside "
        f"{', '.join(SHIPPED_TEST_SUITES)} removed at build time",
        f"- `/app` (conf, src, serving, app, deploy/healthcheck.py): {app_bytes / MB:,.1f} MB",
        "- no compilers, no pip cache (a BuildKit cache mount), no dev tools "
        "(pytest, ruff, playwright, nx-27017: `tests/deployment/test_images.py`)",
        f"- made in {seconds:,.0f} s here (pip's cache warm; noisy under load)",
        "",
        f"![largest packages of /opt/venv]({PLOT.name})",
    ]
    print(f"wrote {write_section('image', lines)} and {PLOT}")


if __name__ == "__main__":
    main()
