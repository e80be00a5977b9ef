"""Zero-DCE's four non-reference losses, as the official code computes them, plus the paper's written forms.

`form="code"` (default) reproduces Li-Chongyi/Zero-DCE `Myloss.py` (the maintainers say: follow the code):
  L_spa  channel mean, 4x4 average pooling, signed 4-neighbour differences (zero padded) of input and enhanced, squared
         difference, summed over the 4 directions, mean over everything.
  L_exp  channel mean, PxP average pooling, mean of (patch mean - E)^2.
  L_col  per-image channel means m_r, m_g, m_b; sqrt((m_r-m_g)^4 + (m_r-m_b)^4 + (m_g-m_b)^4); mean over the batch.
  L_tv   on the curve maps A (B,C,H,W): 2 * (sum dy^2 / ((H-1)W) + sum dx^2 / (H(W-1))) / B.
`form="paper"` uses the paper's equations (1)-(4): absolute neighbour differences in L_spa, |Y - E| in L_exp,
sum of squared channel-mean differences in L_col, (|dx A| + |dy A|)^2 summed over channels and averaged over
pixels and curve steps in L_tv.

Every function takes float tensors B,C,H,W and returns a 0-d tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

FORMS = ("code", "paper")


def _neighbour_diffs(y: torch.Tensor) -> torch.Tensor:
    """y: B,1,h,w -> B,4,h,w signed differences to the left, right, up, down neighbours (zero padded)."""
    p = F.pad(y, (1, 1, 1, 1))
    c = p[:, :, 1:-1, 1:-1]
    left = c - p[:, :, 1:-1, :-2]
    right = c - p[:, :, 1:-1, 2:]
    up = c - p[:, :, :-2, 1:-1]
    down = c - p[:, :, 2:, 1:-1]
    return torch.cat([left, right, up, down], 1)


def spatial_consistency_loss(
    inp: torch.Tensor, enhanced: torch.Tensor, region: int = 4, form: str = "code"
) -> torch.Tensor:
    """L_spa between input I and enhanced Y (B,3,H,W): neighbour contrasts of region means should survive."""
    i = F.avg_pool2d(inp.mean(1, keepdim=True), region)
    y = F.avg_pool2d(enhanced.mean(1, keepdim=True), region)
    di, dy = _neighbour_diffs(i), _neighbour_diffs(y)
    if form == "paper":
        di, dy = di.abs(), dy.abs()
    # Sum over the 4 directions, mean over regions and batch (the code takes torch.mean of the B,1,h,w map).
    return (dy - di).pow(2).sum(1).mean()


def exposure_loss(enhanced: torch.Tensor, level: float = 0.6, patch: int = 16, form: str = "code") -> torch.Tensor:
    """L_exp (B,3,H,W): PxP patch brightness (channel mean) should be near the well-exposedness level E."""
    y = F.avg_pool2d(enhanced.mean(1, keepdim=True), patch)
    d = y - level
    return d.abs().mean() if form == "paper" else d.pow(2).mean()


def color_constancy_loss(enhanced: torch.Tensor, form: str = "code") -> torch.Tensor:
    """L_col (B,3,H,W): grey-world assumption, channel means of each image should agree."""
    m = enhanced.mean((2, 3))  # B,3
    mr, mg, mb = m[:, 0], m[:, 1], m[:, 2]
    d_rg, d_rb, d_gb = (mr - mg).pow(2), (mr - mb).pow(2), (mg - mb).pow(2)
    if form == "paper":
        return (d_rg + d_rb + d_gb).mean()
    s = d_rg.pow(2) + d_rb.pow(2) + d_gb.pow(2)
    # sqrt has an infinite slope at 0: a perfectly grey image (e.g. a greyscale photo) would give NaN gradients.
    # Same value as the code; zero gradient where s == 0.
    pos = s > 0
    return (torch.where(pos, s, torch.ones_like(s)).sqrt() * pos).mean()


def illumination_smoothness_loss(curves: torch.Tensor, form: str = "code") -> torch.Tensor:
    """L_tv on curve maps A (B,3*n,H,W): neighbouring pixels should get similar curves."""
    b, c, h, w = curves.shape
    dy = curves[:, :, 1:, :] - curves[:, :, :-1, :]
    dx = curves[:, :, :, 1:] - curves[:, :, :, :-1]
    if form == "paper":
        # (|dx| + |dy|)^2 on the (H-1)x(W-1) grid where both exist, summed over RGB, averaged over steps and pixels.
        g = dx[:, :, :-1, :].abs() + dy[:, :, :, :-1].abs()
        steps = max(c // 3, 1)
        return g.pow(2).sum() / (b * steps * (h - 1) * (w - 1))
    return 2.0 * (dy.pow(2).sum() / ((h - 1) * w) + dx.pow(2).sum() / (h * (w - 1))) / b


@dataclass
class LossWeights:
    tv: float = 200.0
    spa: float = 1.0
    col: float = 5.0
    exp: float = 10.0
    exposure: float = 0.6  # well-exposedness level E
    patch: int = 16  # exposure patch size
    form: str = "code"  # code | paper


def zero_dce_loss(
    inp: torch.Tensor, enhanced: torch.Tensor, curves: torch.Tensor, w: LossWeights | None = None
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted total loss. inp, enhanced: B,3,H,W; curves: B,3*n,H,W. Returns (total, unweighted parts as floats)."""
    w = w or LossWeights()
    if w.form not in FORMS:
        raise ValueError(f"loss form must be one of {FORMS}, got {w.form!r}")
    parts = {
        "tv": illumination_smoothness_loss(curves, w.form),
        "spa": spatial_consistency_loss(inp, enhanced, form=w.form),
        "col": color_constancy_loss(enhanced, w.form),
        "exp": exposure_loss(enhanced, w.exposure, w.patch, w.form),
    }
    total = w.tv * parts["tv"] + w.spa * parts["spa"] + w.col * parts["col"] + w.exp * parts["exp"]
    return total, {k: float(v.detach()) for k, v in parts.items()}
