"""EfficientNet-B0 per frame + BERT: B0's parameter count, channel rounding, shapes, forward + backward."""

import pytest
import torch
from torch import nn

from darkaction.config import ModelConfig
from darkaction.models.efficientnet import EfficientNetFeatures, build_efficientnet_bert, round_channels

B0_TOTAL_IMAGENET = 5_288_548  # published EfficientNet-B0 parameters with its 1000-class classifier


def _n(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_b0_feature_extractor_parameter_count_matches_published_b0():
    feats = EfficientNetFeatures(width=1.0)
    assert feats.out_channels == 1280
    classifier = 1280 * 1000 + 1000
    assert _n(feats) == B0_TOTAL_IMAGENET - classifier == 4_007_548


def test_channel_rounding():
    assert [round_channels(c, 1.0) for c in (32, 16, 24, 40, 80, 112, 192, 320, 1280)] == [
        32, 16, 24, 40, 80, 112, 192, 320, 1280,
    ]  # fmt: skip
    assert round_channels(112, 0.25) == 32  # 28 rounds up to a multiple of 8
    assert round_channels(16, 0.25) == 8  # never below the divisor


def test_feature_map_stride_32():
    feats = EfficientNetFeatures(width=0.25).eval()
    with torch.no_grad():
        out = feats(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, feats.out_channels, 2, 2)


def test_efficientnet_bert_forward_backward_and_order_sensitivity():
    cfg = ModelConfig(backbone="efficientnet_b0", width=0.25, bert_hidden=32, bert_heads=4, bert_ffn=64)
    model = build_efficientnet_bert(cfg, num_classes=6, T=4)
    x = torch.randn(2, 3, 4, 32, 32)
    assert model.features(x).shape == (2, model.backbone.out_channels, 4, 1, 1)
    logits = model(x)
    assert logits.shape == (2, 6)
    logits.sum().backward()
    assert model.backbone.stem[0].weight.grad is not None
    # An untrained net in eval mode uses BN running stats that never saw data, so compare in train mode (batch
    # statistics) with the same random draws, and the head in eval mode (no token masking, no dropout).
    model.head.eval()
    with torch.no_grad():
        torch.manual_seed(1)
        a = model(x)
        torch.manual_seed(1)
        b = model(x.flip(2))  # positional embeddings: time-reversed clips get different logits
        assert model.features(x).std() > 0.1  # activations neither vanish nor explode through the 16 blocks
    assert not torch.allclose(a, b)
    assert model.head.attention.shape == (2, 4)


def test_wrong_channels_is_a_clear_error():
    model = build_efficientnet_bert(ModelConfig(width=0.25, bert_hidden=32, bert_heads=4), 3, T=2)
    with pytest.raises(ValueError, match="3, T, H, W"):
        model(torch.randn(1, 5, 2, 32, 32))
