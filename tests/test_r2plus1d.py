"""R(2+1)D backbone: exact parameter counts, mid-channel rules, shapes, width multiplier, SE variant."""

import pytest
import torch

from darkaction.models.r2plus1d import (
    R2Plus1D,
    TemporalConv3d,
    midplanes,
    r2plus1d,
    r2plus1d_18,
    r2plus1d_34,
    spatial_size,
    temporal_size,
)


@pytest.fixture(autouse=True)
def _one_thread():
    # These models are tiny: with several threads on a shared CPU, every small op waits at an OpenMP barrier for a
    # sibling thread that another process has descheduled (measured 20-50x slower). Restored after each test.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _meta(fn, **kwargs):
    # Shapes without storage: full-size models are built in well under a second.
    with torch.device("meta"):
        return fn(**kwargs)


def test_parameter_counts_match_reference():
    assert _params(_meta(r2plus1d_34, ig65m_midplanes=True)) == 63_491_975
    assert _params(_meta(r2plus1d_34, ig65m_midplanes=False)) == 61_626_461
    assert _params(_meta(r2plus1d_18, ig65m_midplanes=False, num_classes=400)) == 31_505_325


def test_mid_channels_torchvision_rule_and_ig65m_quirk():
    assert [midplanes(i, o) for i, o in [(64, 64), (64, 128), (128, 256), (256, 512)]] == [144, 230, 460, 921]
    ig = _meta(r2plus1d_34, ig65m_midplanes=True)
    tv = _meta(r2plus1d_34, ig65m_midplanes=False)
    for name, first, quirk in [("layer2", 230, 288), ("layer3", 460, 576), ("layer4", 921, 1152)]:
        block_ig, block_tv = getattr(ig, name)[0], getattr(tv, name)[0]
        assert block_ig.conv1[0][0].out_channels == block_tv.conv1[0][0].out_channels == first
        assert block_tv.conv2[0][0].out_channels == first
        assert block_ig.conv2[0][0].out_channels == quirk
        # Later blocks have i == o, where both rules agree.
        assert getattr(ig, name)[1].conv2[0][0].out_channels == getattr(tv, name)[1].conv2[0][0].out_channels


def test_full_size_feature_map_shape_on_meta():
    model = _meta(r2plus1d_34)
    out = model(torch.empty(2, 3, 64, 112, 112, device="meta"))
    assert tuple(out.shape) == (2, 512, 8, 7, 7)
    assert model.out_channels == 512


@pytest.mark.parametrize("T,H,W", [(16, 64, 64), (10, 40, 56), (1, 32, 32)])
def test_small_model_shapes_match_size_helpers(T, H, W):
    torch.manual_seed(0)
    model = r2plus1d(18, width=0.125, ig65m_midplanes=False).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, T, H, W))
    assert tuple(out.shape) == (1, 64, temporal_size(T), spatial_size(H), spatial_size(W))
    assert torch.isfinite(out).all()


def test_size_helpers():
    assert temporal_size(64) == 8 and temporal_size(16) == 2 and temporal_size(17) == 3
    assert spatial_size(112) == 7 and spatial_size(64) == 4


def test_width_multiplier_scales_every_stage_and_the_stem_mid():
    model = r2plus1d(18, width=0.25, ig65m_midplanes=False)
    assert model.stem[0].out_channels == 11  # round(45 * 0.25)
    assert [getattr(model, f"layer{i}")[0].conv1[1].num_features for i in range(1, 5)] == [16, 32, 64, 128]
    assert model.out_channels == 128
    assert _params(model) < _params(_meta(r2plus1d_18, ig65m_midplanes=False)) / 10


def test_five_input_channels_and_wrong_channels_error():
    model = r2plus1d(18, width=0.125, in_channels=5).eval()
    assert model.stem[0].weight.shape[1] == 5
    with torch.no_grad():
        assert model(torch.randn(1, 5, 8, 32, 32)).shape[1] == 64
    with pytest.raises(ValueError, match=r"\(B, 5, T, H, W\)"):
        model(torch.randn(1, 3, 8, 32, 32))


def test_batchnorm_settings_reach_every_bn():
    model = r2plus1d(18, width=0.125, bn_eps=1e-3, bn_momentum=0.1)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm3d)]
    assert bns and all(m.eps == 1e-3 and m.momentum == 0.1 for m in bns)


