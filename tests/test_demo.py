"""`darkaction demo`: the config is valid and CPU-sized; the pipeline runs end to end and skips finished stages."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from darkaction.config import load_config

sys.path.insert(0, str(Path(__file__).parent))


def test_demo_config_is_the_papers_method_at_cpu_size():
    from darkaction.pipeline import DEFAULT_CONFIG

    cfg = load_config(DEFAULT_CONFIG)
    assert cfg.name == "demo" and cfg.data.source.format == "synth"
    assert cfg.sampling.strategy == "delta" and cfg.eval.views == 5
    assert cfg.model.head == "bert" and cfg.model.backbone.startswith("r2plus1d")
    assert cfg.enhance.method == "zero-dce" and not cfg.enhance.weights  # trained by the demo itself
    assert cfg.train.loss == "focal" and cfg.train.optimizer == "ranger" and cfg.train.scheduler == "onecycle"
    # the method in miniature: ARID's structure, no cropping, 8 BERT time steps, a pretrained backbone
    assert cfg.synth.profile == "arid" and cfg.synth.fps == 30 and cfg.synth.max_frames == 225
    assert cfg.sampling.alpha == "auto" and cfg.model.temporal_strides == [2, 1, 1] and cfg.sampling.T == 16
    assert cfg.model.pretrained and cfg.train.pretrain_epochs == 0


def test_train_state_detects_done_resume_fresh(tmp_path):
    import torch

    from darkaction.training.run import train_state as _train_state

    assert _train_state(tmp_path, 5) == "fresh"
    (tmp_path / "checkpoints").mkdir()
    torch.save({"epoch": 2, "state_dict": {}}, tmp_path / "checkpoints" / "last.ckpt")
    assert _train_state(tmp_path, 5) == "resume"
    assert _train_state(tmp_path, 3) == "done"


@pytest.mark.slow
def test_tiny_demo_end_to_end_then_skips(tmp_path, caplog, tiny_synth_cfg):
    caplog.set_level("INFO", logger="darkaction")
    import dataclasses

    from darkaction.pipeline import demo

    s = dataclasses.replace(tiny_synth_cfg, out=str(tmp_path / "data"))  # the demo generates its own copy
    over = [
        f"run_dir={tmp_path / 'run'}",
        f"data.source.root={s.out}",
        f"synth.out={s.out}",
        f"data.prepared={tmp_path / 'prepared'}",
        "enhance.train.n_frames=16",
        "enhance.train.epochs=1",
        "train.epochs=1",
        "train.progress=false",
        "train.workers=0",
        "eval.views=2",
    ] + [f"synth.{k}={v}" for k, v in vars(s).items() if k not in ("out", "classes", "brightness")]
    cfg = load_config(Path(__file__).parents[1] / "configs" / "demo.yaml", over)
    run = demo(cfg)
    res = json.loads((run / "results.json").read_text())
    assert {"top1", "mean_class_acc", "n_test_videos"} <= set(res) and res["n_test_videos"] == 12
    out = caplog.text
    assert "report.md" in out
    caplog.clear()
    demo(cfg)  # second time: every expensive stage is skipped
    out = caplog.text
    assert out.count("skipped") >= 3
