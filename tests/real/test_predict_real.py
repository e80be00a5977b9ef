"""predict on a real night clip (HMDB51 'Crash_walk...avi', mean brightness ~27/255) with a trained checkpoint."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from test_evaluate import make_tiny_run  # noqa: E402


def test_predict_prints_a_valid_label_for_the_real_dark_clip(fixtures_dir, tiny_synth, tmp_path, capsys):
    from darkaction.cli import main

    clip = fixtures_dir / "video" / "Crash_walk_f_cm_np1_ri_med_0.avi"
    weights = fixtures_dir / "zero_dce" / "official_Epoch99.pth"
    # a run enhanced with the official Zero-DCE weights, so predict rebuilds that enhancer from the run's config
    _, run = make_tiny_run(
        tiny_synth, tmp_path, **{"enhance.method": "zero-dce", "enhance.weights": str(weights), "train.epochs": 1}
    )
    assert main(["predict", str(clip), "--run", str(run), "--views", "5", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)[0]
    classes = json.loads((run / "data.json").read_text())["classes"]
    assert res["label"] in classes
    assert res["n_frames"] == 257
    assert sum(res["probs"].values()) == pytest.approx(1.0, abs=1e-4)
    assert main(["predict", str(clip), "--run", str(run)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(str(clip)) and res["label"] in out.splitlines()[0]
