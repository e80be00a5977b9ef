"""`predict(videos, run, views=5) -> list[dict]`: classify video files with a trained run, from its directory alone.

    for r in predict(["night.avi"], "runs/demo"):
        print(r["label"], r["prob"], r["probs"])     # probs: {class name: mean softmax over the views}

Each video is decoded (`darkaction.data.video.decode`) and resized exactly like the run's frame cache, enhanced with
the run's enhancer (rebuilt from the run's config.yaml, whose `enhance.weights` training recorded), sampled into k test
views with the run's test strategy and N_min / N_max, and classified with the averaged softmax of the views.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from darkaction.errors import ConfigError, DataError
from darkaction.utils import resolve_device


class _OneVideoCache:
    """The minimal cache ClipDataset reads: frames(video_id) -> uint8 (N,H,W,3)."""

    def __init__(self, frames: dict[str, np.ndarray]):
        self._frames = frames

    def frames(self, video_id: str) -> np.ndarray:
        return self._frames[video_id]


def load_frames(path: str | Path, cfg, enhancer) -> np.ndarray:
    """Decode + enhance one video as the run's cache was built. -> uint8 (N,H,W,3) at the cache size."""
    from darkaction.data.video import decode, output_size

    c = cfg.cache
    if enhancer is not None and cfg.enhance.at == "source":
        frames, info = decode(path, resize="none")
        h, w = output_size(frames.shape[1], frames.shape[2], c.resize, c.height, c.width, c.short_side)
        out = np.empty((len(frames), h, w, 3), np.uint8)
        bs = max(1, cfg.enhance.batch_size)
        for i in range(0, len(frames), bs):
            for j, f in enumerate(enhancer(frames[i : i + bs])):
                out[i + j] = f if f.shape[:2] == (h, w) else cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA)
        return out
    frames, _ = decode(path, resize=c.resize, height=c.height, width=c.width, short_side=c.short_side)
    if enhancer is None:
        return frames
    bs = max(1, cfg.enhance.batch_size)
    return np.concatenate([enhancer(frames[i : i + bs]) for i in range(0, len(frames), bs)])


def predict(videos: list[str | Path], run: str | Path, views: int = 5, progress: bool = False) -> list[dict]:
    """Classify each video. Returns per video: video, label, prob (of that label), probs {class: p}, n_frames,
    views. Raises DataError naming the file for unreadable videos."""
    from darkaction.data.dataset import ClipDataset
    from darkaction.data.index import VideoRecord
    from darkaction.enhance.base import build_enhancer
    from darkaction.evaluation.evaluate import autocast_for, load_run, predict_views, resolve_run

    if views < 1:
        raise ConfigError(f"--views must be >= 1, got {views}")
    if not videos:
        raise DataError("no videos given; pass one or more video files")
    run_dir, _ = resolve_run(run)
    from darkaction.config import load_config

    device = resolve_device(load_config(run_dir / "config.yaml").device)
    cfg, classes, model, _ = load_run(run, device)
    try:
        enhancer = build_enhancer(cfg)
    except DataError as e:
        raise DataError(f"{run_dir / 'config.yaml'}: cannot rebuild the run's enhancer: {e}") from None
    if getattr(enhancer, "name", "") == "identity":
        enhancer = None
    ctx = autocast_for(cfg, device)
    out = []
    for v in videos:
        p = Path(v)
        if not p.exists():
            raise DataError(f"{p}: no such video file")
        frames = load_frames(p, cfg, enhancer)
        rec = VideoRecord(video_id="video", path=str(p), label=-1, split="test", n_frames=len(frames))
        flow = None
        if cfg.model.in_channels == 5:  # RGB + optical-flow model: flow of the enhanced frames, as in training
            from darkaction.data.flow import encode_flow, farneback_flow

            flow = _OneVideoCache({"video": encode_flow(farneback_flow(frames))})
        ds = ClipDataset(
            [rec],
            _OneVideoCache({"video": frames}),
            cfg,
            train=False,
            views=views,
            n_min=cfg.sampling.n_min or None,
            n_max=cfg.sampling.n_max or None,
            seed=cfg.train.seed,
            flow_cache=flow,
        )
        clips = ds[0]["clip"].unsqueeze(0).to(device)  # (1,V,C,T,H,W)
        probs, _ = predict_views(model, clips, ctx)
        mean = probs[0].mean(0)
        top = int(torch.argmax(mean))
        out.append(
            {
                "video": str(p),
                "label": classes[top],
                "prob": float(mean[top]),
                "probs": {c: float(mean[i]) for i, c in enumerate(classes)},
                "n_frames": int(len(frames)),
                "views": views,
            }
        )
    return out
