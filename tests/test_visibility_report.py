"""benchmarks/visibility.py's report: accuracy per band of person visibility and the visible-videos ceiling."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("visibility_bench", ROOT / "benchmarks" / "visibility.py")
vis = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(vis)

# 8 videos of 4 groups: r from nothing left to clean
R = [0.1, 0.3, 0.6, 0.65, 0.75, 0.8, 0.9, 0.95]
IDS = [f"Walk__Walk_{17 + i // 2}_{i % 2 + 1}" for i in range(len(R))]
TABLE = {v: {"r": r, "contrast": 10 * r, "noise": 1.0, "brightness": 5 + 10 * r} for v, r in zip(IDS, R)}


def _preds(right):
    return [
        {"video_id": v, "label": "walk", "pred": "walk" if ok else "run", "group": v.split("_")[-2]}
        for v, ok in zip(IDS, right)
    ]


def test_report_counts_each_band_and_the_ceiling_of_the_visible_videos():
    a = [0, 1, 0, 0, 1, 0, 1, 0]  # 3 of 8; of the 4 visible (r >= 0.7) 2 wrong
    b = [1, 1, 1, 1, 1, 1, 1, 0]  # 7 of 8; 1 visible wrong
    text = vis.report(TABLE, [("a", _preds(a)), ("b", _preds(b))])
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    assert "| 2 (1) |" in rows["r < 0.5"] and "| 50.0, 100.0 |" in rows["r < 0.5"]
    assert "| 2 (1) |" in rows["0.5 <= r < 0.7"] and "| 2, 0 |" in rows["0.5 <= r < 0.7"]
    assert "| 1, 0 |" in rows["0.7 <= r < 0.85"] and "| 1, 1 |" in rows["r >= 0.85"]
    assert "| 37.5, 87.5 |" in rows["all"]
    # every video of r >= 0.7 right, the others as measured: a 1 + 4 of 8, b 4 + 4 of 8
    assert "(per run): 62.5, 100.0 %; 4 videos have r < 0.7" in text
    assert "- Walk__Walk_20_2: r 0.95, walk -> run, run (2 of 2)" in text


def test_report_refuses_runs_scored_on_other_videos_or_another_dataset():
    with pytest.raises(SystemExit, match="paired"):
        vis.report(TABLE, [("a", _preds([1] * 8)), ("b", _preds([1] * 8)[:-1])])
    with pytest.raises(SystemExit, match="wrong --data"):
        vis.report({k: v for k, v in list(TABLE.items())[1:]}, [("a", _preds([1] * 8))])
