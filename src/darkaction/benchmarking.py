"""`darkaction bench`: run the throughput benchmarks in `benchmarks/` (each prints ratios against a plain baseline
measured in the same run and writes `runs/bench/<name>.json`)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from darkaction.errors import DataError

log = logging.getLogger(__name__)


def find_benchmarks(start: Path | None = None) -> Path:
    """The `benchmarks/` folder of a source checkout (from the working directory or the package location)."""
    candidates = [Path(start or Path.cwd()).resolve(), Path(__file__).resolve().parents[2]]
    for base in candidates:
        for folder in (base, *base.parents):
            if (folder / "benchmarks").is_dir() and any((folder / "benchmarks").glob("bench_*.py")):
                return folder / "benchmarks"
    raise DataError(
        "no benchmarks/ folder found: `darkaction bench` runs from a source checkout (git clone, then make setup)"
    )


def available(folder: Path) -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in folder.glob("bench_*.py"))


def bench(names: list[str] | None = None, quick: bool = False, folder: Path | None = None) -> dict[str, int]:
    """Run the named benchmarks (all when empty) one after another; returns each one's exit status."""
    folder = folder or find_benchmarks()
    known = available(folder)
    chosen = names or known
    unknown = [n for n in chosen if n not in known]
    if unknown:
        raise DataError(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(known)}")
    status = {}
    for name in chosen:
        log.info(f"== benchmark {name} ==")
        cmd = [sys.executable, str(folder / f"bench_{name}.py")] + (["--quick"] if quick else [])
        status[name] = subprocess.run(cmd, cwd=folder.parent).returncode
    return status
