"""BERT temporal head (Kalfaoglu et al., "Late temporal modeling in 3D CNN architectures with BERT").

    feature map (B, D, T', h, w) --spatial mean--> tokens (B, T', D)      [or tokens given directly]
      [time_norm]       rms: each channel to unit RMS over time | l2: each time step's vector to unit L2 norm
      [D != hidden]     Linear(D, hidden)
      prepend CLS       (B, T'+1, hidden); + learned positional embedding (T'+1 positions, N(0, 0.02)); dropout 0.1
      layers x pre-LN block:  x + Drop(MHSA(LN(x), key mask)), then x + Drop(FFN(LN(x)))
                              (FFN = hidden -> ffn -> hidden with GELU, tanh approximation)
      CLS output -> dropout 0.8 -> Linear(hidden, C) -> logits (B, C)

Unlike temporal average pooling, the positional embedding makes the output depend on the order of the time steps:
a clip of someone sitting down and the same clip reversed (standing up) get different logits.

Training-time token masking (the reference's "keep" mask): every temporal token is kept with probability `keep` and a
dropped one is removed as an attention *key* for all queries; the CLS token is always kept. Nothing is masked in eval.

`head.attention` holds the last forward's CLS-to-time-step attention of the last layer, averaged over heads, (B, T')
(detached, fp32); the CLS token's attention to itself is left out, so a row sums to 1 minus that share.

Time-domain normalisation (`time_norm`; the paper: "features are normalized in the time domain before BERT"):
- `none`: the features as they are. This is what the reference code feeds BERT (`rgb_r2plus1d_32f_34_bert10.forward`
  computes an L2 normalisation of each time step's feature vector, but passes the un-normalised features on).
- `l2`: each time step's feature vector divided by its L2 norm (the normalisation the reference computes).
- `rms`: each channel divided by its root-mean-square over the T' steps (L2 over time times sqrt(T')), our reading of
  "in the time domain". Not a zero-mean standardisation: subtracting the temporal mean would erase the static
  appearance of the clip, and a near-constant channel would be blown up to +-1 noise.
Measured (`darkaction experiment timenorm --preset cpu`, 360 test videos, 3 seeds, docs/results.md): l2 beat rms by
5.8 points (95 % CI 2.4-9.3), none and l2 did not differ (l2 +1.6, CI -2.1 to +5.2). The paper preset uses `l2` (the
paper's words, the reference's formula, and never worse than `none` here); the cpu preset keeps `none`, the setting
its tables were measured with.
"""

from __future__ import annotations

import math
import typing

import torch
from torch import nn

from darkaction.config import TimeNorm

REFERENCE_HIDDEN = 512  # the reference head's width, for which the init below is BERT's N(0, 0.02)


TIME_NORMS = typing.get_args(TimeNorm)


def time_norm_choice(value: str | bool) -> str:
    """`model.time_norm` checked: none | l2 | rms (a run config's legacy true / false reads as rms / none)."""
    legacy = {"true": "rms", "false": "none"}  # run configs written before the choice existed held a bool
    v = str(value).strip().lower()
    v = legacy.get(v, v)
    if v not in TIME_NORMS:
        raise ValueError(f"time_norm={value!r} is not one of {', '.join(TIME_NORMS)}")
    return v


def time_normalize(tokens: torch.Tensor, mode: str = "rms", eps: float = 1e-6) -> torch.Tensor:
    """(B, T', D) -> (B, T', D). rms: each channel scaled to unit root-mean-square over time; l2: each time step's
    D-vector scaled to unit L2 norm; none: unchanged."""
    if mode == "none":
        return tokens
    x = tokens.float()
    if mode == "rms":
        x = x / x.pow(2).mean(dim=1, keepdim=True).add(eps).sqrt()
    elif mode == "l2":
        x = x / x.pow(2).sum(dim=2, keepdim=True).add(eps).sqrt()
    else:
        raise ValueError(f"time_norm={mode!r} is not one of {', '.join(TIME_NORMS)}")
    return x.to(tokens.dtype)


def to_tokens(x: torch.Tensor) -> torch.Tensor:
    """Backbone map (B, D, T', h, w) -> (B, T', D) by spatial averaging; tokens (B, T', D) pass through."""
    if x.dim() == 5:
        return x.mean(dim=(3, 4)).transpose(1, 2)
    if x.dim() == 3:
        return x
    raise ValueError(f"expected a feature map (B, D, T', h, w) or tokens (B, T', D), got shape {tuple(x.shape)}")


def rate_column(rate: torch.Tensor | None, batch: int) -> torch.Tensor:
    """A `rate_input` head's rate argument checked: frames per slot (B,) -> log rate (B, 1) fp32."""
    if rate is None:
        raise ValueError(
            "this head was built with model.rate_input: pass each clip's frames per slot (rate=, shape (B,)), as "
            "`sampling.slot_rate` gives them"
        )
    if rate.shape != (batch,):
        raise ValueError(f"rate must have shape ({batch},), one per clip, got {tuple(rate.shape)}")
    return rate.float().clamp_min(1e-3).log().unsqueeze(1)


