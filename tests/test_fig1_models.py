"""Figure 1's comparison networks (C3D, 3D-ResNeXt-101, 3D-SqueezeNet 1.1): parameter counts against the reference
code (okankop/Efficient-3DCNNs models/{c3d,resnext,squeezenet}.py), output shapes, a CPU training step, the config."""

import typing

import pytest
import torch

from darkaction.config import ModelConfig, load_config
from darkaction.errors import ConfigError
from darkaction.models.build import BACKBONES, FIG1_BACKBONES, build_model
from darkaction.models.c3d import C3D
from darkaction.models.info import model_info
from darkaction.models.resnext3d import ResNeXt3D
from darkaction.models.squeezenet3d import SqueezeNet3D

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _conv(cin: int, cout: int, k: int, bias: bool = True, groups: int = 1) -> int:
    """Parameters of a Conv3d with a k x k x k kernel."""
    return cin // groups * cout * k**3 + (cout if bias else 0)


def _bn(c: int) -> int:
    return 2 * c  # weight + bias (running statistics are buffers)


def _linear(cin: int, cout: int) -> int:
    return cin * cout + cout


# C3D, Efficient-3DCNNs models/c3d.py (latest version: BN3d after every conv, no BN in the fc layers), 600 classes
# (its default): eight 3x3x3 convs with bias, each followed by BN3d; pool5 leaves 512 x 1 x 4 x 4 = 8192 features at
# 16x112x112 (floor(16/16) x ceil(112/32)^2); fc1 8192 -> 4096, fc2 4096 -> 4096, fc 4096 -> 600.
C3D_CONVS = ((3, 64), (64, 128), (128, 256), (256, 256), (256, 512), (512, 512), (512, 512), (512, 512))
C3D_CONV_PARAMS = sum(_conv(i, o, 3) + _bn(o) for i, o in C3D_CONVS)  # 27,661,440
C3D_FC_PARAMS = _linear(512 * 1 * 4 * 4, 4096) + _linear(4096, 4096) + _linear(4096, 600)  # 52,798,040
C3D_PARAMS = 80_459_480


def _resnext101_params(num_classes: int) -> int:
    """Efficient-3DCNNs models/resnext.py `resnext101` (= kenshohara's 3D-ResNets resnext.py), shortcut B, cardinality
    32: stem conv 7x7x7 3->64 (no bias) + BN; layers [3, 4, 23, 3] of bottlenecks with planes 128/256/512/1024,
    mid = 32 * (planes // 32), out = 2 * planes: conv1 1x1x1, BN, grouped conv2 3x3x3 (32 groups), BN, conv3 1x1x1, BN,
    and in each layer's first block a 1x1x1 conv + BN shortcut; fc 2048 -> classes."""
    total, cin = _conv(3, 64, 7, bias=False) + _bn(64), 64
    for planes, blocks in zip((128, 256, 512, 1024), (3, 4, 23, 3)):
        mid, out = 32 * (planes // 32), 2 * planes
        for b in range(blocks):
            total += _conv(cin, mid, 1, False) + _bn(mid) + _conv(mid, mid, 3, False, 32) + _bn(mid)
            total += _conv(mid, out, 1, False) + _bn(out)
            if b == 0:
                total += _conv(cin, out, 1, False) + _bn(out)
            cin = out
    return total + _linear(2048, num_classes)


RESNEXT_PARAMS = 48_340_816  # 400 classes, the reference's default


def _squeezenet11_params(num_classes: int) -> int:
    """Efficient-3DCNNs models/squeezenet.py, version 1.1: stem conv 3x3x3 3->64 with bias + BN; eight Fire modules
    (squeeze 1x1x1, expand 1x1x1 and 3x3x3, every conv with bias and BN); classifier conv 1x1x1 512 -> classes."""
    fires = ((64, 16, 64, 64), (128, 16, 64, 64), (128, 32, 128, 128), (256, 32, 128, 128),
             (256, 48, 192, 192), (384, 48, 192, 192), (384, 64, 256, 256), (512, 64, 256, 256))  # fmt: skip
    total = _conv(3, 64, 3) + _bn(64)
    for cin, s, e1, e3 in fires:
        total += _conv(cin, s, 1) + _bn(s) + _conv(s, e1, 1) + _bn(e1) + _conv(s, e3, 3) + _bn(e3)
    return total + _conv(512, num_classes, 1)


SQUEEZENET_PARAMS = 2_145_560  # 600 classes, the reference's default

REFERENCE = {  # backbone: (model class, reference class count, parameters, feature map at 16x112x112)
    "c3d": (C3D, 600, C3D_PARAMS, (512, 1, 4, 4)),
    "resnext101_3d": (ResNeXt3D, 400, RESNEXT_PARAMS, (2048, 1, 4, 4)),
    "squeezenet_3d": (SqueezeNet3D, 600, SQUEEZENET_PARAMS, (512, 1, 4, 4)),
}


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_derivations_give_the_stated_counts():
    assert C3D_CONV_PARAMS == 27_661_440 and C3D_FC_PARAMS == 52_798_040
    assert C3D_CONV_PARAMS + C3D_FC_PARAMS == C3D_PARAMS
    assert _resnext101_params(400) == RESNEXT_PARAMS
    assert _squeezenet11_params(600) == SQUEEZENET_PARAMS


@pytest.mark.parametrize("backbone", FIG1_BACKBONES)
def test_reference_parameter_count_and_shapes(backbone):
    cls, classes, params, feature_map = REFERENCE[backbone]
    with torch.device("meta"):  # no memory, no arithmetic: shapes and counts only
        model = build_model(ModelConfig(backbone=backbone), classes, T=16)
        x = torch.zeros(2, 3, 16, 112, 112)
        feats = model.features(x)
        logits = model(x)
    assert isinstance(model, cls)
    assert _count(model) == params
    assert tuple(feats.shape) == (2, *feature_map)
    assert tuple(logits.shape) == (2, classes)
    assert model.head.attention is None


def test_c3d_parts_match_the_reference_split():
    with torch.device("meta"):
        model = build_model(ModelConfig(backbone="c3d"), 600, T=16)
    assert _count(model.backbone) == C3D_CONV_PARAMS and _count(model.head) == C3D_FC_PARAMS
    assert model.head.fc1[0].in_features == 8192  # 512 x 1 x 4 x 4, as the reference's flatten at 16x112x112


@pytest.mark.parametrize("backbone", FIG1_BACKBONES)
def test_quarter_width_trains_one_step_on_cpu(backbone):
    torch.manual_seed(0)
    cfg = load_config(None, [f"model.backbone={backbone}", "model.width=0.25", "sampling.T=16"])
    model = build_model(cfg.model, num_classes=6, T=cfg.sampling.T).train()
    assert isinstance(model, REFERENCE[backbone][0])
    x = torch.randn(2, 3, 16, 32, 32)
    y = torch.tensor([1, 4])
    assert model.features(x).shape[:2] == (2, model.backbone.out_channels)
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    logits = model(x)
    assert logits.shape == (2, 6)
    loss = torch.nn.functional.cross_entropy(logits, y)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))


