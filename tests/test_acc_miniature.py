"""benchmarks/acc_miniature.py's statistics: paired differences within one invocation and against another one."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("acc_miniature", ROOT / "benchmarks" / "acc_miniature.py")
acc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(acc)

VIDEOS = [f"Run__Run_{g}_{k}" for g in (17, 18, 19, 20) for k in range(3)]
GROUPS = np.array([acc.group_of(v) for v in VIDEOS])


def _run(head, seed, correct, videos=VIDEOS):
    return {"head": head, "seed": seed, "correct": list(map(float, correct)), "videos": videos}


def test_group_of_reads_the_recording_group():
    assert acc.group_of("Walk__Walk_17_2") == "17"
    assert list(np.unique(GROUPS)) == ["17", "18", "19", "20"]


def test_against_is_the_paired_difference_on_the_common_seeds():
    mine = [_run("bert", 0, [1] * 12), _run("bert", 1, [1] * 6 + [0] * 6), _run("bert", 2, [1] * 12)]
    theirs = [_run("bert", 0, [0] * 12), _run("bert", 1, [1] * 12), _run("tgap", 0, [1] * 12)]
    out = acc.against(mine, theirs, GROUPS, 200, np.random.default_rng(0))
    assert set(out) == {"bert"}  # tgap is not among mine; seed 2 is not among theirs
    assert out["bert"]["seeds"] == [0, 1]
    assert out["bert"]["diff"] == pytest.approx((12 - 6) / 24)
    assert out["bert"]["lo"] <= out["bert"]["diff"] <= out["bert"]["hi"]
    assert 0 < out["bert"]["p"] <= 1


def test_against_of_identical_runs_is_zero_with_p_one():
    runs = [_run("bert", s, np.arange(12) % (s + 2) == 0) for s in range(3)]
    out = acc.against(runs, runs, GROUPS, 200, np.random.default_rng(0))
    assert out["bert"]["diff"] == 0.0 and out["bert"]["lo"] == out["bert"]["hi"] == 0.0
    assert out["bert"]["p"] == 1.0


def test_against_refuses_other_videos_or_nothing_in_common():
    mine = [_run("bert", 0, [1] * 12)]
    with pytest.raises(SystemExit, match="other test videos"):
        acc.against(mine, [_run("bert", 0, [1] * 12, videos=VIDEOS[::-1])], GROUPS, 10, np.random.default_rng(0))
    with pytest.raises(SystemExit, match="in common"):
        acc.against(mine, [_run("bert", 5, [1] * 12)], GROUPS, 10, np.random.default_rng(0))
