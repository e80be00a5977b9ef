"""Classification heads over a backbone feature map (B, D, T', h, w).

- `TGAPHead`: temporal + spatial global average pooling -> dropout -> Linear (the paper's "R(2+1)D TGAP" baseline).
  The mean over time forgets the order of the time steps, so a clip and its time-reversed copy get the same logits
  (the sit/stand confusion of Section 4.3).
- `BertHead` (in `bert.py`, re-exported here): a transformer over the T' time steps with positional embeddings.

Every head has `.attention` (B, T') or None, so evaluation code can ask any head for its temporal attention.
"""

from __future__ import annotations

import torch
from torch import nn

from darkaction.models.bert import BertHead, rate_column, rate_embedding, to_tokens

__all__ = ["BertHead", "TGAPHead"]


class TGAPHead(nn.Module):
    """(B, D, T', h, w) feature map or (B, T', D) tokens -> logits (B, num_classes): mean over time and space,
    dropout, Linear(D, num_classes). `attention` is always None (a uniform average has nothing to show)."""

    def __init__(self, in_features: int, num_classes: int, dropout: float = 0.8, rate_input: bool = False) -> None:
        super().__init__()
        self.in_features = in_features
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(in_features, num_classes)
        self.attention: torch.Tensor | None = None
        nn.init.normal_(self.fc.weight, 0.0, 0.01)
        nn.init.zeros_(self.fc.bias)
        # the pooled features + a learned function of the clip's log frames per slot (`model.rate_input`)
        self.rate_embed = rate_embedding(in_features) if rate_input else None

    @classmethod
    def from_config(cls, cfg, in_features: int, num_classes: int, T: int = 0) -> TGAPHead:
        """ModelConfig -> TGAPHead; it uses `cls_dropout` like the BERT head's classifier (T is unused)."""
        return cls(in_features, num_classes, dropout=cfg.cls_dropout, rate_input=bool(getattr(cfg, "rate_input", 0)))

    def forward_with_attention(self, x: torch.Tensor, rate: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        return self.forward(x, rate), None

    def forward(self, x: torch.Tensor, rate: torch.Tensor | None = None) -> torch.Tensor:
        pooled = to_tokens(x).mean(dim=1)
        if pooled.shape[1] != self.in_features:
            raise ValueError(f"TGAP head expects {self.in_features} features, got {pooled.shape[1]}")
        if self.rate_embed is not None:
            pooled = pooled + self.rate_embed(rate_column(rate, pooled.shape[0])).to(pooled.dtype)
        return self.fc(self.drop(pooled))