@pytest.mark.parametrize("backbone", FIG1_BACKBONES)
def test_flow_input_bn_settings_and_input_check(backbone):
    cfg = ModelConfig(backbone=backbone, width=0.125, in_channels=5, bn_eps=1e-5, bn_momentum=0.01)
    model = build_model(cfg, num_classes=3, T=16).eval()
    with pytest.raises(ConfigError, match="model.head=mran"):  # their own classifier: a head choice is refused
        build_model(ModelConfig(backbone=backbone, width=0.125, head="mran"), num_classes=3, T=16)
    with torch.no_grad():
        assert model(torch.randn(1, 5, 16, 32, 32)).shape == (1, 3)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm3d)]
    assert bns and all(m.eps == 1e-5 and m.momentum == 0.01 for m in bns)
    with pytest.raises(ValueError, match="5, T, H, W"):
        model(torch.randn(1, 3, 16, 32, 32))


def test_c3d_size_limits_are_clear():
    with pytest.raises(ConfigError, match="T >= 9"):
        build_model(ModelConfig(backbone="c3d", width=0.125), 6, T=8)
    model = build_model(ModelConfig(backbone="c3d", width=0.125), 6, T=9).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 9, 16, 16)).shape == (1, 6)  # the smallest clip its five max-pools take
        with pytest.raises(ValueError, match="too small"):
            model(torch.randn(1, 3, 16, 8, 8))


def test_backbone_choices_match_the_config_and_errors_list_them():
    assert set(typing.get_args(typing.get_type_hints(ModelConfig)["backbone"])) == set(BACKBONES)
    with pytest.raises(ConfigError) as err:
        load_config(None, ["model.backbone=c3dd"])
    for name in BACKBONES:
        assert name in str(err.value)
    with pytest.raises(ConfigError, match="did you mean 'resnext101_3d'"):
        build_model(ModelConfig(backbone="resnext101"), 6, T=16)


def test_model_info_reports_the_parts():
    cfg = load_config(None, ["model.backbone=squeezenet_3d", "model.width=0.25", "augment.height=32",
                             "augment.width=32", "sampling.T=16"])  # fmt: skip
    info = model_info(cfg, num_classes=6, activations=False)
    assert info["output"] == [1, 6]
    assert [p["name"] for p in info["parts"]] == ["backbone", "head"]
    assert info["parameters"]["total"] == sum(p["parameters"] for p in info["parts"])
