"""EfficientNet-B0 (Tan & Le, 2019) on every frame, with the BERT head over time: Table 3's "Efficient-Net BERT".

    x (B, C, T, H, W) -> frames (B*T, C, H, W)
      stem   3x3 s2 conv -> 32, BN, swish                                      (B*T, 32, H/2, W/2)
      7 stages of MBConv (expand 1x1, depthwise kxk, squeeze-excitation, project 1x1, residual when shapes match):
        stage  expand  kernel  stride  channels  repeats
          1      1       3       1       16        1
          2      6       3       2       24        2
          3      6       5       2       40        2
          4      6       3       2       80        3
          5      6       5       1      112        3
          6      6       5       2      192        4
          7      6       3       1      320        1
      head   1x1 conv -> 1280, BN, swish                                       (B*T, 1280, H/32, W/32)
    -> spatial mean -> tokens (B, T, 1280) -> BERT head -> logits (B, K)

`model.width` multiplies every channel count (rounded to a multiple of 8, as the EfficientNet code does); 1.0 is B0.
The feature extractor at width 1.0 has 4,007,548 parameters: B0's published 5,288,548 minus its 1000-class classifier
(1280 * 1000 + 1000). Squeeze-excitation squeezes to a quarter of the block's *input* channels; BatchNorm uses eps 1e-3;
stochastic depth grows linearly to `model.efficientnet_dropout` (B0: 0.2) over the blocks.
"""

from __future__ import annotations

import torch
from torch import nn

# (expand ratio, kernel, stride, output channels, repeats) for B0
B0_STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BN = {"eps": 1e-3, "momentum": 0.01}  # TF's BN decay 0.99 in PyTorch's convention


def round_channels(c: float, width: float, divisor: int = 8) -> int:
    """c * width rounded to the nearest multiple of `divisor`, never below 90 % of c * width nor below `divisor`."""
    scaled = c * width
    out = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if out < 0.9 * scaled:
        out += divisor
    return out


def _conv_bn_act(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    mods = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout, **BN)]
    return nn.Sequential(*mods, nn.SiLU(inplace=True)) if act else nn.Sequential(*mods)


class SqueezeExcite(nn.Module):
    """(N, C, H, W) -> (N, C, H, W): global mean -> 1x1 conv to `squeeze` -> swish -> 1x1 conv -> sigmoid gate."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeeze, 1)
        self.expand = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = nn.functional.silu(self.reduce(x.mean(dim=(2, 3), keepdim=True)))
        return x * torch.sigmoid(self.expand(g))


class MBConv(nn.Module):
    """Mobile inverted bottleneck: (N, i, H, W) -> (N, o, H/s, W/s); residual + stochastic depth when s = 1, i = o."""

    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int, drop: float) -> None:
        super().__init__()
        mid = cin * expand
        layers = [] if expand == 1 else [_conv_bn_act(cin, mid, 1)]
        layers += [
            _conv_bn_act(mid, mid, kernel, stride, groups=mid),
            SqueezeExcite(mid, max(1, int(cin * 0.25))),
            _conv_bn_act(mid, cout, 1, act=False),
        ]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout
        self.drop = drop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        if not self.residual:
            return out
        if self.training and self.drop > 0:
            # stochastic depth: drop the whole residual branch per sample, rescale the survivors
            keep = torch.rand(out.shape[0], 1, 1, 1, device=out.device) >= self.drop
            out = out * keep.to(out.dtype) / (1.0 - self.drop)
        return x + out


class EfficientNetFeatures(nn.Module):
    """EfficientNet-B0 without its classifier: (N, C, H, W) -> (N, out_channels, H/32, W/32)."""

    def __init__(self, width: float = 1.0, in_channels: int = 3, drop_path: float = 0.2) -> None:
        super().__init__()
        stem = round_channels(STEM_CHANNELS, width)
        self.stem = _conv_bn_act(in_channels, stem, 3, 2)
        total = sum(r for *_, r in B0_STAGES)
        blocks, cin, i = [], stem, 0
        for expand, kernel, stride, channels, repeats in B0_STAGES:
            cout = round_channels(channels, width)
            stage = []
            for r in range(repeats):
                stage.append(MBConv(cin, cout, expand, kernel, stride if r == 0 else 1, drop_path * i / total))
                cin, i = cout, i + 1
            blocks.append(nn.Sequential(*stage))
        self.stages = nn.Sequential(*blocks)
        self.out_channels = round_channels(HEAD_CHANNELS, width)
        self.head = _conv_bn_act(cin, self.out_channels, 1)
        self.in_channels = in_channels
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


class EfficientNetBert(nn.Module):
    """EfficientNet-B0 per frame + BERT over the T frame features.

    forward (B, C, T, H, W) -> logits (B, K); `features(x)` -> (B, D, T, h, w), the per-frame maps stacked in time.
    """

    def __init__(self, backbone: EfficientNetFeatures, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[1] != self.backbone.in_channels:
            raise ValueError(
                f"expected a clip batch (B, {self.backbone.in_channels}, T, H, W), got shape {tuple(x.shape)}"
            )
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)
        maps = self.backbone(frames)
        return maps.reshape(b, t, *maps.shape[1:]).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_efficientnet_bert(cfg, num_classes: int, T: int) -> EfficientNetBert:
    """ModelConfig (backbone == "efficientnet_b0") -> EfficientNetBert; the BERT head takes all T frame tokens."""
    from darkaction.errors import ConfigError
    from darkaction.models.bert import BertHead

    if cfg.width <= 0:
        raise ConfigError(f"model.width must be positive (1.0 = EfficientNet-B0), got {cfg.width}")
    backbone = EfficientNetFeatures(cfg.width, cfg.in_channels, cfg.efficientnet_dropout)
    head = BertHead.from_config(cfg, backbone.out_channels, num_classes, T, max_len=T)  # one token per frame
    return EfficientNetBert(backbone, head)
