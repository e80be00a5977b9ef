"""SlowFast: pathway shapes, lateral connections, config checks, forward + backward on tiny clips."""

import pytest
import torch

from darkaction.config import ModelConfig
from darkaction.errors import ConfigError
from darkaction.models.slowfast import SlowFastBackbone, build_slowfast


def _cfg(**kw) -> ModelConfig:
    base = {"backbone": "slowfast", "width": 0.25, "slowfast_alpha": 4, "slowfast_depth": 18}
    return ModelConfig(**{**base, **kw})


def test_pathway_shapes_and_channel_ratio():
    bb = SlowFastBackbone(depth=18, width=0.5, alpha=4, beta=0.125)
    slow, fast = bb(torch.randn(2, 3, 16, 32, 32))
    assert slow.shape == (2, 256, 4, 2, 2)  # 512 * 0.5 channels, 16 / 4 frames, 32 / 16 pixels
    assert fast.shape == (2, 32, 16, 2, 2)  # beta = 1/8 of the slow channels, every frame
    assert bb.out_channels == 256 + 32


def test_slow_pathway_rounds_frames_up_and_laterals_line_up():
    bb = SlowFastBackbone(depth=18, width=0.25, alpha=4)
    slow, fast = bb(torch.randn(1, 3, 10, 32, 32))
    assert slow.shape[2] == 3 and fast.shape[2] == 10  # ceil(10 / 4) = 3


def test_lateral_connections_carry_fast_information_into_the_slow_pathway():
    torch.manual_seed(0)
    bb = SlowFastBackbone(depth=18, width=0.25, alpha=4).eval()
    x = torch.randn(1, 3, 8, 32, 32)
    y = x.clone()
    y[:, :, 1] += 1.0  # frame 1 is only seen by the fast pathway (the slow one takes frames 0 and 4)
    with torch.no_grad():
        s1, _ = bb(x)
        s2, _ = bb(y)
    assert not torch.allclose(s1, s2)


def test_build_forward_backward_and_depth_34():
    model = build_slowfast(_cfg(), num_classes=6, T=8)
    x = torch.randn(2, 3, 8, 32, 32)
    logits = model(x)
    assert logits.shape == (2, 6)
    logits.sum().backward()
    assert model.backbone.laterals[0][0].weight.grad is not None
    assert model.head.attention is None
    deep = build_slowfast(_cfg(slowfast_depth=34), 6, 8)
    n18 = sum(p.numel() for p in model.parameters())
    n34 = sum(p.numel() for p in deep.parameters())
    assert n34 > 1.5 * n18


def test_five_channel_input():
    model = build_slowfast(_cfg(in_channels=5), 4, 8)
    assert model(torch.randn(1, 5, 8, 32, 32)).shape == (1, 4)
    with pytest.raises(ValueError, match="5, T, H, W"):
        model(torch.randn(1, 3, 8, 32, 32))


@pytest.mark.parametrize(("kw", "msg"), [({"slowfast_alpha": 16}, "alpha"), ({"slowfast_depth": 50}, "depth"),
                                         ({"slowfast_beta": 0.0}, "beta")])  # fmt: skip
def test_bad_settings_are_config_errors(kw, msg):
    with pytest.raises(ConfigError, match=msg):
        build_slowfast(_cfg(**kw), 6, 8)
