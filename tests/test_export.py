"""export: ONNX and TorchScript files of the run's enhancer and classifier (with the BERT attention as an output),
loaded back as a Recognizer that predicts what PyTorch predicts (fp32)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from test_recognizer import clip, run  # noqa: E402, F401 - module fixtures: a tiny Zero-DCE run and a clip

pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_exported_models_predict_like_pytorch(run, clip, tmp_path, fmt):  # noqa: F811
    from darkaction.inference import Recognizer
    from darkaction.inference.export import export_run

    files = export_run(run, tmp_path / fmt, fmt=fmt)
    suffix = ".onnx" if fmt == "onnx" else ".pt"
    assert files["classifier"].name == f"classifier{suffix}" and files["enhancer"].name == f"enhancer{suffix}"
    record = json.loads(files["record"].read_text())
    assert record["outputs"] == ["logits", "attention"] and record["max_abs_diff"]["probs"] < 1e-4
    assert record["max_abs_diff"]["enhanced_levels"] <= 1  # at most one grey level from float rounding
    want = Recognizer.from_run(run, precision="fp32")
    got = Recognizer.from_run(tmp_path / fmt)
    a, b = want.predict(clip, views=3), got.predict(clip, views=3)
    assert a["label"] == b["label"]
    assert max(abs(a["probs"][c] - b["probs"][c]) for c in a["probs"]) < 1e-4
    # the clip batch is dynamic (exported with 5 views) and the attention comes out as the second output
    clips = want.views(want.preprocess(torch.zeros(40, 48, 64, 3, dtype=torch.uint8).numpy()), views=2)
    pa, att_a = want.predict_clips(clips.unsqueeze(0))
    pb, att_b = got.predict_clips(clips.unsqueeze(0))
    assert att_a is not None and att_b is not None and att_b.shape == att_a.shape and att_a.shape[:2] == (1, 2)
    torch.testing.assert_close(pb, pa, atol=1e-4, rtol=0)
    torch.testing.assert_close(att_b, att_a, atol=1e-4, rtol=0)


def test_cli_export_then_predict_with_the_folder(run, clip, tmp_path, capsys):  # noqa: F811
    from darkaction.cli import main

    out = tmp_path / "exp"
    assert main(["export", str(run), "--format", "torchscript", "--out", str(out)]) == 0
    assert "max abs difference to PyTorch" in capsys.readouterr().out
    assert main(["predict", str(clip), "--run", str(out), "--views", "2", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)[0]
    assert res["label"] in json.loads((out / "recognizer.json").read_text())["classes"]
    with pytest.raises(SystemExit):
        main(["export", str(run), "--format", "tflite"])  # argparse: not one of the choices
