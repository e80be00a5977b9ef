"""MRAN (Zhu et al., 2019) on top of R(2+1)D features: the Table 4 domain-adaptation baseline (HMDB51 -> ARID).

    feature map (B, C, T', h, w) ──┬── BERT head ──────────────────────────────▶ bert logits (B, K)
                                   └── Inception adaptation module ─▶ 4 branches, each pooled ─▶ cat (B, 288)
                                                                      └─ shared MRAN classifier ─▶ mran logits (B, K)
    fuse = Linear(2K, K)(cat(bert logits, mran logits))  -> logits (B, K)

The adaptation loss is the sum over the four branches of the conditional MMD (CMMD) between source features (one-hot
true labels) and target features (one-hot pseudo-labels: argmax of the shared MRAN classifier, no gradient), with a
Gaussian multi-kernel. The trainer weights it by `mran_lambda(epoch, epochs)` (and `model.mran_weight`).

The Inception convolutions are 3D with temporal kernel 1 -- the same as a 2D convolution applied per time step with
BatchNorm statistics shared over time -- so the branches look at each time step's spatial map and the global pooling
afterwards averages over time and space.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

KERNEL_MULTIPLIERS = (0.25, 0.5, 1.0, 2.0, 4.0)
MRAN_FEATURES = 288  # 64 + 64 + 96 + 64


def mran_lambda(epoch: float, epochs: float) -> float:
    """Adaptation-loss weight 2 / (1 + exp(-10 p)) - 1 with p = epoch / epochs: 0 at the start, ~1 at the end."""
    p = epoch / max(float(epochs), 1e-12)
    return 2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0


def gaussian_multi_kernel(x: torch.Tensor, multipliers: tuple[float, ...] = KERNEL_MULTIPLIERS) -> torch.Tensor:
    """Sum of Gaussian kernels over all pairs of rows of x (N, D) -> (N, N).

    The base bandwidth is the mean squared distance over distinct pairs; the kernels use base * m for every m in
    `multipliers`. The bandwidth is detached: it only sets the scale, and letting gradients flow through it would
    let the network shrink the loss by spreading all features apart.
    """
    d2 = torch.cdist(x, x, p=2.0).pow(2)
    n = x.shape[0]
    base = d2.sum().detach() / max(n * n - n, 1)
    base = base.clamp_min(1e-8)  # identical features give zero distances; any positive scale then gives K = 1
    return sum(torch.exp(-d2 / (base * m)) for m in multipliers)


def cmmd(src: torch.Tensor, tgt: torch.Tensor, src_onehot: torch.Tensor, tgt_onehot: torch.Tensor) -> torch.Tensor:
    """Conditional MMD between source features src (Bs, D) and target features tgt (Bt, D) -> scalar.

    With one-hot labels Ys (Bs, K), Yt (Bt, K) and the multi-kernel K over the stacked features:
        mean(Ys Ys^T * Kss) + mean(Yt Yt^T * Ktt) - 2 mean(Ys Yt^T * Kst)
    (each mean over its own block, which equals MRAN's mean over B x B when Bs == Bt). Only same-class pairs count, so
    this compares the class-conditional distributions. It is 0 for identical source and target features and labels.
    """
    bs = src.shape[0]
    k = gaussian_multi_kernel(torch.cat([src, tgt], dim=0).float())
    kss, ktt, kst = k[:bs, :bs], k[bs:, bs:], k[:bs, bs:]
    ys, yt = src_onehot.float(), tgt_onehot.float()
    return (ys @ ys.T * kss).mean() + (yt @ yt.T * ktt).mean() - 2.0 * (ys @ yt.T * kst).mean()


def _conv_bn_relu(cin: int, cout: int, k: int) -> nn.Sequential:
    """Conv (1, k, k) + BN + ReLU: a per-time-step 2D conv written as a 3D conv with temporal kernel 1."""
    return nn.Sequential(
        nn.Conv3d(cin, cout, (1, k, k), padding=(0, k // 2, k // 2), bias=False),
        nn.BatchNorm3d(cout),
        nn.ReLU(inplace=True),
    )


class AvgPool3x3(nn.Module):
    """3x3 spatial average per time step, stride 1, averaging only the pixels inside the image (no zero padding in the
    mean): (B, C, T, h, w) -> same shape. Written out because nn.AvgPool3d refuses maps smaller than its kernel, and
    CPU-scale backbones end at 2x2."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = F.avg_pool3d(F.pad(x, (1, 1, 1, 1)), (1, 3, 3), stride=1)
        count = F.avg_pool3d(F.pad(torch.ones_like(x[:1, :1]), (1, 1, 1, 1)), (1, 3, 3), stride=1)
        return total / count


class InceptionAdaptation(nn.Module):
    """MRAN's Inception adaptation module: (B, C, T', h, w) -> list of 4 pooled branch features
    (B, 64), (B, 64), (B, 96), (B, 64); concatenated they are the 288-d representation."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch1x1 = _conv_bn_relu(in_channels, 64, 1)
        self.branch5x5 = nn.Sequential(_conv_bn_relu(in_channels, 48, 1), _conv_bn_relu(48, 64, 5))
        self.branch3x3dbl = nn.Sequential(
            _conv_bn_relu(in_channels, 64, 1), _conv_bn_relu(64, 96, 3), _conv_bn_relu(96, 96, 3)
        )
        self.branch_pool = nn.Sequential(
            AvgPool3x3(),
            _conv_bn_relu(in_channels, 64, 1),
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        branches = (self.branch1x1, self.branch5x5, self.branch3x3dbl, self.branch_pool)
        return [b(x).mean(dim=(2, 3, 4)) for b in branches]


class MRANClassifier(nn.Module):
    """Backbone + BERT head + MRAN branch, fused by Linear(2K, K).

    forward(x: B,C,T,H,W) -> logits (B, K). `adaptation_step(src_x, tgt_x, src_y)` -> (src_logits, tgt_logits,
    da_loss) for one source batch and one target batch (the trainer adds the classification loss on the source and
    lambda * da_loss). `features(x)` is the backbone feature map (B, C', T', h, w).
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, feat_channels: int, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.inception = InceptionAdaptation(feat_channels)
        self.mran_fc = nn.Linear(MRAN_FEATURES, num_classes)
        self.fuse = nn.Linear(2 * num_classes, num_classes)
        self.num_classes = num_classes

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def _branches(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """x (B,C,T,H,W) -> fused logits (B,K), branch features [(B,64),(B,64),(B,96),(B,64)], MRAN logits (B,K)."""
        feat = self.backbone(x)
        bert_logits = self.head(feat)
        branches = self.inception(feat)
        mran_logits = self.mran_fc(torch.cat(branches, dim=1))
        logits = self.fuse(torch.cat([bert_logits, mran_logits], dim=1))
        return logits, branches, mran_logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._branches(x)[0]

    def adaptation_step(
        self, src_x: torch.Tensor, tgt_x: torch.Tensor, src_y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """src_x (Bs,C,T,H,W) labelled source clips with labels src_y (Bs,), tgt_x (Bt,C,T,H,W) target clips ->
        (src_logits (Bs,K), tgt_logits (Bt,K), da_loss scalar = sum of the 4 branch CMMDs, unweighted).

        Each domain goes through the backbone on its own, so BatchNorm statistics are per domain batch as in MRAN.
        """
        if src_y is None:
            raise ValueError("MRAN adaptation_step needs the source labels: call adaptation_step(src_x, tgt_x, src_y)")
        src_logits, src_branches, _ = self._branches(src_x)
        tgt_logits, tgt_branches, tgt_mran_logits = self._branches(tgt_x)
        ys = F.one_hot(src_y.long(), self.num_classes)
        with torch.no_grad():
            yt = F.one_hot(tgt_mran_logits.argmax(dim=1), self.num_classes)
        da_loss = sum(cmmd(s, t, ys, yt) for s, t in zip(src_branches, tgt_branches, strict=True))
        return src_logits, tgt_logits, da_loss


def build_mran(cfg, num_classes: int, T: int) -> MRANClassifier:
    """ModelConfig (head == "mran") -> MRANClassifier over the configured R(2+1)D backbone and a BERT head."""
    from darkaction.models import bert, r2plus1d

    backbone = r2plus1d.build_backbone(cfg)
    head = bert.BertHead.from_config(cfg, backbone.out_channels, num_classes, T)
    return MRANClassifier(backbone, head, backbone.out_channels, num_classes)
