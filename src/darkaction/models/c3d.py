"""C3D (Tran et al., 2015) with BatchNorm, as Efficient-3DCNNs builds it: a Figure 1 comparison network.

Layer for layer the C3D of okankop/Efficient-3DCNNs `models/c3d.py` (its latest version, whose fully connected
layers have no BatchNorm), the code base the ARID paper's baselines come from. Shapes for a 16x112x112 clip:

    x (B, C, 16, 112, 112)
      group1  conv 3x3x3 -> 64,  BN, ReLU; max-pool k(2,2,2) s(1,2,2)              (B,  64, 15, 56, 56)
      group2  conv -> 128,       BN, ReLU; max-pool k(2,2,2) s(2,2,2)              (B, 128,  7, 28, 28)
      group3  conv -> 256 x 2,   BN, ReLU after each; max-pool k2 s2               (B, 256,  3, 14, 14)
      group4  conv -> 512 x 2,   BN, ReLU after each; max-pool k2 s2               (B, 512,  1,  7,  7)
      group5  conv -> 512 x 2,   BN, ReLU after each; max-pool k(1,2,2) s2 p(0,1,1) (B, 512,  1,  4,  4)
      head    flatten 512*1*4*4 = 8192 -> fc1 4096, ReLU, dropout 0.5 -> fc2 4096, ReLU, dropout 0.5 -> fc -> (B, K)

Every convolution is 3x3x3 with padding 1, stride 1 and a bias (kept although BN follows, as in the reference);
no padding in pools 1-4, so sizes round down. The weights keep PyTorch's default initialisation, as the reference does.
At width 1.0, 16x112x112 and 600 classes (the reference's default, Kinetics-600) the model has 80,459,480 parameters.

`model.width` scales every channel count and the fc width (4096w); `model.in_channels` the input; `model.bn_eps` and
`model.bn_momentum` every BN (the reference uses PyTorch's defaults, 1e-5 and 0.1).

Departure: the reference flattens pool5's map into an fc1 sized for its input (floor(T/16) x ceil(H/32) x ceil(W/32)
cells); here an adaptive average pool brings pool5's map to the 1x4x4 grid it has at 16x112x112 first, so one fc1
(and the reference's parameter count) serves any input size. At 16x112x112 the pool is the identity. The clip must
have at least 9 frames and 16x16 pixels (every max-pool needs at least its kernel).
"""

from __future__ import annotations

import torch
from torch import nn

from darkaction.models.build import VideoClassifier

# (output channels of each 3x3x3 conv) per group, and the max-pool closing the group: (kernel, stride, padding)
GROUPS = ((64,), (128,), (256, 256), (512, 512), (512, 512))
POOLS = (
    ((2, 2, 2), (1, 2, 2), (0, 0, 0)),
    ((2, 2, 2), (2, 2, 2), (0, 0, 0)),
    ((2, 2, 2), (2, 2, 2), (0, 0, 0)),
    ((2, 2, 2), (2, 2, 2), (0, 0, 0)),
    ((1, 2, 2), (2, 2, 2), (0, 1, 1)),
)
FC_WIDTH = 4096
REFERENCE_GRID = (1, 4, 4)  # pool5's map at 16x112x112: floor(16/16) x ceil(112/32) x ceil(112/32)
DROPOUT = 0.5


def _ch(c: float) -> int:
    return max(1, int(round(c)))


def feature_grid(size: tuple[int, int, int]) -> tuple[int, int, int]:
    """(T, H, W) of a clip -> (T', h, w) of pool5's map; ValueError when a max-pool would get less than its kernel."""
    grid = list(size)
    for i, (kernel, stride, pad) in enumerate(POOLS):
        for d in range(3):
            if grid[d] + 2 * pad[d] < kernel[d]:
                raise ValueError(
                    f"C3D: a clip of {size[0]}x{size[1]}x{size[2]} (T x H x W) is too small for max-pool {i + 1}; "
                    "it needs at least 9 frames and 16x16 pixels"
                )
            grid[d] = (grid[d] + 2 * pad[d] - kernel[d]) // stride[d] + 1
    return grid[0], grid[1], grid[2]


