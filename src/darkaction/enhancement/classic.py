"""Classic baselines: identity (no enhancement) and gamma correction (the paper's Table 1 baseline)."""

from __future__ import annotations

import numpy as np

from darkaction.enhancement.base import Enhancer


class IdentityEnhancer(Enhancer):
    """No enhancement: training reads the raw cache. frames uint8 N,H,W,3 -> the same frames."""

    name = "identity"

    def __init__(self) -> None:
        super().__init__(weights_hash="", settings={})

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        return np.asarray(frames, dtype=np.uint8)


def gamma_lut(gamma: float) -> np.ndarray:
    """256-entry uint8 table for out = in ** gamma on [0, 1] (gamma < 1 brightens)."""
    x = np.arange(256, dtype=np.float64) / 255.0
    return np.clip(np.round(255.0 * np.power(x, gamma)), 0, 255).astype(np.uint8)


class GammaEnhancer(Enhancer):
    """Blanket gamma correction out = in ** gamma through a 256-entry lookup table. uint8 N,H,W,3 -> N,H,W,3."""

    name = "gamma"

    def __init__(self, gamma: float = 0.5, at: str = "cache") -> None:
        if not gamma > 0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        self.gamma = float(gamma)
        self.lut = gamma_lut(self.gamma)
        super().__init__(weights_hash="", settings={"gamma": f"g{self.gamma:g}", "at": f"at_{at}"})

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        return self.lut[np.asarray(frames, dtype=np.uint8)]
