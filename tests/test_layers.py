"""The one-way layers of pyproject.toml's import-linter contract hold, and a planted backwards import breaks them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter")
ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(src: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [str(LINT), "--config", str(ROOT / "pyproject.toml"), "--no-cache"]
    return subprocess.run(cmd, cwd=src, env=env, capture_output=True, text=True, timeout=120)


def test_the_package_keeps_its_layers():
    res = _lint(ROOT / "src")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "KEPT" in res.stdout


def test_a_backwards_import_breaks_the_contract(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "darkaction", src / "darkaction",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pth", "*.egg-info"))  # fmt: skip
    index = src / "darkaction" / "data" / "index.py"
    index.write_text(index.read_text() + "\n\ndef _planted():\n    from darkaction.training import run  # noqa\n")
    res = _lint(src)
    assert res.returncode != 0
    assert "darkaction.data.index -> darkaction.training.run" in res.stdout
