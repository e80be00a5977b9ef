"""R(2+1)D-18/34 video ResNets in torchvision's `VideoResNet` layout (so torchvision and IG65M weights load as is).

    x (B, C_in, T, H, W)
      stem:   Conv3d C_in->45 (1,7,7) s(1,2,2), BN, ReLU, Conv3d 45->64 (3,1,1), BN, ReLU  -> (B, 64,  T,   H/2,  W/2)
      layer1: BasicBlock x n1                                                         -> (B, 64,  T,   H/2,  W/2)
      layer2: BasicBlock x n2, first block stride 2 in T, H, W                        -> (B, 128, T/2, H/4,  W/4)
      layer3: BasicBlock x n3, stride 2                                               -> (B, 256, T/4, H/8,  W/8)
      layer4: BasicBlock x n4, stride 2                                               -> (B, 512, T/8, H/16, W/16)
      [avgpool + fc, only for a classification model in torchvision's layout]

with n = [2, 2, 2, 2] for depth 18 and [3, 4, 6, 3] for depth 34; 64x112x112 -> 512x8x7x7 (sizes round up).
The temporal strides of layers 2-4 are (2, 2, 2) as in torchvision and the paper; `temporal_strides` changes them so
that a short CPU-sized clip keeps the paper's number of time steps for the BERT head (T=16 with (2, 1, 1) -> 8, as
T=64 with (2, 2, 2)). Strides change no weight shape, so weights load whatever the strides.
Every 3x3x3 convolution is factorised into a (1,3,3) spatial convolution to `mid` channels, BN, ReLU and a (3,1,1)
temporal convolution (`Conv2Plus1D`). torchvision picks one `mid` per block,
floor(27 i o / (9 i + 3 o)) for block input i and output o, so that the factorised pair has about as many parameters
as the 3x3x3 convolution it replaces; the IG65M R(2+1)D-34 (converted from Caffe2) computes the second convolution's
`mid` from (o, o) instead, which differs only in block 0 of layers 2-4 (288/576/1152 instead of 230/460/921).

State-dict names are torchvision's: `stem.{0,1,3,4}`, `layerL.B.conv1.0.{0,1,3}` (spatial conv, its BN, temporal conv),
`layerL.B.conv1.1` (BN), `layerL.B.conv2.0.{0,1,3}`, `layerL.B.conv2.1`, `layerL.B.downsample.{0,1}`, `fc`. The SE
variant adds `layerL.B.se.*`, which pretrained files do not have (reported as missing by `load_pretrained`).

    backbone = r2plus1d(34, ig65m_midplanes=True)       # feature extractor, forward -> (B, 512, T', h, w)
    tv18 = r2plus1d(18, ig65m_midplanes=False, num_classes=400, bn_eps=1e-5)  # torchvision's r2plus1d_18
"""

from __future__ import annotations

import typing
from collections.abc import Sequence

import torch
from torch import nn

from darkaction.config import SEKind

DEPTHS: dict[int, tuple[int, int, int, int]] = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
BASE_CHANNELS = (64, 128, 256, 512)
STEM_MID = 45  # the stem's (2+1)D split: 3x7x7x64 ~ 3*7*7*45 + 45*3*64 parameters


def scaled(channels: int, width: float) -> int:
    """Channel count times the width multiplier, at least 1 (width 0.25: 64..512 -> 16..128, stem 45 -> 11)."""
    return max(1, int(round(channels * width)))


def midplanes(inplanes: int, planes: int) -> int:
    """torchvision's mid-channel rule: the (2+1)D pair keeps the parameter count of a full 3x3x3 conv."""
    return (inplanes * planes * 3 * 3 * 3) // (inplanes * 3 * 3 + 3 * planes)


PAPER_TEMPORAL_STRIDES = (2, 2, 2)


def temporal_size(T: int, strides: Sequence[int] = PAPER_TEMPORAL_STRIDES) -> int:
    """Frames after the backbone (the BERT head's time steps): layers 2-4 convolve over time with kernel 3, pad 1
    and these strides -> ceil(T / 8) for the paper's (2, 2, 2)."""
    for s in strides:
        T = (T - 1) // s + 1
    return T


def spatial_size(size: int) -> int:
    """Height or width after the backbone: stride 2 in the stem and in layers 2-4 (112 -> 7, 64 -> 4)."""
    size = (size + 2 * 3 - 7) // 2 + 1
    for _ in range(3):
        size = (size - 1) // 2 + 1
    return size


def _bn(channels: int, eps: float, momentum: float) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(channels, eps=eps, momentum=momentum)


