"""docs/benchmarks.md holds one section per bench script; each run replaces only its own."""

from __future__ import annotations

import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

DOCS = Path(__file__).resolve().parents[1] / "docs"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores ({cpu}), "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, Python {platform.python_version()}"
    )


def write_section(name: str, lines: list[str]) -> Path:
    """Replace (or append) the section between `<!-- begin name -->` and `<!-- end name -->`."""
    path = DOCS / "benchmarks.md"
    DOCS.mkdir(exist_ok=True)
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    section = "\n".join([begin, *lines, end])
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)
    return path


def sample_memory(process: psutil.Popen, every: float = 0.2) -> list[tuple[float, float]]:
    """(seconds since the first sample, MiB) of the PSS of a process and its children, every
    `every` seconds until it ends. PSS: pages they share (a fork's, a worker pool's) count once,
    where summing RSS would count them in every process."""
    started, samples = time.monotonic(), []
    while process.poll() is None:
        try:
            tree = [process, *process.children(recursive=True)]
            pss = sum(p.memory_full_info().pss for p in tree if p.is_running())
            samples.append((time.monotonic() - started, pss / 2**20))
        except psutil.NoSuchProcess:  # a child ended between listing and reading it
            pass
        time.sleep(every)
    return samples
