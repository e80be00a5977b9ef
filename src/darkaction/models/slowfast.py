"""SlowFast (Feichtenhofer et al., 2019): the Table 2 baseline, sized by the same ModelConfig as R(2+1)D.

    x (B, C, T, H, W)
      slow input: every alpha-th frame (B, C, ceil(T/alpha), H, W)      fast input: all T frames
      slow stem: (1,7,7) s(1,2,2) -> 64w                                 fast stem: (5,7,7) s(1,2,2) -> 64w*beta
      lateral fast->slow: Conv3d (5,1,1) stride (alpha,1,1) -> 2*fast channels, concatenated onto the slow pathway
      4 stages of 3D-ResNet basic blocks (depth 18: 2,2,2,2 / 34: 3,4,6,3), spatial stride 2 in stages 2-4;
        slow: 64w..512w channels, temporal kernel 1 in stages 1-2 and 3 in stages 3-4 (the paper's "non-degenerate"
              temporal convolutions only late); fast: beta times the channels, temporal kernel 3 everywhere;
        a lateral connection after the stem and after stages 1-3
      head: global average pool of each pathway, concatenate (512w + 512w*beta), dropout, Linear -> logits (B, K)

Departures from the ImageNet-style SlowFast-R50, made so the feature maps match this project's R(2+1)D (H/16, no
temporal striding): basic blocks instead of bottlenecks (ResNet-18/34 depth), no stem max-pool.
`model.slowfast_alpha` (frame-rate ratio) and `model.slowfast_beta` (channel ratio, 1/8) set the two pathways.
"""

from __future__ import annotations

import torch
from torch import nn

DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
BASE = (64, 128, 256, 512)


def _ch(c: float) -> int:
    return max(1, int(round(c)))


def _conv_bn(cin: int, cout: int, k: tuple[int, int, int], stride: tuple[int, int, int], relu: bool, bn) -> list:
    pad = tuple(x // 2 for x in k)
    mods = [nn.Conv3d(cin, cout, k, stride=stride, padding=pad, bias=False), nn.BatchNorm3d(cout, **bn)]
    return mods + ([nn.ReLU(inplace=True)] if relu else [])


class Block3d(nn.Module):
    """3D basic block: conv (kt,3,3) -> BN -> ReLU -> conv (1,3,3) -> BN, plus the (projected) input, ReLU.

    (B, i, T, H, W) -> (B, o, T, H/s, W/s); the temporal kernel kt is 1 (a per-frame 2D block) or 3.
    """

    def __init__(self, cin: int, cout: int, stride: int, kt: int, bn: dict) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(*_conv_bn(cin, cout, (kt, 3, 3), (1, stride, stride), True, bn))
        self.conv2 = nn.Sequential(*_conv_bn(cout, cout, (1, 3, 3), (1, 1, 1), False, bn))
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(*_conv_bn(cin, cout, (1, 1, 1), (1, stride, stride), False, bn))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + identity)


def _stage(cin: int, cout: int, blocks: int, stride: int, kt: int, bn: dict) -> nn.Sequential:
    return nn.Sequential(
        *[Block3d(cin if i == 0 else cout, cout, stride if i == 0 else 1, kt, bn) for i in range(blocks)]
    )


class Lateral(nn.Sequential):
    """Fast -> slow fusion: (B, c, T, H, W) -> (B, 2c, ceil(T/alpha), H, W) by a (5,1,1) conv with temporal stride
    alpha, so its output lines up frame for frame with the slow pathway (which took every alpha-th frame)."""

    def __init__(self, c: int, alpha: int, bn: dict) -> None:
        super().__init__(*_conv_bn(c, 2 * c, (5, 1, 1), (alpha, 1, 1), True, bn))