class TemporalConv3d(nn.Conv3d):
    """The (3,1,1) temporal convolution. A plain Conv3d, except one case: on CPU under bf16 autocast, oneDNN's
    weight gradient for a stride-1 temporal conv over exactly 2 time steps comes out non-finite (torch 2.13;
    `tests/test_r2plus1d.py` checks it), which hits CPU-sized clips (T=16 -> T'=2 in layer4). That case runs in fp32.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[2] == 2 and self.stride[0] == 1 and x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            with torch.autocast("cpu", enabled=False):
                return super().forward(x.float())
        return super().forward(x)


class Conv2Plus1D(nn.Sequential):
    """(1,3,3) spatial conv -> BN -> ReLU -> (3,1,1) temporal conv: (B, i, T, H, W) -> (B, o, T/s, H/s, W/s).

    Indices 0, 1, 3 are the weights (`.0` spatial conv, `.1` BN, `.3` temporal conv), as in torchvision.
    """

    def __init__(
        self,
        inplanes: int,
        planes: int,
        mid: int,
        stride: int = 1,
        bn_eps: float = 1e-3,
        bn_momentum: float = 0.1,
        temporal_stride: int | None = None,
    ) -> None:
        t_stride = stride if temporal_stride is None else temporal_stride
        super().__init__(
            nn.Conv3d(inplanes, mid, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), bias=False),
            _bn(mid, bn_eps, bn_momentum),
            nn.ReLU(inplace=True),
            TemporalConv3d(mid, planes, (3, 1, 1), stride=(t_stride, 1, 1), padding=(1, 0, 0), bias=False),
        )


class SqueezeExcitation3d(nn.Module):
    """Channel attention (Hu et al.): global average over T, H, W -> C/r -> ReLU -> C -> sigmoid, scales the input.

    (B, C, T, H, W) -> (B, C, T, H, W). 1x1x1 convolutions keep the gate in the feature map's layout.
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Conv3d(channels, hidden, 1)
        self.fc2 = nn.Conv3d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = x.mean(dim=(2, 3, 4), keepdim=True)
        gate = torch.sigmoid(self.fc2(torch.relu(self.fc1(gate))))
        return x * gate


