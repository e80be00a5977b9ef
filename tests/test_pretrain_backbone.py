"""`darkaction pretrain`: the corpus-pretrained backbone (the CPU stand-in for IG65M weights), its export, the
committed file the CPU presets start from, and a reduced-size reproduction of the command."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
import torch

from darkaction.config import load_config
from darkaction.models.build import build_model
from darkaction.models.pretrained import load_pretrained
from darkaction.utils import flush_denormals, read_json

ROOT = Path(__file__).resolve().parents[1]
PRESETS = ("cpu.yaml", "demo.yaml")


def test_pretrained_weights_with_a_planted_denormal_load_flushed(tmp_path: Path):
    from darkaction.models.r2plus1d import r2plus1d_18

    src = r2plus1d_18(width=0.125, ig65m_midplanes=False)
    state = src.state_dict()
    state["stem.0.weight"].view(-1)[0] = 1e-41  # denormal in fp32
    torch.save(state, tmp_path / "w.pth")
    dst = r2plus1d_18(width=0.125, ig65m_midplanes=False)
    assert load_pretrained(dst, tmp_path / "w.pth", verbose=False).ok
    assert dst.stem[0].weight.view(-1)[0].item() == 0.0
    assert torch.equal(dst.stem[0].weight.view(-1)[1:], state["stem.0.weight"].view(-1)[1:])


def test_flush_denormals_zeroes_exactly_the_denormal_floats():
    w = torch.tensor([1e-39, -3e-40, 1e-30, 0.0, 0.5])  # two fp32 denormals, then normal values
    state = {"w": w, "n": torch.tensor(3), "h": torch.tensor([1e-6], dtype=torch.float16)}
    assert flush_denormals(state) == 3  # 1e-6 is denormal in fp16 too
    assert state["w"].tolist() == [0.0, 0.0, pytest.approx(1e-30), 0.0, 0.5]
    assert state["h"].item() == 0.0 and state["n"].item() == 3


@pytest.mark.parametrize("preset", PRESETS)
def test_committed_backbone_matches_its_sha256_and_loads_with_nothing_missing(preset):
    cfg = load_config(ROOT / "configs" / preset)
    assert cfg.model.pretrained, f"{preset} starts from the committed pretrained backbone"
    weights = ROOT / cfg.model.pretrained
    record = read_json(weights.with_suffix(".json"))
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == record["sha256"]
    assert weights.stat().st_size <= 10 * 2**20
    model = build_model(dataclasses.replace(cfg.model, pretrained=""), 6, cfg.sampling.T)
    report = load_pretrained(model, weights, verbose=False)
    assert report.ok and not report.unexpected and len(report.loaded) == record["tensors"]
    # no denormal weights (they slow fp32 convolution down tens of times on some CPUs)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    assert all(k.split(".")[0] in ("stem", "layer1", "layer2", "layer3", "layer4") for k in state)
    assert flush_denormals({k: v.clone() for k, v in state.items()}) == 0
    assert record["config"]["model"]["temporal_strides"] == list(cfg.model.temporal_strides)


def _tiny_pretrain_config(tmp: Path, name: str):
    over = [
        f"name={name}",
        f"run_dir={tmp / name}",
        f"synth.out={tmp / 'corpus'}",
        "synth.classes=[Walk,Jump,Clap,Squat]",
        "synth.train_groups=3",
        "synth.test_groups=1",
        "synth.width=64",
        "synth.height=48",
        "synth.max_frames=40",
        "synth.workers=1",
        f"data.source.root={tmp / 'corpus'}",
        f"data.prepared={tmp / 'prepared'}",
        "cache.height=32",
        "cache.width=32",
        "cache.workers=1",
        "augment.height=28",
        "augment.width=28",
        "model.width=0.125",
        "train.epochs=1",
        "train.batch_size=4",
        "train.precision=32",
        "train.progress=false",
        "train.precise_bn=8",
        "eval.views=1",
    ]
    return load_config(ROOT / "configs" / "pretrain.yaml", over)


def test_pretrain_command_reproduces_a_small_backbone(tmp_path: Path, caplog):
    caplog.set_level("INFO", logger="darkaction")
    from darkaction.pretraining import pretrain

    a = pretrain(_tiny_pretrain_config(tmp_path, "a"), out=tmp_path / "a.pth")
    b = pretrain(_tiny_pretrain_config(tmp_path, "b"), out=tmp_path / "b.pth")
    ra, rb = read_json(a.with_suffix(".json")), read_json(b.with_suffix(".json"))
    assert ra["sha256"] == rb["sha256"] == hashlib.sha256(a.read_bytes()).hexdigest()
    assert ra["corpus_test"]["n_test_videos"] == 4 and ra["config"]["synth"]["profile"] == "pretrain"
    # what it wrote is a backbone that a BERT model of the same shape loads completely
    cfg = _tiny_pretrain_config(tmp_path, "c")
    cfg.model.head = "bert"
    cfg.model.bert_hidden, cfg.model.bert_heads, cfg.model.bert_ffn = 32, 4, 64
    model = build_model(cfg.model, 6, cfg.sampling.T)
    report = load_pretrained(model, a, verbose=False)
    assert report.ok and not report.unexpected
    trained = torch.load(a, map_location="cpu", weights_only=True)
    assert torch.equal(model.backbone.stem[0].weight, trained["stem.0.weight"])
    # a second call finds everything done and only re-exports
    again = pretrain(_tiny_pretrain_config(tmp_path, "a"), out=tmp_path / "a2.pth")
    assert read_json(again.with_suffix(".json"))["sha256"] == ra["sha256"]
    assert "train (done)" in caplog.text
    assert ra["continued_from"] is None
    # continued pretraining: starts from a's backbone (recorded with its hash) and trains it further
    cont = _tiny_pretrain_config(tmp_path, "d")
    cont.model.pretrained = str(a)
    d = pretrain(cont, out=tmp_path / "d.pth")
    rd = read_json(d.with_suffix(".json"))
    assert rd["continued_from"] == {"path": str(a), "sha256": ra["sha256"]}
    assert rd["sha256"] != ra["sha256"]  # from scratch it would equal a's, as b's does


def test_pretrain_refuses_a_non_tgap_or_warm_up_config(tmp_path: Path):
    from darkaction.errors import ConfigError
    from darkaction.pretraining import pretrain

    cfg = _tiny_pretrain_config(tmp_path, "x")
    cfg.model.head = "bert"
    with pytest.raises(ConfigError, match="TGAP head"):
        pretrain(cfg)
    cfg = _tiny_pretrain_config(tmp_path, "y")
    cfg.train.pretrain_epochs = 2
    with pytest.raises(ConfigError, match="pretrain_epochs"):
        pretrain(cfg)


@pytest.mark.parametrize("weights", sorted((ROOT / "weights").glob("*.pth")), ids=lambda p: p.name)
def test_every_committed_backbone_matches_its_record(weights: Path):
    record = read_json(weights.with_suffix(".json"))
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == record["sha256"]
    assert weights.stat().st_size <= 10 * 2**20 and record["command"].startswith("darkaction pretrain")
    model = record["config"]["model"]
    cfg = load_config(None, [("model.backbone", model["backbone"]), ("model.width", model["width"]),
                             ("model.ig65m_midplanes", False)])  # fmt: skip
    report = load_pretrained(build_model(cfg.model, 6, 16), weights, verbose=False)
    assert report.ok and len(report.loaded) == record["tensors"]