class SlowFastBackbone(nn.Module):
    """(B, C, T, H, W) -> (slow (B, 512w, ceil(T/alpha), h, w), fast (B, 512w*beta, T, h, w)), h = ceil(H/16)."""

    def __init__(
        self,
        depth: int = 18,
        width: float = 1.0,
        alpha: int = 8,
        beta: float = 0.125,
        in_channels: int = 3,
        bn_eps: float = 1e-3,
        bn_momentum: float = 0.1,
    ) -> None:
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError(f"SlowFast depth must be one of {sorted(DEPTHS)}, got {depth}")
        if alpha < 1 or not 0 < beta <= 1:
            raise ValueError(f"SlowFast needs alpha >= 1 and 0 < beta <= 1, got alpha={alpha}, beta={beta}")
        bn = {"eps": bn_eps, "momentum": bn_momentum}
        self.alpha = alpha
        self.in_channels = in_channels
        slow = [_ch(c * width) for c in BASE]
        fast = [_ch(c * width * beta) for c in BASE]
        self.slow_stem = nn.Sequential(*_conv_bn(in_channels, slow[0], (1, 7, 7), (1, 2, 2), True, bn))
        self.fast_stem = nn.Sequential(*_conv_bn(in_channels, fast[0], (5, 7, 7), (1, 2, 2), True, bn))
        # lateral i reads the fast map entering stage i: the stem output (i = 0) or stage i-1 output
        self.laterals = nn.ModuleList([Lateral(fast[max(i - 1, 0)], alpha, bn) for i in range(4)])
        self.slow_stages = nn.ModuleList()
        self.fast_stages = nn.ModuleList()
        for i, blocks in enumerate(DEPTHS[depth]):
            stride = 1 if i == 0 else 2
            slow_in = (slow[i - 1] if i else slow[0]) + 2 * (fast[i - 1] if i else fast[0])
            fast_in = fast[i - 1] if i else fast[0]
            self.slow_stages.append(_stage(slow_in, slow[i], blocks, stride, 1 if i < 2 else 3, bn))
            self.fast_stages.append(_stage(fast_in, fast[i], blocks, stride, 3, bn))
        self.slow_channels, self.fast_channels = slow[-1], fast[-1]
        self.out_channels = slow[-1] + fast[-1]
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 5 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected a clip batch (B, {self.in_channels}, T, H, W), got shape {tuple(x.shape)}")
        s = self.slow_stem(x[:, :, :: self.alpha])
        f = self.fast_stem(x)
        for i in range(4):
            # the lateral after the stem and after stages 1-3 feeds stages 1-4 of the slow pathway
            s = self.slow_stages[i](torch.cat([s, self.laterals[i](f)], dim=1))
            f = self.fast_stages[i](f)
        return s, f


class SlowFastHead(nn.Module):
    """(slow (B, Cs, Ts, h, w), fast (B, Cf, T, h, w)) -> logits (B, K): pooled pathways concatenated, dropout, fc."""

    attention = None  # no temporal attention to show (the BERT head's CLS attention has no SlowFast equivalent)

    def __init__(self, channels: int, num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, feats: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        pooled = torch.cat([f.mean(dim=(2, 3, 4)) for f in feats], dim=1)
        return self.fc(self.dropout(pooled))


class SlowFast(nn.Module):
    """forward (B, C, T, H, W) -> logits (B, K); `features(x)` -> (slow map, fast map)."""

    def __init__(self, backbone: SlowFastBackbone, num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = SlowFastHead(backbone.out_channels, num_classes, dropout)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def build_slowfast(cfg, num_classes: int, T: int) -> SlowFast:
    """ModelConfig (backbone == "slowfast") -> SlowFast. T (frames per clip) must give the slow pathway >= 1 frame."""
    from darkaction.errors import ConfigError

    if cfg.slowfast_depth not in DEPTHS:
        raise ConfigError(f"model.slowfast_depth must be 18 or 34, got {cfg.slowfast_depth}")
    if cfg.slowfast_alpha < 1 or cfg.slowfast_alpha > T:
        raise ConfigError(f"model.slowfast_alpha must be between 1 and sampling.T={T}, got {cfg.slowfast_alpha}")
    if not 0 < cfg.slowfast_beta <= 1:
        raise ConfigError(f"model.slowfast_beta must be in (0, 1] (paper: 0.125), got {cfg.slowfast_beta}")
    backbone = SlowFastBackbone(
        cfg.slowfast_depth, cfg.width, cfg.slowfast_alpha, cfg.slowfast_beta, cfg.in_channels, cfg.bn_eps,
        cfg.bn_momentum,
    )  # fmt: skip
    return SlowFast(backbone, num_classes)
