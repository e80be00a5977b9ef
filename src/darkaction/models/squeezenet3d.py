"""3D-SqueezeNet 1.1 (Iandola et al., 2016, inflated to 3D by Kopuklu et al., 2019): a Figure 1 comparison network.

Layer for layer the SqueezeNet of okankop/Efficient-3DCNNs `models/squeezenet.py` at `version=1.1` (the default of
its opts.py and the version its README configures). Shapes for a 16x112x112 clip:

    x (B, C, 16, 112, 112)
      stem     conv 3x3x3 s(1,2,2) p1 -> 64 (with bias), BN, ReLU            (B,  64, 16, 56, 56)
      pool     max-pool 3x3x3 s2 p1                                         (B,  64,  8, 28, 28)
      fire2    squeeze 16, expand 64 + 64                                   (B, 128,  8, 28, 28)
      fire3    squeeze 16, expand 64 + 64, bypass
      pool                                                                  (B, 128,  4, 14, 14)
      fire4    squeeze 32, expand 128 + 128                                 (B, 256,  4, 14, 14)
      fire5    squeeze 32, expand 128 + 128, bypass
      pool                                                                  (B, 256,  2,  7,  7)
      fire6    squeeze 48, expand 192 + 192                                 (B, 384,  2,  7,  7)
      fire7    squeeze 48, expand 192 + 192, bypass
      pool                                                                  (B, 384,  1,  4,  4)
      fire8    squeeze 64, expand 256 + 256                                 (B, 512,  1,  4,  4)
      fire9    squeeze 64, expand 256 + 256, bypass
      head     dropout 0.5, conv 1x1x1 -> K (with bias), ReLU, average pool over the whole map -> (B, K)

Fire module: conv 1x1x1 squeeze, BN, ReLU; then in parallel conv 1x1x1 and conv 3x3x3 (padding 1) expands, each with
BN; concatenate; add the input (bypass, in fire 3, 5, 7, 9 where shapes match); ReLU. Every convolution has a bias
(kept although BN follows, as in the reference). The logits come out of a ReLU, as in the reference: they are never
negative. Convolutions start from Kaiming-normal (fan_out), their biases from PyTorch's default, BN from (1, 0).
At width 1.0, 16x112x112 and 600 classes (the reference's default, Kinetics-600) the model has 2,145,560 parameters.

`model.width` scales every channel count; `model.in_channels`, `model.bn_eps` and `model.bn_momentum` set the input
and every BN (the reference: 3 channels, PyTorch's 1e-5 and 0.1).

Departure: the reference's final AvgPool3d has the fixed kernel (ceil(T/16), ceil(H/32), ceil(W/32)) with stride 1, the
whole 1x4x4 map at 16x112x112 but a grid of several cells (and logits of the wrong shape) at other input sizes; here an
adaptive average pool to 1x1x1 averages the whole map at every size (identical at 16x112x112). SqueezeNet 1.0 (7x7x7
stem, 96 channels, pools in other places), the reference's other version, is not built.
"""

from __future__ import annotations

import torch
from torch import nn

from darkaction.models.build import VideoClassifier

STEM_CHANNELS = 64
# (squeeze, expand 1x1x1, expand 3x3x3, bypass) per Fire module, "pool" for a 3x3x3 stride-2 max-pool (version 1.1)
LAYOUT = (
    "pool",
    (16, 64, 64, False),
    (16, 64, 64, True),
    "pool",
    (32, 128, 128, False),
    (32, 128, 128, True),
    "pool",
    (48, 192, 192, False),
    (48, 192, 192, True),
    "pool",
    (64, 256, 256, False),
    (64, 256, 256, True),
)
DROPOUT = 0.5


def _ch(c: float) -> int:
    return max(1, int(round(c)))


