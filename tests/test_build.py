"""build_model / VideoClassifier: shapes, config errors, freeze_bn, dispatch to other backbones, model-info CLI."""

import sys
import types
from pathlib import Path

import pytest
import torch

from darkaction.cli import main
from darkaction.config import ModelConfig, load_config
from darkaction.errors import ConfigError
from darkaction.models.bert import BertHead
from darkaction.models.build import VideoClassifier, build_model, to_channels_last
from darkaction.models.heads import TGAPHead
from darkaction.models.info import model_info


@pytest.fixture(autouse=True)
def _one_thread():
    # These models are tiny: with several threads on a shared CPU, every small op waits at an OpenMP barrier for a
    # sibling thread that another process has descheduled (measured 20-50x slower). Restored after each test.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _cfg(**kw) -> ModelConfig:
    base = dict(
        backbone="r2plus1d_18",
        head="bert",
        ig65m_midplanes=False,
        width=0.125,
        bert_hidden=32,
        bert_heads=4,
        bert_ffn=64,
    )
    base.update(kw)
    return ModelConfig(**base)


@pytest.mark.parametrize("head,cls", [("bert", BertHead), ("tgap", TGAPHead)])
def test_forward_features_and_attention_shapes(head, cls):
    torch.manual_seed(0)
    model = build_model(_cfg(head=head), num_classes=6, T=16)
    assert isinstance(model, VideoClassifier) and isinstance(model.head, cls)
    x = torch.randn(2, 3, 16, 48, 48)
    model.eval()
    with torch.no_grad():
        assert model.features(x).shape == (2, 64, 2, 3, 3)
        assert model(x).shape == (2, 6)
    if head == "bert":
        assert model.head.attention.shape == (2, 2)
    else:
        assert model.head.attention is None


def test_flow_input_and_se_variant():
    model = build_model(_cfg(in_channels=5, se=True, backbone="r2plus1d_34"), num_classes=3, T=8).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 5, 8, 32, 32)).shape == (1, 3)
    assert any(k.endswith("se.fc1.weight") for k in model.state_dict())


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(backbone="r2plus1d_50"), "did you mean 'r2plus1d_34'"),
        (dict(head="berts"), "did you mean 'bert'"),
        (dict(bert_hidden=30), "divisible"),
        (dict(width=0.0), "width"),
    ],
)
def test_config_errors(kw, match):
    with pytest.raises(ConfigError, match=match):
        build_model(_cfg(**kw), num_classes=6, T=16)


def test_freeze_bn_keeps_running_statistics_in_train_mode():
    torch.manual_seed(0)
    model = build_model(_cfg(freeze_bn=True), num_classes=4, T=8)
    model.train()
    bns = [m for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm3d)]
    stats = [(m.running_mean.clone(), m.running_var.clone()) for m in bns]
    assert model.training and model.head.training
    assert all(not m.training for m in bns)
    assert all(not p.requires_grad for m in bns for p in m.parameters())
    out = model(torch.randn(2, 3, 8, 32, 32) * 3 + 1)
    out.sum().backward()
    for m, (mean, var) in zip(bns, stats):
        assert torch.equal(m.running_mean, mean) and torch.equal(m.running_var, var)
    assert model.backbone.stem[0].weight.grad is not None
    model.eval()
    model.train()  # switching back keeps BN frozen
    assert all(not m.training for m in bns)


def test_without_freeze_bn_running_statistics_move():
    model = build_model(_cfg(freeze_bn=False), num_classes=4, T=8).train()
    bn = model.backbone.stem[1]
    before = bn.running_mean.clone()
    model(torch.randn(2, 3, 8, 32, 32) + 1)
    assert bn.training and not torch.equal(bn.running_mean, before)
    assert bn.momentum == 0.1


@pytest.mark.parametrize(
    "kw,module,fn",
    [
        (dict(backbone="slowfast"), "darkaction.models.slowfast", "build_slowfast"),
        (dict(backbone="efficientnet_b0"), "darkaction.models.efficientnet", "build_efficientnet_bert"),
        (dict(head="mran"), "darkaction.models.mran", "build_mran"),
    ],
)
def test_dispatch_to_other_model_modules(monkeypatch, kw, module, fn):
    calls = []
    fake = types.ModuleType(module)
    setattr(fake, fn, lambda cfg, n, T: calls.append((cfg.backbone, cfg.head, n, T)) or torch.nn.Identity())
    monkeypatch.setitem(sys.modules, module, fake)
    model = build_model(_cfg(**kw), num_classes=5, T=32)
    assert isinstance(model, torch.nn.Identity)
    assert calls and calls[0][2:] == (5, 32)


