"""The real night clip (HMDB51 'Crash_walk...avi') through every inference path: Recognizer, the CLI, the exported
ONNX model: the same label and probabilities within 1e-4 (fp32), with the official Zero-DCE weights as the enhancer."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from test_evaluate import make_tiny_run  # noqa: E402


def test_every_inference_path_agrees_on_the_real_night_clip(fixtures_dir, tiny_synth, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from darkaction.cli import main
    from darkaction.inference import Recognizer
    from darkaction.inference.export import export_run

    clip = fixtures_dir / "video" / "Crash_walk_f_cm_np1_ri_med_0.avi"
    weights = fixtures_dir / "zero_dce" / "official_Epoch99.pth"
    _, run = make_tiny_run(
        tiny_synth, tmp_path, **{"enhance.method": "zero-dce", "enhance.weights": str(weights), "train.epochs": 1}
    )
    ref = Recognizer.from_run(run, precision="fp32").predict(clip, views=5)
    assert ref["n_frames"] == 257
    assert main(["predict", str(clip), "--run", str(run), "--precision", "fp32", "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)[0]
    export_run(run, tmp_path / "onnx", fmt="onnx")
    onnx = Recognizer.from_run(tmp_path / "onnx").predict(clip, views=5)
    served = _through_the_server(Recognizer.from_run(run, precision="fp32"), clip)
    for other in (cli, onnx, served):
        assert other["label"] == ref["label"]
        assert max(abs(other["probs"][c] - p) for c, p in ref["probs"].items()) < 1e-4


def _through_the_server(rec, clip):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from darkaction.inference.server import create_app

    with TestClient(create_app(rec, views=5)) as client:
        r = client.post("/predict", files={"file": (clip.name, clip.read_bytes(), "video/x-msvideo")})
    assert r.status_code == 200, r.text
    return r.json()
