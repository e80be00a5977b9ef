"""Zero-DCE (DCE-Net) and Zero-DCE++ curve-estimation networks.

DCE-Net follows the official Li-Chongyi/Zero-DCE code layer for layer, with the same state-dict keys
(`e_conv1.weight` ... `e_conv7.bias`), so the released `Epoch99.pth` loads unchanged (79,416 parameters).
Zero-DCE++ follows Li-Chongyi/Zero-DCE_extension (`e_convK.depth_conv.*`, `e_convK.point_conv.*`, 10,561 parameters).

Both map an RGB image x in [0, 1] (B,3,H,W) to curve parameters r in [-1, 1] and apply the quadratic light-enhancement
curve LE(x) = x + r * (x^2 - x) eight times. The output is not clamped (the official code does not clamp either).

    net = DCENet()
    net.load_state_dict(torch.load("Epoch99.pth", weights_only=True, map_location="cpu"))
    y, r = net(x)            # y: B,3,H,W; r: B,24,H,W
    y = net.enhance(x)       # inference only: fused in-place curve steps, optional bf16 convolutions
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

ITERATIONS = 8  # curve steps; the official networks hard-code 8
# pixels per chunk in fp32 `DCENet.enhance`: whole frames of at most this many pixels at a time (one frame when
# larger). 1-1.4x a one-frame chunk at 32x32-96x96 and the same at 320x240 (2-core AMD EPYC, docs/results.md)
INFERENCE_PIXELS = 128 * 128


@dataclass
class DCEConfig:
    channels: int = 32  # feature channels of every hidden layer (official: 32)
    iterations: int = ITERATIONS


def apply_curves(x: torch.Tensor, r: torch.Tensor, iterations: int = ITERATIONS) -> torch.Tensor:
    """Apply LE(x) = x + r_i * (x^2 - x) for i = 1..iterations (differentiable).

    x: B,3,H,W. r: B,3*iterations,H,W (one map per step, Zero-DCE) or B,3,H,W (one shared map, Zero-DCE++).
    Returns B,3,H,W.
    """
    shared = r.shape[1] == 3
    for i in range(iterations):
        ri = r if shared else r[:, 3 * i : 3 * i + 3]
        # addcmul fuses the multiply-add: one kernel instead of pow, sub, mul, add.
        x = torch.addcmul(x, ri, x * x - x)
    return x


def apply_curves_(x: torch.Tensor, r: torch.Tensor, iterations: int = ITERATIONS) -> torch.Tensor:
    """In-place variant of `apply_curves` for inference (no autograd): one scratch buffer for all steps.

    x: B,3,H,W (overwritten), r: B,3*iterations,H,W or B,3,H,W. Returns x.
    """
    shared = r.shape[1] == 3
    tmp = torch.empty_like(x)
    for i in range(iterations):
        ri = r if shared else r[:, 3 * i : 3 * i + 3]
        torch.mul(x, x, out=tmp)
        tmp.sub_(x)
        x.addcmul_(ri, tmp)
    return x


def _autocast(precision: str, device_type: str):
    if precision == "bf16":
        return torch.autocast(device_type=device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


class CurveNet(nn.Module):
    """Shared by DCE-Net and DCE-Net++: subclasses estimate curve maps (`curves`), this applies them."""

    cfg: DCEConfig

    def curves(self, x: torch.Tensor) -> torch.Tensor:
        """x B,3,H,W -> curve maps (B, 3 * iterations or 3, H, W) in [-1, 1]."""
        raise NotImplementedError

    def init_weights(self, std: float = 0.02) -> None:
        """Official training init: conv weights N(0, std), biases zero."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, std)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r = self.curves(x)
        return apply_curves(x, r, self.cfg.iterations), r

    @torch.no_grad()
    def enhance(self, x: torch.Tensor, precision: str = "fp32") -> torch.Tensor:
        """Inference: x B,3,H,W float32 in [0,1] -> B,3,H,W float32 (unclamped). `precision`: fp32 | bf16 (convs)."""
        with _autocast(precision, x.device.type):
            r = self.curves(x)
        return apply_curves_(x.float().clone(), r, self.cfg.iterations)