class ConvGroup(nn.Sequential):
    """One C3D group: (conv 3x3x3 + bias -> BN -> ReLU) per entry of `channels`, then a max-pool.

    (B, cin, T, H, W) -> (B, channels[-1], T', H', W'), sizes set by the pool.
    """

    def __init__(self, cin: int, channels: tuple[int, ...], pool: tuple, bn: dict) -> None:
        layers: list[nn.Module] = []
        for cout in channels:
            layers += [nn.Conv3d(cin, cout, 3, padding=1), nn.BatchNorm3d(cout, **bn), nn.ReLU()]
            cin = cout
        kernel, stride, pad = pool
        super().__init__(*layers, nn.MaxPool3d(kernel, stride=stride, padding=pad))


class C3DFeatures(nn.Module):
    """The five conv groups: (B, C, T, H, W) -> pool5's map (B, 512w, T', h, w); 16x112x112 -> 1x4x4."""

    def __init__(
        self, width: float = 1.0, in_channels: int = 3, bn_eps: float = 1e-5, bn_momentum: float = 0.1
    ) -> None:
        super().__init__()
        bn = {"eps": bn_eps, "momentum": bn_momentum}
        self.in_channels = in_channels
        cin = in_channels
        groups = []
        for channels, pool in zip(GROUPS, POOLS):
            scaled = tuple(_ch(c * width) for c in channels)
            groups.append(ConvGroup(cin, scaled, pool, bn))
            cin = scaled[-1]
        self.group1, self.group2, self.group3, self.group4, self.group5 = groups
        self.out_channels = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected a clip batch (B, {self.in_channels}, T, H, W), got shape {tuple(x.shape)}")
        feature_grid(tuple(x.shape[2:]))  # a clear error for clips too small for the pools
        for group in (self.group1, self.group2, self.group3, self.group4, self.group5):
            x = group(x)
        return x


class FullyConnected(nn.Sequential):
    """fc1 / fc2 of C3D: Linear -> ReLU -> dropout, (B, i) -> (B, o)."""

    def __init__(self, cin: int, cout: int, dropout: float) -> None:
        super().__init__(nn.Linear(cin, cout), nn.ReLU(), nn.Dropout(dropout))


class C3DHead(nn.Module):
    """(B, c, T', h, w) -> logits (B, K): adaptive average pool to 1x4x4, flatten (16c), fc1, fc2, fc."""

    attention = None  # no temporal attention to show

    def __init__(self, channels: int, num_classes: int, fc_width: int, dropout: float = DROPOUT) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool3d(REFERENCE_GRID)
        cells = REFERENCE_GRID[0] * REFERENCE_GRID[1] * REFERENCE_GRID[2]
        self.fc1 = FullyConnected(channels * cells, fc_width, dropout)
        self.fc2 = FullyConnected(fc_width, fc_width, dropout)
        self.fc = nn.Linear(fc_width, num_classes)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.fc(self.fc2(self.fc1(self.pool(feats).flatten(1))))


class C3D(VideoClassifier):
    """forward (B, C, T, H, W) -> logits (B, K); `features(x)` -> pool5's map (B, 512w, T', h, w)."""

    def __init__(self, backbone: C3DFeatures, num_classes: int, fc_width: int = FC_WIDTH) -> None:
        super().__init__(backbone, C3DHead(backbone.out_channels, num_classes, fc_width))


def build_c3d(cfg, num_classes: int, T: int) -> C3D:
    """ModelConfig (backbone == "c3d") -> C3D; `model.head` does not apply (C3D has its own fc layers)."""
    from darkaction.errors import ConfigError

    if cfg.width <= 0:
        raise ConfigError(f"model.width must be positive (1.0 = C3D's 64..512 channels), got {cfg.width}")
    try:
        feature_grid((T, 16, 16))
    except ValueError:
        raise ConfigError(f"C3D needs sampling.T >= 9 (its max-pools halve time three times), got {T}") from None
    backbone = C3DFeatures(cfg.width, cfg.in_channels, cfg.bn_eps, cfg.bn_momentum)
    return C3D(backbone, num_classes, _ch(FC_WIDTH * cfg.width))
