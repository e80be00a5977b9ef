"""Backbone warm-up (`train.pretrain_epochs`): a TGAP run first, then the configured model starts from its backbone."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from darkaction.errors import ConfigError

sys.path.insert(0, str(Path(__file__).parent))
from test_evaluate import make_tiny_run  # noqa: E402


@pytest.fixture(scope="module")
def warm_run(tiny_synth, tmp_path_factory):
    return make_tiny_run(tiny_synth, tmp_path_factory.mktemp("pretrain"), **{"train.pretrain_epochs": 1})


def _backbone(ckpt: Path) -> dict:
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    return {k.removeprefix("model.backbone."): v for k, v in state.items() if k.startswith("model.backbone.")}


def test_warm_up_run_trains_a_tgap_backbone_first_and_the_bert_run_starts_from_it(warm_run):
    from darkaction.config import load_config
    from darkaction.models.build import build_model

    cfg, run_dir = warm_run
    pre_dir = run_dir / "pretrain"
    pre_cfg = load_config(pre_dir / "config.yaml")
    assert pre_cfg.model.head == "tgap" and pre_cfg.train.epochs == 1 and pre_cfg.train.pretrain_epochs == 0
    run_cfg = load_config(run_dir / "config.yaml")
    assert run_cfg.model.head == "bert"
    assert Path(run_cfg.model.pretrained) == pre_dir / "checkpoints" / "last.ckpt"

    # the BERT model built from the run's config starts with exactly the warmed-up backbone ...
    warmed = _backbone(pre_dir / "checkpoints" / "last.ckpt")
    start = build_model(run_cfg.model, 6, run_cfg.sampling.T).backbone.state_dict()
    floats = [k for k, v in warmed.items() if v.is_floating_point()]
    assert floats and all(torch.equal(start[k], warmed[k]) for k in floats)
    # ... which differs from a fresh initialisation, and training then moved it further
    fresh_cfg = load_config(run_dir / "config.yaml", ["model.pretrained="])
    fresh = build_model(fresh_cfg.model, 6, run_cfg.sampling.T).backbone.state_dict()
    assert any(not torch.equal(fresh[k], warmed[k]) for k in floats)
    final = _backbone(run_dir / "checkpoints" / "last.ckpt")
    assert any(not torch.equal(final[k], warmed[k]) for k in floats)


def test_evaluation_does_not_need_the_warm_up_checkpoint(warm_run, tmp_path):
    from darkaction.evaluation.evaluate import load_run

    _, run_dir = warm_run
    moved = run_dir / "pretrain_moved"
    (run_dir / "pretrain").rename(moved)
    try:
        _, classes, model, _ = load_run(run_dir)
        assert len(classes) == 6 and not model.training
    finally:
        moved.rename(run_dir / "pretrain")


def test_a_finished_warm_up_is_reused_and_conflicting_settings_are_refused(warm_run):
    from darkaction.training.run import pretrain_backbone

    cfg, run_dir = warm_run
    ckpt = run_dir / "pretrain" / "checkpoints" / "last.ckpt"
    before = ckpt.stat().st_mtime_ns
    assert pretrain_backbone(cfg) == ckpt and ckpt.stat().st_mtime_ns == before  # done: not retrained

    cfg.model.pretrained = "weights.pth"
    with pytest.raises(ConfigError, match="model.pretrained"):
        pretrain_backbone(cfg)
    cfg.model.pretrained = ""
    cfg.model.backbone = "slowfast"
    with pytest.raises(ConfigError, match="R\\(2\\+1\\)D"):
        pretrain_backbone(cfg)
