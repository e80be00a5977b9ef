"""Optical flow for the RGB + flow model (Table 3): stored in a FrameCache as uint8 like the frames.

Encoding (shared by the flow cache writer and the dataset): channel 0 = dx, channel 1 = dy in pixels at cache
resolution, stored as clip(round(128 + FLOW_SCALE * d), 0, 255); channel 2 is unused (0). Flow of frame t is the
motion from frame t to frame t+1; the last frame repeats the previous flow.
"""

from __future__ import annotations

from pathlib import Path

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


# ---------------------------------------------------------------------------------------------- Farneback flow

# OpenCV Farneback settings (Farneback 2003, the paper's [15]); winsize 15 smooths the sensor noise of dark frames
# at 64-112 px, 3 pyramid levels reach motions of ~8 px between frames.
FARNEBACK = {"pyr_scale": 0.5, "levels": 3, "winsize": 15, "iterations": 3, "poly_n": 5, "poly_sigma": 1.2}


def farneback_flow(frames: np.ndarray) -> np.ndarray:
    """Dense optical flow of a clip: frames uint8 (T,H,W,3) RGB -> float32 (T,H,W,2) (dx, dy) in pixels.

    Flow t is the motion from frame t to frame t+1 (a point at (x, y) in frame t is at (x+dx, y+dy) in frame t+1);
    the last frame repeats the previous flow, a one-frame clip has zero flow.
    """
    import cv2

    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"farneback_flow expects frames of shape (T,H,W,3), got {frames.shape}")
    t, h, w, _ = frames.shape
    flow = np.zeros((t, h, w, 2), dtype=np.float32)
    grey = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames]
    for i in range(t - 1):
        flow[i] = cv2.calcOpticalFlowFarneback(grey[i], grey[i + 1], None, flags=0, **FARNEBACK)
    if t > 1:
        flow[-1] = flow[-2]
    return flow


def flow_dir(cfg, source_root: Path) -> Path:
    """`<prepared>/flow/<key>/` where key is the folder name of the cache the flow is computed from (the raw
    frame-cache key, or the enhancer fingerprint), so flow of different frames never mixes."""
    return Path(cfg.data.prepared) / "flow" / Path(source_root).name


_WORKER_CACHES: dict = {}


def flow_worker(source_root: str, video_id: str) -> tuple[str, np.ndarray, int]:
    """One video: read its frames from the source cache, return (id, encoded flow uint8 T,H,W,3, n_frames)."""
    from darkaction.data.cache import FrameCache

    cache = _WORKER_CACHES.get(source_root)
    if cache is None:
        cache = _WORKER_CACHES[source_root] = FrameCache(source_root)
    frames = np.asarray(cache.frames(video_id))
    return video_id, encode_flow(farneback_flow(frames)), int(frames.shape[0])


def init_flow_worker() -> None:
    import cv2

    cv2.setNumThreads(1)  # one process per core; OpenCV's own threads would oversubscribe