def test_se_variant_adds_gates_after_second_conv():
    plain = _meta(r2plus1d_34, ig65m_midplanes=True)
    se = _meta(r2plus1d_34, ig65m_midplanes=True, se="channel")
    # Channel SE, one gate per block: C -> C/16 -> C 1x1x1 convs with biases.
    extra = sum(n * (2 * c * (c // 16) + c // 16 + c) for n, c in zip((3, 4, 6, 3), (64, 128, 256, 512)))
    assert _params(se) - _params(plain) == extra
    assert "layer3.5.se.fc1.weight" in se.state_dict()
    # Temporal SE (the default of se=True): C -> C/16 (1x1) then C/16 -> 1 over 3 time steps, with biases.
    temporal = _meta(r2plus1d_34, ig65m_midplanes=True, se=True)
    extra_t = sum(n * (c * (c // 16) + c // 16 + 3 * (c // 16) + 1) for n, c in zip((3, 4, 6, 3), (64, 128, 256, 512)))
    assert _params(temporal) - _params(plain) == extra_t
    small = r2plus1d(18, width=0.25, se=True).eval()
    with torch.no_grad():
        assert small(torch.randn(1, 3, 8, 32, 32)).shape == (1, 128, 1, 2, 2)


def test_temporal_se_gates_each_time_step():
    from darkaction.models.r2plus1d import TemporalExcitation3d

    torch.manual_seed(0)
    se = TemporalExcitation3d(32).eval()
    x = torch.randn(2, 32, 6, 5, 5)
    x[:, :, 3] *= 4.0  # one loud time step
    with torch.no_grad():
        gate = se.gate(x)
        out = se(x)
    assert gate.shape == (2, 1, 6, 1, 1)
    assert gate.flatten(1).std(dim=1).min() > 1e-4  # the gates differ between time steps ...
    ratio = out / x
    # ... and one gate scales every channel and position of its time step alike
    assert torch.allclose(ratio[0, :, 2], ratio[0, 0, 2, 0, 0].expand_as(ratio[0, :, 2]), atol=1e-5)
    with pytest.raises(ValueError, match="temporal, channel"):
        r2plus1d(18, width=0.25, se="spatial")


def test_se_gate_scales_the_residual_branch():
    torch.manual_seed(0)
    block = r2plus1d(18, width=0.25, se=True).layer1[0].eval()
    x = torch.randn(1, 16, 4, 8, 8)
    with torch.no_grad():
        with_gate = block(x)
        block.se.fc2.bias.fill_(-50.0)  # a closed gate leaves only the identity path
        closed = block(x)
    assert not torch.allclose(with_gate, closed)
    assert torch.allclose(closed, torch.relu(x), atol=1e-6)


def test_torchvision_classifier_layout_returns_logits():
    model = r2plus1d(18, width=0.125, num_classes=7).eval()
    assert isinstance(model, R2Plus1D) and model.fc.out_features == 7
    with torch.no_grad():
        x = torch.randn(2, 3, 8, 32, 32)
        assert model(x).shape == (2, 7)
        assert model.features(x).shape == (2, 64, 1, 2, 2)


def test_bad_depth_is_an_error():
    with pytest.raises(ValueError, match="depth"):
        r2plus1d(50)


@pytest.mark.slow
def test_full_size_forward_on_cpu():
    model = r2plus1d_34().eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(1, 3, 64, 112, 112))
    assert out.shape == (1, 512, 8, 7, 7) and torch.isfinite(out.float()).all()


def test_bf16_temporal_conv_gradient_is_finite_and_right_at_two_time_steps():
    """oneDNN's bf16 weight gradient of a stride-1 (3,1,1) conv over T=2 came out non-finite on torch 2.13; a
    CPU-sized clip (T=16) reaches layer4 with T'=2, so the backbone's temporal conv must stay finite and correct."""
    torch.manual_seed(0)
    conv = TemporalConv3d(16, 16, (3, 1, 1), padding=(1, 0, 0), bias=False)
    x = torch.randn(2, 16, 2, 4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv(x)
    y.float().square().sum().backward()
    w = conv.weight.detach().clone().requires_grad_()
    torch.nn.functional.conv3d(x, w, padding=(1, 0, 0)).square().sum().backward()
    assert torch.isfinite(conv.weight.grad).all()
    torch.testing.assert_close(conv.weight.grad, w.grad, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "strides, T, expect", [((2, 2, 2), 64, 8), ((2, 2, 2), 16, 2), ((2, 1, 1), 16, 8), ((1, 1, 1), 16, 16)]
)
def test_temporal_strides_set_the_time_steps_and_keep_every_weight_shape(strides, T, expect):
    torch.manual_seed(0)
    model = r2plus1d_18(width=0.125, ig65m_midplanes=False, temporal_strides=strides).eval()
    assert temporal_size(T, strides) == expect
    with torch.no_grad():
        out = model(torch.randn(1, 3, T, 32, 32))
    assert out.shape == (1, 64, expect, 2, 2)  # 512 x 0.125 channels
    # strides change no weight: a paper-strided model's state dict loads as is
    paper = r2plus1d_18(width=0.125, ig65m_midplanes=False)
    assert {k: v.shape for k, v in paper.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    model.load_state_dict(paper.state_dict())
    # the temporal stride sits in the temporal conv and the shortcut of each stage's first block, nowhere else
    for i, s in enumerate(strides):
        block = getattr(model, f"layer{i + 2}")[0]
        assert block.conv1[0][3].stride == (s, 1, 1) and block.conv1[0][0].stride == (1, 2, 2)
        assert block.downsample[0].stride == (s, 2, 2)


def test_bad_temporal_strides_are_errors():
    from darkaction.config import ModelConfig
    from darkaction.errors import ConfigError
    from darkaction.models.r2plus1d import build_backbone

    with pytest.raises(ValueError, match="each 1 or 2"):
        r2plus1d_18(width=0.125, temporal_strides=(2, 3, 1))
    with pytest.raises(ConfigError, match="model.temporal_strides"):
        build_backbone(ModelConfig(backbone="r2plus1d_18", temporal_strides=[2, 2]))