class TemporalExcitation3d(nn.Module):
    """Attention along time (Table 2's SE row: "attention along the time dimension"): squeeze each time step over
    channels and space, gate every time step.

    (B, C, T, H, W) -> spatial mean (B, C, T) -> 1x1 Conv1d C -> C/r, ReLU -> Conv1d C/r -> 1 over 3 neighbouring
    steps -> sigmoid: one gate per (clip, time step), shared by all channels and positions. Convolutions over time
    keep it independent of the clip length.
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Conv1d(channels, hidden, 1)
        self.fc2 = nn.Conv1d(hidden, 1, 3, padding=1)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> gates (B, 1, T, 1, 1) in (0, 1)."""
        z = x.mean(dim=(3, 4))
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(z))))[..., None, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


SE_KINDS = typing.get_args(SEKind)


def squeeze_excitation(kind: bool | str, channels: int) -> nn.Module | None:
    """The block's SE module: False / "" = none; True or "temporal" = TemporalExcitation3d; "channel" = channel SE."""
    if kind is False or kind in ("", None):
        return None
    kind = "temporal" if kind is True else str(kind)
    if kind not in SE_KINDS:
        raise ValueError(f"se kind must be one of {', '.join(SE_KINDS)}, got {kind!r}")
    return TemporalExcitation3d(channels) if kind == "temporal" else SqueezeExcitation3d(channels)


class BasicBlock(nn.Module):
    """Two Conv2Plus1D convolutions with a residual connection: (B, i, T, H, W) -> (B, o, T/s, H/s, W/s).

    `mid2` lets the IG65M layout give the second convolution its own mid-channel count; `se` puts a
    Squeeze-Excitation gate on the residual branch after the second convolution (before the sum, as in SE-ResNet).
    `temporal_stride` (default: `stride`) is the first convolution's stride over time.
    """

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        mid1: int | None = None,
        mid2: int | None = None,
        se: bool | str = False,
        bn_eps: float = 1e-3,
        bn_momentum: float = 0.1,
        temporal_stride: int | None = None,
    ) -> None:
        super().__init__()
        mid1 = midplanes(inplanes, planes) if mid1 is None else mid1
        mid2 = mid1 if mid2 is None else mid2
        self.conv1 = nn.Sequential(
            Conv2Plus1D(inplanes, planes, mid1, stride, bn_eps, bn_momentum, temporal_stride),
            _bn(planes, bn_eps, bn_momentum),
            nn.ReLU(inplace=True),
        )
        self.conv2 = nn.Sequential(
            Conv2Plus1D(planes, planes, mid2, 1, bn_eps, bn_momentum),
            _bn(planes, bn_eps, bn_momentum),
        )
        self.se = squeeze_excitation(se, planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.conv2(self.conv1(x))
        if self.se is not None:
            out = self.se(out)
        return self.relu(out + identity)


class R2Plus1DStem(nn.Sequential):
    """(B, C_in, T, H, W) -> (B, 64w, T, H/2, W/2): the stem is itself (2+1)D: a 1x7x7 conv to 45w, then 3x1x1."""

    def __init__(
        self, in_channels: int = 3, mid: int = STEM_MID, out: int = 64, bn_eps: float = 1e-3, bn_momentum: float = 0.1
    ) -> None:
        super().__init__(
            nn.Conv3d(in_channels, mid, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
            _bn(mid, bn_eps, bn_momentum),
            nn.ReLU(inplace=True),
            nn.Conv3d(mid, out, (3, 1, 1), stride=(1, 1, 1), padding=(1, 0, 0), bias=False),
            _bn(out, bn_eps, bn_momentum),
            nn.ReLU(inplace=True),
        )


class R2Plus1D(nn.Module):
    """An R(2+1)D ResNet in torchvision's VideoResNet layout.

    Without `num_classes` it is a feature extractor: forward (B, C_in, T, H, W) -> (B, out_channels, T', h, w) with
    T' = ceil(T/8) (default temporal strides), h = ceil(H/16) (`temporal_size`, `spatial_size`). With `num_classes`
    it also has torchvision's
    `avgpool` + `fc` and forward returns logits (B, num_classes), like torchvision's `r2plus1d_18`; `features(x)`
    always returns the feature map.

    Args:
        layers: blocks per stage, (2,2,2,2) for depth 18, (3,4,6,3) for 34.
        width: channel multiplier (1.0 = 64..512 and a 45-channel stem mid).
        ig65m_midplanes: the IG65M/Caffe2 mid-channel counts for the second conv of each block.
        se: Squeeze-Excitation in every block: False, True / "temporal" (a gate per time step) or "channel".
        in_channels: 3 (RGB) or 5 (RGB + 2 optical-flow channels).
        bn_eps: 1e-3 as in IG65M (torchvision's own weights used 1e-5).
        bn_momentum: PyTorch convention (0.1 = the running mean moves 10 % towards each batch).
        temporal_strides: strides over time of layers 2-4, each 1 or 2 (paper and torchvision: 2, 2, 2).
    """

    def __init__(
        self,
        layers: Sequence[int] = DEPTHS[34],
        width: float = 1.0,
        ig65m_midplanes: bool = True,
        se: bool | str = False,
        in_channels: int = 3,
        bn_eps: float = 1e-3,
        bn_momentum: float = 0.1,
        num_classes: int | None = None,
        temporal_strides: Sequence[int] = PAPER_TEMPORAL_STRIDES,
    ) -> None:
        super().__init__()
        temporal_strides = tuple(int(s) for s in temporal_strides)
        if len(temporal_strides) != 3 or any(s not in (1, 2) for s in temporal_strides):
            raise ValueError(f"temporal_strides: give 3 (layers 2-4), each 1 or 2, got {list(temporal_strides)}")
        self.temporal_strides = temporal_strides
        if len(layers) != 4 or any(n < 1 for n in layers):
            raise ValueError(f"R2Plus1D needs 4 stages with at least one block each, got {list(layers)}")
        if width <= 0:
            raise ValueError(f"width must be positive, got {width}")
        self.in_channels = in_channels
        self.width = width
        channels = [scaled(c, width) for c in BASE_CHANNELS]
        self.stem = R2Plus1DStem(in_channels, scaled(STEM_MID, width), channels[0], bn_eps, bn_momentum)
        inplanes = channels[0]
        for i, (planes, blocks) in enumerate(zip(channels, layers)):
            stride, t_stride = (1, 1) if i == 0 else (2, temporal_strides[i - 1])
            stage, inplanes = self._make_layer(
                inplanes, planes, blocks, stride, ig65m_midplanes, se, bn_eps, bn_momentum, t_stride
            )
            self.add_module(f"layer{i + 1}", stage)
        self.out_channels = channels[-1]
        if num_classes is not None:
            self.avgpool = nn.AdaptiveAvgPool3d(1)
            self.fc = nn.Linear(self.out_channels, num_classes)
        else:
            self.avgpool = None
            self.fc = None
        self._init_weights()

    @staticmethod
    def _make_layer(
        inplanes: int,
        planes: int,
        blocks: int,
        stride: int,
        ig65m: bool,
        se: bool | str,
        bn_eps: float,
        bn_momentum: float,
        t_stride: int,
    ) -> tuple[nn.Sequential, int]:
        downsample = None
        if stride != 1 or inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv3d(inplanes, planes, 1, stride=(t_stride, stride, stride), bias=False),
                _bn(planes, bn_eps, bn_momentum),
            )
        # Caffe2's IG65M model sized the second conv's mid channels from its own (planes -> planes) shape.
        mid2 = midplanes(planes, planes) if ig65m else None
        mods = [BasicBlock(inplanes, planes, stride, downsample, None, mid2, se, bn_eps, bn_momentum, t_stride)]
        mods += [BasicBlock(planes, planes, 1, None, None, None, se, bn_eps, bn_momentum) for _ in range(1, blocks)]
        return nn.Sequential(*mods), planes

    def _init_weights(self) -> None:
        # torchvision's video ResNet init: He init for convs (fan_out, ReLU), unit BN, small normal classifier.
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def stages(self) -> list[tuple[str, nn.Module]]:
        """(name, module) of stem, layer1..layer4 in order (for per-stage shapes and parameter counts)."""
        return [(n, getattr(self, n)) for n in ("stem", "layer1", "layer2", "layer3", "layer4")]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, T, H, W) -> (B, out_channels, T', h, w)."""
        if x.dim() != 5 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected a clip batch (B, {self.in_channels}, T, H, W), got shape {tuple(x.shape)}")
        for _, stage in self.stages():
            x = stage(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, T, H, W) -> feature map (B, C', T', h, w), or logits (B, num_classes) when built with an fc."""
        x = self.features(x)
        if self.fc is None:
            return x
        return self.fc(torch.flatten(self.avgpool(x), 1))


def r2plus1d(
    depth: int = 34,
    width: float = 1.0,
    ig65m_midplanes: bool = True,
    se: bool | str = False,
    in_channels: int = 3,
    bn_eps: float = 1e-3,
    bn_momentum: float = 0.1,
    num_classes: int | None = None,
    temporal_strides: Sequence[int] = PAPER_TEMPORAL_STRIDES,
) -> R2Plus1D:
    """R(2+1)D-18 or -34; see `R2Plus1D` for the arguments."""
    if depth not in DEPTHS:
        raise ValueError(f"R(2+1)D depth must be one of {sorted(DEPTHS)}, got {depth}")
    return R2Plus1D(
        DEPTHS[depth], width, ig65m_midplanes, se, in_channels, bn_eps, bn_momentum, num_classes, temporal_strides
    )


def r2plus1d_18(**kwargs) -> R2Plus1D:
    """R(2+1)D-18 (blocks 2,2,2,2); torchvision's r2plus1d_18 is `r2plus1d_18(ig65m_midplanes=False, num_classes=400,
    bn_eps=1e-5)` (31,505,325 parameters)."""
    return r2plus1d(18, **kwargs)


def r2plus1d_34(**kwargs) -> R2Plus1D:
    """R(2+1)D-34 (blocks 3,4,6,3); IG65M's layout is the default (63,491,975 parameters without fc)."""
    return r2plus1d(34, **kwargs)


def build_backbone(cfg) -> R2Plus1D:
    """ModelConfig -> the configured R(2+1)D feature extractor (no fc). `cfg.backbone` is r2plus1d_18 | r2plus1d_34."""
    from darkaction.errors import ConfigError

    depth = {"r2plus1d_18": 18, "r2plus1d_34": 34}.get(cfg.backbone)
    if depth is None:
        raise ConfigError(f"model.backbone '{cfg.backbone}' is not an R(2+1)D backbone; use r2plus1d_18 or r2plus1d_34")
    if cfg.in_channels < 1:
        raise ConfigError(f"model.in_channels must be 3 (RGB) or 5 (RGB + flow), got {cfg.in_channels}")
    if cfg.width <= 0:
        raise ConfigError(f"model.width must be positive (1.0 = 64..512 channels), got {cfg.width}")
    strides = list(cfg.temporal_strides)
    if len(strides) != 3 or any(s not in (1, 2) for s in strides):
        raise ConfigError(
            f"model.temporal_strides must be 3 strides over time (layers 2-4), each 1 or 2, got {strides}; "
            "the paper's is [2, 2, 2]"
        )
    return r2plus1d(
        depth,
        width=cfg.width,
        ig65m_midplanes=cfg.ig65m_midplanes,
        se=cfg.se_kind if cfg.se else False,
        in_channels=cfg.in_channels,
        bn_eps=cfg.bn_eps,
        bn_momentum=cfg.bn_momentum,
        temporal_strides=strides,
    )
