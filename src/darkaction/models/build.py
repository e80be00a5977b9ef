"""`build_model(cfg.model, num_classes, T)`: the configured backbone + head as one `VideoClassifier`.

    model = build_model(cfg.model, num_classes=6, T=cfg.sampling.T)
    logits = model(clips)                 # (B, C, T, H, W) -> (B, 6)
    model.head.attention                  # (B, T') CLS attention over time after a BERT-head forward, else None

Backbones: r2plus1d_18 | r2plus1d_34 (this package), slowfast, efficientnet_b0, and Figure 1's comparison networks
c3d, resnext101_3d, squeezenet_3d (their own modules, each with its own classifier: `model.head` does not apply).
Heads: bert | tgap for R(2+1)D; mran builds the R(2+1)D + BERT + MRAN model of `mran.py`.

Fast on CPU (measured in benchmarks/bench_models.py): run the forward and backward under
`torch.autocast("cpu", dtype=torch.bfloat16)` (Lightning: precision="bf16-mixed") on CPUs with AVX-512 BF16 / AMX, and
call `model.use_channels_last()` with it: oneDNN's bf16 convolutions (and their backward) are fastest on
channels-last tensors, while fp32 training was slower channels-last here, so it is off by default. The model itself
never switches precision; autocast belongs to the caller (the Lightning trainer).
"""

from __future__ import annotations

import difflib

import torch
from torch import nn

from darkaction.errors import ConfigError
from darkaction.models.bert import BertHead
from darkaction.models.heads import TGAPHead
from darkaction.models.r2plus1d import build_backbone

R2PLUS1D_BACKBONES = ("r2plus1d_18", "r2plus1d_34")
FIG1_BACKBONES = ("c3d", "resnext101_3d", "squeezenet_3d")  # the ARID paper's baselines (Efficient-3DCNNs)
BACKBONES = (*R2PLUS1D_BACKBONES, "slowfast", "efficientnet_b0", *FIG1_BACKBONES)
HEADS = ("bert", "tgap", "mran")


class VideoClassifier(nn.Module):
    """Backbone + head: forward (B, C, T, H, W) -> logits (B, num_classes).

    `features(x)` is the backbone map (B, C', T', h, w). With `freeze_bn`, every BatchNorm of the backbone stays in
    eval mode (running statistics frozen) and its affine parameters are not trained, whatever `train()` is called
    with: the usual way to fine-tune pretrained weights with batches of 2.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, freeze_bn: bool = False) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.freeze_bn = freeze_bn
        self.channels_last = False
        if freeze_bn:
            for m in self._backbone_bns():
                for p in m.parameters():
                    p.requires_grad_(False)
            self.train(self.training)

    def _backbone_bns(self) -> list[nn.Module]:
        return [m for m in self.backbone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def train(self, mode: bool = True) -> VideoClassifier:
        super().train(mode)
        if self.freeze_bn:
            for m in self._backbone_bns():
                m.eval()
        return self

    def use_channels_last(self, enabled: bool = True) -> VideoClassifier:
        """Store 5-D weights channels_last_3d and convert every input clip to it (or back to contiguous)."""
        self.channels_last = enabled
        return self.to(memory_format=torch.channels_last_3d if enabled else torch.contiguous_format)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, C', T', h, w)."""
        if self.channels_last and x.dim() == 5:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        return self.backbone(x)

    @property
    def rate_input(self) -> bool:
        """Whether the head also reads each clip's frames per slot (`model.rate_input`): forward(x, rate)."""
        return getattr(self.head, "rate_embed", None) is not None

    def forward(self, x: torch.Tensor, rate: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, T, H, W) [, frames per slot (B,) for a rate_input head] -> logits (B, num_classes)."""
        feats = self.features(x)
        return self.head(feats, rate) if self.rate_input else self.head(feats)

    def forward_with_attention(
        self, x: torch.Tensor, rate: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, C, T, H, W) [, rate (B,)] -> logits (B, num_classes) and the head's attention over time (B, T') or
        None (TGAP): the same computation as `forward`, returned instead of stored, for inference and export. A head
        without attention (Figure 1's classifiers) gives None."""
        feats = self.features(x)
        extra = (rate,) if self.rate_input else ()
        if not hasattr(self.head, "forward_with_attention"):
            return self.head(feats, *extra), None
        return self.head.forward_with_attention(feats, *extra)


