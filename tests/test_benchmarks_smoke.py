"""Every benchmark runs end to end in its --quick form and writes its JSON (numbers are not asserted: timings live in
the benchmarks, never in tests)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHES = sorted(p.stem.removeprefix("bench_") for p in (ROOT / "benchmarks").glob("bench_*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("name", BENCHES)
def test_benchmark_quick_run(name, tmp_path):
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / f"bench_{name}.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip(), "a benchmark prints its table"
    outputs = list((ROOT / "runs" / "bench").glob("*.json"))
    assert outputs and all(json.loads(p.read_text()) for p in outputs)


def test_every_benchmark_is_listed():
    assert {"data", "enhance", "models", "sampling"} <= set(BENCHES)