class RateEmbedding(nn.Module):
    """log rate (B, 1) -> (B, width) = log rate x weight + bias, added to a head's features; zero at the start, so
    training begins from the head without it. Two 1-D parameters, not a Linear(1, width): Ranger's gradient
    centralisation removes the mean over a weight's input dimension, which for a single input is the whole gradient
    (a Linear(1, width) weight stayed exactly zero through a 40-epoch run)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(width))
        self.bias = nn.Parameter(torch.zeros(width))

    def forward(self, log_rate: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.bias, log_rate, self.weight)


def rate_embedding(width: int) -> RateEmbedding:
    """The `rate_input` heads' embedding of the clip's log frames per slot."""
    return RateEmbedding(width)


class SelfAttention(nn.Module):
    """Multi-head self-attention with explicit softmax, so the weights are available for plots.

    (B, N, H) and a key mask (B, N) of booleans (True = may be attended to) -> (B, N, H), weights (B, heads, N, N).
    """

    def __init__(self, hidden: int, heads: int, dropout: float) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"BERT hidden size {hidden} must be divisible by the number of heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.proj = nn.Linear(hidden, hidden)
        self.attn_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        B, N, H = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.heads, H // self.heads).permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(H // self.heads))
        if key_mask is not None:
            scores = scores.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        # Softmax in fp32 even under bf16 autocast: a 9-token softmax costs nothing and bf16 would blur the weights.
        weights = scores.float().softmax(dim=-1)
        out = self.attn_drop(weights).to(v.dtype) @ v
        return self.proj(out.transpose(1, 2).reshape(B, N, H)), weights


class BertBlock(nn.Module):
    """One pre-LayerNorm transformer block: (B, N, hidden) -> (B, N, hidden), plus the attention weights."""

    def __init__(self, hidden: int, heads: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(hidden)
        self.attn = SelfAttention(hidden, heads, dropout)
        self.ln2 = nn.LayerNorm(hidden)
        self.ffn = nn.Sequential(
            nn.Linear(hidden, ffn), nn.GELU(approximate="tanh"), nn.Dropout(dropout), nn.Linear(ffn, hidden)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        a, weights = self.attn(self.ln1(x), key_mask)
        x = x + self.drop(a)
        x = x + self.drop(self.ffn(self.ln2(x)))
        return x, weights


class BertHead(nn.Module):
    """BERT temporal head: feature map (B, D, T', h, w) or tokens (B, T', D) -> logits (B, num_classes).

    Args:
        in_features: D, the backbone's channels.
        num_classes: C.
        hidden, layers, heads, ffn: transformer size (reference: 512, 1, 8, 2048).
        dropout: on embeddings, attention weights, residual branches and inside the FFN (0.1).
        keep: probability of keeping each temporal token as an attention key in training (0.8; 1.0 = no masking).
        cls_dropout: before the classifier (0.8).
        time_norm: none | l2 | rms, applied to the tokens before the projection (see the module docstring).
        max_len: the most temporal tokens T' this head accepts (the positional embedding has max_len + 1 rows).
        rate_input: also read each clip's frames per slot (`rate=` in forward; `model.rate_input`).
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden: int = 512,
        layers: int = 1,
        heads: int = 8,
        ffn: int = 2048,
        dropout: float = 0.1,
        keep: float = 0.8,
        cls_dropout: float = 0.8,
        time_norm: str | bool = "none",
        max_len: int = 8,
        rate_input: bool = False,
    ) -> None:
        super().__init__()
        if not 0.0 < keep <= 1.0:
            raise ValueError(f"BERT keep probability must be in (0, 1], got {keep}")
        self.in_features = in_features
        self.hidden = hidden
        self.keep = keep
        self.time_norm = time_norm_choice(time_norm)
        self.max_len = max_len
        # The reference has D == hidden == 512; a narrower or wider backbone (width multiplier, other backbones)
        # needs a learned projection to the transformer's size.
        self.proj = nn.Linear(in_features, hidden) if in_features != hidden else nn.Identity()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, hidden))
        self.pos_embed = nn.Parameter(torch.zeros(1, max_len + 1, hidden))
        self.embed_drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList([BertBlock(hidden, heads, ffn, dropout) for _ in range(layers)])
        self.cls_drop = nn.Dropout(cls_dropout)
        self.fc = nn.Linear(hidden, num_classes)
        self.attention: torch.Tensor | None = None
        self._init_weights()
        # every token (CLS too) + a learned function of the clip's log frames per slot (`model.rate_input`)
        self.rate_embed = rate_embedding(hidden) if rate_input else None

    def _init_weights(self) -> None:
        # BERT's init: N(0, 0.02) for every weight matrix and embedding, zero biases, unit LayerNorm -- exactly so at
        # the reference's hidden size 512. 0.02 is tuned for wide layers: a narrow CPU-sized head (hidden 32-128)
        # with it shrinks every signal and gradient by ~0.02*sqrt(hidden) per layer, and the measured effect was a
        # head that barely trains. So the weight std scales as 0.02 * sqrt(512 / fan_in) (equal at the reference
        # sizes; the input projection, absent in the reference, follows the same rule for its own fan-in).
        ffn_out = {id(block.ffn[-1]) for block in self.blocks}  # reference fan-in 2048 (= 4 x 512)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                ref_fan_in = 4 * REFERENCE_HIDDEN if id(m) in ffn_out else REFERENCE_HIDDEN
                nn.init.normal_(m.weight, 0.0, 0.02 * math.sqrt(ref_fan_in / m.in_features))
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.cls_token, 0.0, 0.02)
        nn.init.normal_(self.pos_embed, 0.0, 0.02)

    @classmethod
    def from_config(cls, cfg, in_features: int, num_classes: int, T: int, max_len: int | None = None) -> BertHead:
        """ModelConfig -> BertHead sized for clips of T frames through an R(2+1)D backbone with the configured
        temporal strides (T' = ceil(T/8) for the paper's), or for `max_len` tokens (e.g. one per frame for a 2D
        backbone)."""
        from darkaction.models.r2plus1d import temporal_size

        return cls(
            in_features,
            num_classes,
            hidden=cfg.bert_hidden,
            layers=cfg.bert_layers,
            heads=cfg.bert_heads,
            ffn=cfg.bert_ffn,
            dropout=cfg.bert_dropout,
            keep=cfg.bert_keep,
            cls_dropout=cfg.cls_dropout,
            time_norm=cfg.time_norm,
            max_len=max_len or temporal_size(T, cfg.temporal_strides),
            rate_input=bool(getattr(cfg, "rate_input", False)),
        )

    def key_mask(self, batch: int, steps: int, device: torch.device) -> torch.Tensor | None:
        """(B, T'+1) booleans, True = attendable; CLS (column 0) always kept. None outside training or when keep=1."""
        if not self.training or self.keep >= 1.0:
            return None
        mask = torch.rand(batch, steps + 1, device=device) < self.keep
        mask[:, 0] = True
        return mask

    def encode_with_attention(
        self, x: torch.Tensor, rate: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Feature map (B, D, T', h, w) or tokens (B, T', D) [and frames per slot (B,) with rate_input] -> CLS
        output (B, hidden) and the CLS attention over time (B, T') of the last layer, averaged over heads (None
        without blocks). Sets no attribute, so it traces and exports as a plain function."""
        tokens = to_tokens(x)
        B, steps, D = tokens.shape
        if D != self.in_features:
            raise ValueError(f"BERT head expects {self.in_features} features per time step, got {D}")
        if steps > self.max_len:
            raise ValueError(
                f"BERT head was built for at most {self.max_len} time steps, got {steps}: build it for longer clips"
            )
        tokens = time_normalize(tokens, self.time_norm)
        h = self.proj(tokens)
        h = torch.cat([self.cls_token.expand(B, -1, -1).to(h.dtype), h], dim=1)
        h = h + self.pos_embed[:, : steps + 1].to(h.dtype)
        if self.rate_embed is not None:
            h = h + self.rate_embed(rate_column(rate, B)).unsqueeze(1).to(h.dtype)
        h = self.embed_drop(h)
        mask = self.key_mask(B, steps, h.device)
        weights = None
        for block in self.blocks:
            h, weights = block(h, mask)
        # CLS row of the last layer, time-step columns, mean over heads -> (B, T').
        return h[:, 0], None if weights is None else weights[:, :, 0, 1:].mean(dim=1)

    def encode(self, x: torch.Tensor, rate: torch.Tensor | None = None) -> torch.Tensor:
        """Feature map (B, D, T', h, w) or tokens (B, T', D) -> CLS output (B, hidden); sets `self.attention`."""
        h, att = self.encode_with_attention(x, rate)
        self.attention = None if att is None else att.detach()
        return h

    def forward_with_attention(
        self, x: torch.Tensor, rate: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, D, T', h, w) or (B, T', D) -> logits (B, num_classes) and the CLS attention (B, T')."""
        h, att = self.encode_with_attention(x, rate)
        return self.fc(self.cls_drop(h)), att

    def forward(self, x: torch.Tensor, rate: torch.Tensor | None = None) -> torch.Tensor:
        """(B, D, T', h, w) or (B, T', D) [, frames per slot (B,) with rate_input] -> logits (B, num_classes)."""
        return self.fc(self.cls_drop(self.encode(x, rate)))