class Fire3d(nn.Module):
    """(B, i, T, H, W) -> (B, e1 + e3, T, H, W): squeeze 1x1x1, then 1x1x1 and 3x3x3 expands side by side, each with
    BN; the input is added before the last ReLU when `bypass` (needs i == e1 + e3)."""

    def __init__(self, cin: int, squeeze: int, expand1: int, expand3: int, bypass: bool, bn: dict) -> None:
        super().__init__()
        if bypass and cin != expand1 + expand3:
            raise ValueError(f"a Fire bypass needs input channels {cin} == {expand1} + {expand3}")
        self.bypass = bypass
        self.squeeze = nn.Conv3d(cin, squeeze, 1)
        self.squeeze_bn = nn.BatchNorm3d(squeeze, **bn)
        self.expand1x1 = nn.Conv3d(squeeze, expand1, 1)
        self.expand1x1_bn = nn.BatchNorm3d(expand1, **bn)
        self.expand3x3 = nn.Conv3d(squeeze, expand3, 3, padding=1)
        self.expand3x3_bn = nn.BatchNorm3d(expand3, **bn)
        self.relu = nn.ReLU(inplace=True)
        self.out_channels = expand1 + expand3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.relu(self.squeeze_bn(self.squeeze(x)))
        out = torch.cat([self.expand1x1_bn(self.expand1x1(s)), self.expand3x3_bn(self.expand3x3(s))], dim=1)
        return self.relu(out + x if self.bypass else out)


class SqueezeNet3DFeatures(nn.Module):
    """Stem, four max-pools and eight Fire modules: (B, C, T, H, W) -> (B, 512w, T/16, H/32, W/32) (sizes round up)."""

    def __init__(
        self, width: float = 1.0, in_channels: int = 3, bn_eps: float = 1e-5, bn_momentum: float = 0.1
    ) -> None:
        super().__init__()
        bn = {"eps": bn_eps, "momentum": bn_momentum}
        self.in_channels = in_channels
        stem = _ch(STEM_CHANNELS * width)
        layers: list[nn.Module] = [
            nn.Conv3d(in_channels, stem, 3, stride=(1, 2, 2), padding=1),
            nn.BatchNorm3d(stem, **bn),
            nn.ReLU(inplace=True),
        ]
        cin = stem
        for entry in LAYOUT:
            if entry == "pool":
                layers.append(nn.MaxPool3d(3, stride=2, padding=1))
                continue
            squeeze, expand1, expand3, bypass = entry
            fire = Fire3d(cin, _ch(squeeze * width), _ch(expand1 * width), _ch(expand3 * width), bypass, bn)
            layers.append(fire)
            cin = fire.out_channels
        self.layers = nn.Sequential(*layers)
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
        return self.layers(x)


class SqueezeNet3DHead(nn.Module):
    """(B, c, T', h, w) -> logits (B, K): dropout, conv 1x1x1 to K classes, ReLU, average over the whole map."""

    attention = None  # no temporal attention to show

    def __init__(self, channels: int, num_classes: int, dropout: float = DROPOUT) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.conv = nn.Conv3d(channels, num_classes, 1)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool3d(1)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.pool(self.relu(self.conv(self.dropout(feats)))).flatten(1)


class SqueezeNet3D(VideoClassifier):
    """forward (B, C, T, H, W) -> logits (B, K); `features(x)` -> fire9's map (B, 512w, T', h, w)."""

    def __init__(self, backbone: SqueezeNet3DFeatures, num_classes: int) -> None:
        super().__init__(backbone, SqueezeNet3DHead(backbone.out_channels, num_classes))


def build_squeezenet3d(cfg, num_classes: int, T: int) -> SqueezeNet3D:
    """ModelConfig (backbone == "squeezenet_3d") -> 3D-SqueezeNet 1.1; `model.head` does not apply (its own conv
    classifier). Any T >= 1 works (padded pools round up)."""
    from darkaction.errors import ConfigError

    if cfg.width <= 0:
        raise ConfigError(f"model.width must be positive (1.0 = SqueezeNet 1.1's channels), got {cfg.width}")
    backbone = SqueezeNet3DFeatures(cfg.width, cfg.in_channels, cfg.bn_eps, cfg.bn_momentum)
    return SqueezeNet3D(backbone, num_classes)