def test_bf16_autocast_training_step_and_channels_last():
    torch.manual_seed(0)
    model = build_model(_cfg(), num_classes=4, T=8).eval()
    x = torch.randn(2, 3, 8, 32, 32)  # a plain contiguous clip: the model converts it
    with torch.no_grad():
        reference = model(x)
    model = to_channels_last(model)
    assert model.backbone.stem[0].weight.is_contiguous(memory_format=torch.channels_last_3d)
    seen = []
    model.backbone.stem.register_forward_hook(
        lambda m, i, o: seen.append(i[0].is_contiguous(memory_format=torch.channels_last_3d))
    )
    with torch.no_grad():
        assert torch.allclose(model(x), reference, atol=1e-5)
    assert seen == [True]
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.float(), torch.tensor([0, 3]))
    loss.backward()
    assert logits.dtype == torch.bfloat16 and torch.isfinite(loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)


def test_model_info_counts_match_the_built_model():
    cfg = load_config(CONFIGS / "cpu.yaml")
    info = model_info(cfg, num_classes=6)
    model = build_model(cfg.model, 6, cfg.sampling.T)
    assert info["parameters"]["total"] == sum(p.numel() for p in model.parameters())
    assert sum(p["parameters"] for p in info["parts"]) == info["parameters"]["total"]
    assert info["input"] == [1, 3, 16, 84, 84] and info["output"] == [1, 6]
    shapes = {p["name"]: p["output"] for p in info["parts"]}
    assert shapes["backbone.layer4"] == [1, 128, 8, 6, 6]  # temporal strides 2, 1, 1: 8 time steps
    assert info["temporal_tokens"] == 8
    assert info["flops"] > 0 and info["macs"] * 2 <= info["flops"] + 1


def test_model_info_cli_paper_config(capsys):
    assert main(["model-info", "--config", str(CONFIGS / "paper.yaml"), "--set", "model.head=tgap"]) == 0
    out = capsys.readouterr().out
    # 63,491,975 backbone + 512 * 6 + 6 classifier
    assert "63,495,053 total" in out
    assert "1x512x8x7x7" in out and "GFLOPs per clip" in out
    assert "MB (fp32)" in out and "of activations per training clip" in out


def test_activation_memory_counts_saved_tensors_once():
    from darkaction.models.info import activation_memory

    cfg = load_config(CONFIGS / "cpu.yaml")
    act = activation_memory(cfg)
    assert act["fp32"] > 1.0 and act["bf16"] == pytest.approx(act["fp32"] / 2, rel=0.05)
    bigger = load_config(CONFIGS / "cpu.yaml", ["augment.height=168", "augment.width=168"])
    assert 3 * act["fp32"] < activation_memory(bigger)["fp32"] < 4.2 * act["fp32"]  # 4x the pixels in the backbone


@pytest.mark.slow
def test_one_training_step_of_the_exact_paper_model_on_cpu():
    """GPU readiness without a GPU: R(2+1)D-34 + BERT at 64x112x112, batch 2, one focal-loss Ranger step."""
    from darkaction.training.losses import build_loss
    from darkaction.training.optim import build_optimizer

    cfg = load_config(CONFIGS / "paper.yaml", ["model.pretrained=none"])
    torch.manual_seed(0)
    model = build_model(cfg.model, 6, cfg.sampling.T).train()
    opt = build_optimizer("ranger", [{"params": list(model.parameters())}], cfg.train)
    x = torch.randn(2, 3, 64, 112, 112)
    y = torch.tensor([0, 5])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(x)
    loss = build_loss("focal", cfg.train.focal_gamma, None)(logits.float(), y)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss) and logits.shape == (2, 6)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_model_info_cli_bad_key_exits_2(capsys):
    assert main(["model-info", "--set", "model.backbone=resnet"]) == 2
    assert "model.backbone: 'resnet' is not a valid choice; choose one of: r2plus1d_18" in capsys.readouterr().err


@pytest.mark.parametrize("preset", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_every_shipped_preset_gives_the_temporal_head_at_least_8_time_steps(preset, capsys):
    # the paper: 64 frames -> 8 BERT tokens; a CPU preset may be small but keeps the shape of the computation
    cfg = load_config(CONFIGS / preset)
    info = model_info(cfg, num_classes=6)
    assert info["temporal_tokens"] >= 8, f"{preset}: {info['temporal_tokens']} time steps into the head"
    assert main(["model-info", "--config", str(CONFIGS / preset)]) == 0
    assert f"tokens     {info['temporal_tokens']} time steps" in capsys.readouterr().out


@pytest.mark.parametrize("backbone", ["slowfast", "efficientnet_b0", "c3d"])
def test_settings_only_r2plus1d_reads_are_refused_not_ignored(backbone):
    from darkaction.models.build import build_model

    for extra, word in (("model.head=tgap", "model.head=tgap"), ("model.freeze_bn=true", "freeze_bn"),
                        ("model.se=true", "model.se")):  # fmt: skip
        cfg = load_config(None, [f"model.backbone={backbone}", "model.width=0.125", extra])
        with pytest.raises(ConfigError, match=word):
            build_model(cfg.model, 6, 16)
