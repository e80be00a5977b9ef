"""Optical flow for the RGB + flow model (Table 3): stored in a FrameCache as uint8 like the frames.

Encoding (shared by the flow cache writer and the dataset): channel 0 = dx, channel 1 = dy in pixels at cache
resolution, stored as clip(round(128 + FLOW_SCALE * d), 0, 255); channel 2 is unused (0). Flow of frame t is the
motion from frame t to frame t+1; the last frame repeats the previous flow.
"""

from __future__ import annotations

import numpy as np

FLOW_SCALE = 8.0  # 1/8 pixel resolution, +-16 px range: ample for 112x112 frames


def encode_flow(flow: np.ndarray) -> np.ndarray:
    """(T,H,W,2) float32 pixels -> (T,H,W,3) uint8."""
    out = np.zeros(flow.shape[:-1] + (3,), dtype=np.uint8)
    out[..., :2] = np.clip(np.rint(128.0 + FLOW_SCALE * flow), 0, 255).astype(np.uint8)
    return out


def decode_flow(encoded: np.ndarray) -> np.ndarray:
    """(T,H,W,3) uint8 -> (T,H,W,2) float32 pixels."""
    return (encoded[..., :2].astype(np.float32) - 128.0) / FLOW_SCALE
