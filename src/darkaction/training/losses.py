"""Classification losses: the paper's focal loss (eq. 13) and plain cross-entropy.

    loss = FocalLoss(gamma=2.0, alpha=None)(logits, labels)   # logits B,C float; labels B int64 -> scalar

Focal loss FL(p_t) = -alpha_t (1 - p_t)^gamma log(p_t) (Lin et al.). At gamma = 0 without alpha it is exactly
cross-entropy; with gamma > 0 confidently-correct ("easy") examples contribute much less than hard ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from darkaction.errors import ConfigError


class FocalLoss(nn.Module):
    """Multi-class focal loss, mean over the batch.

    Args:
        gamma: focusing parameter (>= 0); 0 = cross-entropy.
        alpha: optional per-class weights (length C); alpha_t is the weight of each example's true class.
    Shapes: logits (B, C) any float dtype, target (B,) int64 -> scalar float32.
    """

    def __init__(self, gamma: float = 2.0, alpha: Sequence[float] | torch.Tensor | None = None):
        super().__init__()
        if gamma < 0:
            raise ConfigError(f"train.focal_gamma must be >= 0, got {gamma}")
        self.gamma = float(gamma)
        if alpha is not None and len(alpha) > 0:
            a = torch.as_tensor(alpha, dtype=torch.float32)
            if a.ndim != 1 or bool((a < 0).any()):
                raise ConfigError("train.focal_alpha must be a list of non-negative per-class weights")
            self.register_buffer("alpha", a, persistent=False)
        else:
            self.alpha = None

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        # log-softmax in fp32: stable for large logits and under bf16 autocast.
        logp = F.log_softmax(logits.float(), dim=-1)
        logp_t = logp.gather(1, target.long().unsqueeze(1)).squeeze(1)
        loss = -logp_t
        if self.gamma != 0.0:
            p_t = logp_t.exp()
            # clamp: 1 - p_t can round to a tiny negative number, and 0 ** gamma must stay finite in the gradient.
            loss = loss * (1.0 - p_t).clamp_min(0.0).pow(self.gamma)
        if self.alpha is not None:
            if self.alpha.numel() != logits.shape[-1]:
                raise ConfigError(
                    f"train.focal_alpha has {self.alpha.numel()} weights but the model has {logits.shape[-1]} classes"
                )
            loss = loss * self.alpha.to(loss.device)[target]
        return loss.mean()


class CrossEntropy(nn.Module):
    """Cross-entropy computed in fp32. Shapes: logits (B, C), target (B,) -> scalar."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), target.long())


def build_loss(name: str, gamma: float = 2.0, alpha: Sequence[float] | None = None) -> nn.Module:
    """`train.loss`: focal | ce."""
    if name == "focal":
        return FocalLoss(gamma, alpha)
    if name == "ce":
        return CrossEntropy()
    raise ConfigError(f"train.loss must be 'focal' or 'ce', got '{name}'")