class DepthwiseSeparableConv(nn.Module):
    """Zero-DCE++'s CSDN_Tem: depthwise 3x3 then pointwise 1x1 (keys `depth_conv`, `point_conv`)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.depth_conv = nn.Conv2d(in_ch, in_ch, 3, 1, 1, groups=in_ch)
        self.point_conv = nn.Conv2d(in_ch, out_ch, 1, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.point_conv(self.depth_conv(x))


class DCENet(CurveNet):
    """Official DCE-Net: 7 plain 3x3 convs, symmetric skip concatenations, tanh head with 8 x 3 curve maps.

    forward(x: B,3,H,W in [0,1]) -> (enhanced B,3,H,W, curves B,24,H,W).
    """

    def __init__(self, cfg: DCEConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or DCEConfig()
        c = self.cfg.channels
        self.relu = nn.ReLU(inplace=True)
        self.e_conv1 = nn.Conv2d(3, c, 3, 1, 1, bias=True)
        self.e_conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=True)
        self.e_conv3 = nn.Conv2d(c, c, 3, 1, 1, bias=True)
        self.e_conv4 = nn.Conv2d(c, c, 3, 1, 1, bias=True)
        self.e_conv5 = nn.Conv2d(2 * c, c, 3, 1, 1, bias=True)
        self.e_conv6 = nn.Conv2d(2 * c, c, 3, 1, 1, bias=True)
        self.e_conv7 = nn.Conv2d(2 * c, 3 * self.cfg.iterations, 3, 1, 1, bias=True)

    def curves(self, x: torch.Tensor) -> torch.Tensor:
        """x: B,3,H,W -> curve maps B,3*iterations,H,W in [-1, 1] (float32 even under bf16 autocast)."""
        x1 = self.relu(self.e_conv1(x))
        x2 = self.relu(self.e_conv2(x1))
        x3 = self.relu(self.e_conv3(x2))
        x4 = self.relu(self.e_conv4(x3))
        x5 = self.relu(self.e_conv5(torch.cat([x3, x4], 1)))
        x6 = self.relu(self.e_conv6(torch.cat([x2, x5], 1)))
        # tanh in fp32: under bf16 autocast the curve maps would otherwise keep only ~3 significant digits.
        return torch.tanh(self.e_conv7(torch.cat([x1, x6], 1)).float())

    def _inference_curves(self, x: torch.Tensor) -> torch.Tensor:
        """`curves` for inference: the same maps, in-place activations and no concatenated copies."""
        x1 = self.e_conv1(x).relu_()
        x2 = self.e_conv2(x1).relu_()
        x3 = self.e_conv3(x2).relu_()
        x4 = self.e_conv4(x3).relu_()
        x5 = _conv_of_pair(x3, x4, self.e_conv5).relu_()
        x6 = _conv_of_pair(x2, x5, self.e_conv6).relu_()
        return _conv_of_pair(x1, x6, self.e_conv7).float().tanh_()

    @torch.no_grad()
    def enhance(self, x: torch.Tensor, precision: str = "fp32") -> torch.Tensor:
        """Inference: x B,3,H,W float32 in [0,1] -> B,3,H,W float32 (unclamped). `precision`: fp32 | bf16 (convs).

        fp32 runs `_inference_curves` on chunks of about INFERENCE_PIXELS (the 32-channel hidden maps of a chunk
        stay in cache), equal to `curves` within float rounding. bf16 keeps `curves` on the whole batch: split
        convolutions would round differently there, and caches enhanced in bf16 stay reproducible."""
        if precision == "bf16":
            return super().enhance(x, precision)
        out = x.float().clone()
        step = max(1, INFERENCE_PIXELS // max(1, x.shape[-2] * x.shape[-1]))
        for i in range(0, len(x), step):
            apply_curves_(out[i : i + step], self._inference_curves(x[i : i + step]), self.cfg.iterations)
        return out


def _conv_of_pair(a: torch.Tensor, b: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """conv(cat([a, b], 1)) without building the concatenation: the weight split by input channel, two convolutions
    summed. The same arithmetic; a channel concatenation of channels-last maps costs a strided copy of both (16 % of
    a fp32 DCE-Net forward, measured with torch.profiler)."""
    fmt = torch.channels_last if a.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    c = a.shape[1]
    w = conv.weight
    y = F.conv2d(a, w[:, :c].contiguous(memory_format=fmt), conv.bias, conv.stride, conv.padding)
    return y.add_(F.conv2d(b, w[:, c:].contiguous(memory_format=fmt), None, conv.stride, conv.padding))


class DCENetPP(CurveNet):
    """Zero-DCE++: depthwise separable convs, one shared 3-channel curve map, optional downscaled estimation.

    forward(x: B,3,H,W) -> (enhanced B,3,H,W, curve B,3,H,W). With scale_factor s > 1 the curve is estimated on x
    downscaled by s (bilinear) and upsampled bilinearly (align_corners=True, as the official `UpsamplingBilinear2d`)
    back to exactly H,W, then applied at full resolution.
    """

    def __init__(self, scale_factor: int = 1, cfg: DCEConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or DCEConfig()
        self.scale_factor = int(scale_factor)
        c = self.cfg.channels
        self.relu = nn.ReLU(inplace=True)
        self.e_conv1 = DepthwiseSeparableConv(3, c)
        self.e_conv2 = DepthwiseSeparableConv(c, c)
        self.e_conv3 = DepthwiseSeparableConv(c, c)
        self.e_conv4 = DepthwiseSeparableConv(c, c)
        self.e_conv5 = DepthwiseSeparableConv(2 * c, c)
        self.e_conv6 = DepthwiseSeparableConv(2 * c, c)
        self.e_conv7 = DepthwiseSeparableConv(2 * c, 3)

    def curves(self, x: torch.Tensor) -> torch.Tensor:
        """x: B,3,H,W -> one shared curve map B,3,H,W in [-1, 1] (float32)."""
        h, w = x.shape[-2:]
        s = self.scale_factor
        x_down = x if s == 1 else F.interpolate(x, scale_factor=1 / s, mode="bilinear")
        x1 = self.relu(self.e_conv1(x_down))
        x2 = self.relu(self.e_conv2(x1))
        x3 = self.relu(self.e_conv3(x2))
        x4 = self.relu(self.e_conv4(x3))
        x5 = self.relu(self.e_conv5(torch.cat([x3, x4], 1)))
        x6 = self.relu(self.e_conv6(torch.cat([x2, x5], 1)))
        r = torch.tanh(self.e_conv7(torch.cat([x1, x6], 1)).float())
        if s != 1:
            r = F.interpolate(r, size=(h, w), mode="bilinear", align_corners=True)
        return r


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
