"""3D-ResNeXt-101 (Hara et al., 2018), cardinality 32: a Figure 1 comparison network.

Layer for layer the ResNeXt of okankop/Efficient-3DCNNs `models/resnext.py` (`resnext101`, shortcut type B,
cardinality 32, as its README configures ResNeXt-101), which is kenshohara/3D-ResNets-PyTorch's `models/resnext.py`
(2017-2019 version) unchanged. Shapes for a 16x112x112 clip:

    x (B, C, 16, 112, 112)
      stem    conv 7x7x7 s(1,2,2) p3 -> 64 (no bias), BN, ReLU                        (B,   64, 16, 56, 56)
              max-pool 3x3x3 s2 p1                                                    (B,   64,  8, 28, 28)
      layer1  3 bottlenecks, planes 128,  mid 128,  out 256                           (B,  256,  8, 28, 28)
      layer2  4 bottlenecks, planes 256,  mid 256,  out 512,  first stride 2 in T,H,W (B,  512,  4, 14, 14)
      layer3 23 bottlenecks, planes 512,  mid 512,  out 1024, first stride 2          (B, 1024,  2,  7,  7)
      layer4  3 bottlenecks, planes 1024, mid 1024, out 2048, first stride 2          (B, 2048,  1,  4,  4)
      head    average pool over the whole map -> fc 2048 -> K                         (B, K)

Bottleneck (expansion 2): conv 1x1x1 -> mid, BN, ReLU; grouped conv 3x3x3 (32 groups, the block's stride) -> mid, BN,
ReLU; conv 1x1x1 -> 2 * planes, BN; plus the shortcut, ReLU. mid = 32 * floor(planes / 32). Shortcut B: identity,
except in the first block of every layer (a new channel count or a stride), where it is conv 1x1x1 with the stride
(no bias) + BN. No convolution has a bias; no dropout. Convolutions start from Kaiming-normal (fan_out), BN from
(1, 0). At width 1.0, 16x112x112 and 400 classes (the reference's default, Kinetics-400) the model has 48,340,816
parameters.

`model.width` scales the stem and the planes; the cardinality stays 32, so mid = 32 * max(1, floor(planes w / 32))
(at width 0.25: 32, 64, 128, 256, one to eight channels per group). `model.in_channels`, `model.bn_eps` and
`model.bn_momentum` set the input and every BN (the reference: 3 channels, PyTorch's 1e-5 and 0.1).

Departure: the reference's AvgPool3d has the fixed kernel (ceil(T/16), ceil(H/32), ceil(W/32)) with stride 1, which is
the whole 1x4x4 map at 16x112x112 but leaves a grid (and a wrong fc input size) at any other input; here an adaptive
average pool to 1x1x1 averages the whole map at every size (identical at 16x112x112, no parameters either way).
Shortcut type A (zero-padded identity) of the reference is not built: ResNeXt-101 is configured with B.
"""

from __future__ import annotations

import torch
from torch import nn

from darkaction.models.build import VideoClassifier

DEPTHS = {101: (3, 4, 23, 3)}
PLANES = (128, 256, 512, 1024)
STEM_CHANNELS = 64
CARDINALITY = 32
EXPANSION = 2


def _ch(c: float) -> int:
    return max(1, int(round(c)))


class Bottleneck3d(nn.Module):
    """ResNeXt bottleneck: (B, i, T, H, W) -> (B, 2 * planes, T/s, H/s, W/s), the 3x3x3 conv in `cardinality` groups.

    The shortcut is the identity when shapes match, else conv 1x1x1 (stride s) + BN (shortcut type B).
    """

    def __init__(self, cin: int, planes: int, cardinality: int, stride: int, bn: dict) -> None:
        super().__init__()
        mid = cardinality * max(1, planes // 32)
        cout = planes * EXPANSION
        self.conv1 = nn.Conv3d(cin, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(mid, **bn)
        self.conv2 = nn.Conv3d(mid, mid, 3, stride=stride, padding=1, groups=cardinality, bias=False)
        self.bn2 = nn.BatchNorm3d(mid, **bn)
        self.conv3 = nn.Conv3d(mid, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(cout, **bn)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv3d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm3d(cout, **bn)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class Stem(nn.Sequential):
    """(B, C, T, H, W) -> (B, 64w, T/2, H/4, W/4): conv 7x7x7 s(1,2,2), BN, ReLU, max-pool 3x3x3 s2 (sizes round up)."""

    def __init__(self, cin: int, cout: int, bn: dict) -> None:
        super().__init__(
            nn.Conv3d(cin, cout, 7, stride=(1, 2, 2), padding=3, bias=False),
            nn.BatchNorm3d(cout, **bn),
            nn.ReLU(inplace=True),
            nn.MaxPool3d(3, stride=2, padding=1),
        )


def _layer(cin: int, planes: int, blocks: int, stride: int, bn: dict) -> nn.Sequential:
    return nn.Sequential(
        *[
            Bottleneck3d(cin if i == 0 else planes * EXPANSION, planes, CARDINALITY, stride if i == 0 else 1, bn)
            for i in range(blocks)
        ]
    )


class ResNeXt3DFeatures(nn.Module):
    """Stem and layers 1-4: (B, C, T, H, W) -> (B, 2048w, T/16, H/32, W/32) (sizes round up)."""

    def __init__(
        self,
        depth: int = 101,
        width: float = 1.0,
        in_channels: int = 3,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
    ) -> None:
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError(f"3D-ResNeXt depth must be one of {sorted(DEPTHS)}, got {depth}")
        bn = {"eps": bn_eps, "momentum": bn_momentum}
        self.in_channels = in_channels
        stem = _ch(STEM_CHANNELS * width)
        self.stem = Stem(in_channels, stem, bn)
        cin = stem
        layers = []
        for i, (planes, blocks) in enumerate(zip(PLANES, DEPTHS[depth])):
            scaled = _ch(planes * width)
            layers.append(_layer(cin, scaled, blocks, 1 if i == 0 else 2, bn))
            cin = scaled * EXPANSION
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.out_channels = cin
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected a clip batch (B, {self.in_channels}, T, H, W), got shape {tuple(x.shape)}")
        x = self.stem(x)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class ResNeXt3DHead(nn.Module):
    """(B, c, T', h, w) -> logits (B, K): average over the whole map, then fc (no dropout, as the reference)."""

    attention = None  # no temporal attention to show

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(feats).flatten(1))


class ResNeXt3D(VideoClassifier):
    """forward (B, C, T, H, W) -> logits (B, K); `features(x)` -> layer4's map (B, 2048w, T', h, w)."""

    def __init__(self, backbone: ResNeXt3DFeatures, num_classes: int) -> None:
        super().__init__(backbone, ResNeXt3DHead(backbone.out_channels, num_classes))


def build_resnext3d(cfg, num_classes: int, T: int) -> ResNeXt3D:
    """ModelConfig (backbone == "resnext101_3d") -> 3D-ResNeXt-101; `model.head` does not apply (its own fc).
    Any T >= 1 works (strided, padded convolutions round up)."""
    from darkaction.errors import ConfigError

    if cfg.width <= 0:
        raise ConfigError(f"model.width must be positive (1.0 = ResNeXt-101's 64..2048 channels), got {cfg.width}")
    backbone = ResNeXt3DFeatures(101, cfg.width, cfg.in_channels, cfg.bn_eps, cfg.bn_momentum)
    return ResNeXt3D(backbone, num_classes)