def _check_choice(key: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        near = difflib.get_close_matches(value, valid, n=1, cutoff=0.5)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        raise ConfigError(f"model.{key} '{value}' is unknown{hint} (valid: {', '.join(valid)})")


def _refuse_ignored(cfg) -> None:
    """Settings that only an R(2+1)D backbone reads are an error elsewhere, not silently dropped: the head choice
    (SlowFast and Figure 1's networks have their own classifier, EfficientNet always a BERT head), BN freezing and
    the SE blocks."""
    if cfg.backbone in R2PLUS1D_BACKBONES:
        return
    ignored = [f"model.head={cfg.head}"] if cfg.head != "bert" else []
    ignored += ["model.freeze_bn=true"] if cfg.freeze_bn else []
    ignored += ["model.se=true"] if cfg.se else []
    ignored += ["model.rate_input=true"] if getattr(cfg, "rate_input", False) else []
    if ignored:
        raise ConfigError(
            f"model.backbone={cfg.backbone} does not use {', '.join(ignored)} (R(2+1)D backbones only); remove "
            f"{'it' if len(ignored) == 1 else 'them'} or pick r2plus1d_18 / r2plus1d_34"
        )


def build_model(cfg, num_classes: int, T: int) -> nn.Module:
    """ModelConfig, number of classes, frames per clip -> the model; loads `cfg.pretrained` when set.

    R(2+1)D backbones with a bert or tgap head give a `VideoClassifier`; slowfast, efficientnet_b0, c3d,
    resnext101_3d, squeezenet_3d and the mran head come from their own modules (same forward / features / backbone /
    head contract).
    """
    _check_choice("backbone", cfg.backbone, BACKBONES)
    _check_choice("head", cfg.head, HEADS)
    from darkaction.models.bert import TIME_NORMS, time_norm_choice
    from darkaction.models.r2plus1d import SE_KINDS

    _check_choice("se_kind", cfg.se_kind, SE_KINDS)
    try:
        time_norm_choice(cfg.time_norm)
    except ValueError:
        _check_choice("time_norm", str(cfg.time_norm), TIME_NORMS)
    if num_classes < 1:
        raise ConfigError(f"a classifier needs at least one class, got num_classes={num_classes}")
    if T < 1:
        raise ConfigError(f"sampling.T must be at least 1, got {T}")
    _refuse_ignored(cfg)
    if cfg.backbone == "slowfast":
        from darkaction.models.slowfast import build_slowfast

        return build_slowfast(cfg, num_classes, T)
    if cfg.backbone == "efficientnet_b0":
        from darkaction.models.efficientnet import build_efficientnet_bert

        return build_efficientnet_bert(cfg, num_classes, T)
    if cfg.backbone == "c3d":
        from darkaction.models.c3d import build_c3d

        return build_c3d(cfg, num_classes, T)
    if cfg.backbone == "resnext101_3d":
        from darkaction.models.resnext3d import build_resnext3d

        return build_resnext3d(cfg, num_classes, T)
    if cfg.backbone == "squeezenet_3d":
        from darkaction.models.squeezenet3d import build_squeezenet3d

        return build_squeezenet3d(cfg, num_classes, T)
    if cfg.head == "mran":
        if getattr(cfg, "rate_input", False):
            raise ConfigError("model.rate_input=true needs a bert or tgap head (the mran head does not read rates)")
        from darkaction.models.mran import build_mran

        model = build_mran(cfg, num_classes, T)
    else:
        backbone = build_backbone(cfg)
        if cfg.head == "bert":
            try:
                head = BertHead.from_config(cfg, backbone.out_channels, num_classes, T)
            except ValueError as e:
                raise ConfigError(f"model.bert_*: {e}") from None
        else:
            head = TGAPHead.from_config(cfg, backbone.out_channels, num_classes, T)
        model = VideoClassifier(backbone, head, freeze_bn=cfg.freeze_bn)
    from darkaction.models.pretrained import load_pretrained, pretrained_file

    weights = pretrained_file(cfg.pretrained)  # "none" = from scratch; "required" (paper preset) = a clear error
    if weights:
        load_pretrained(model, weights)
    return model


def to_channels_last(model: nn.Module) -> nn.Module:
    """Channels-last for any model from `build_model`: a VideoClassifier also converts its inputs; other models get
    their 5-D weights converted in place (feed them channels_last_3d clips too)."""
    if isinstance(model, VideoClassifier):
        return model.use_channels_last()
    return model.to(memory_format=torch.channels_last_3d)
