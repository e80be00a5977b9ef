"""Sampled + augmented clips per second (T=64, 112x112 from a cache of 112x112 frames).

    .venv/bin/python benchmarks/bench_sampling.py [--seconds 3] [--videos 24]

Rows: the project's ClipDataset (delta sampling + one composed warpAffine per frame + torch normalisation) in one
process and with 2 DataLoader workers; a batched torch affine_grid/grid_sample geometric path; and a plain
baseline that applies flip, rotation and translation as separate cv2 calls frame by frame and normalises each frame
in NumPy. Writes runs/bench/sampling.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from darkaction.config import Config
from darkaction.data.dataset import ClipDataset
from darkaction.data.sampling import sample
from darkaction.data.transforms import ClipTransform
from darkaction.utils import write_json


class MemCache:
    def __init__(self, videos: dict[str, np.ndarray]):
        self.videos = videos

    def frames(self, video_id: str) -> np.ndarray:
        return self.videos[video_id]


class Rec:
    def __init__(self, video_id: str, label: int):
        self.video_id, self.label, self.n_frames = video_id, label, 0


def make_data(n_videos: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    videos = {
        f"v{i}": rng.integers(0, 256, (int(rng.integers(33, 226)), 112, 112, 3), np.uint8) for i in range(n_videos)
    }
    return [Rec(k, i % 6) for i, k in enumerate(videos)], MemCache(videos)


def rate(fn, seconds: float) -> float:
    """Calls of fn per second, measured for about `seconds` after one warm-up call."""
    fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - t0)


def baseline_clip(frames: np.ndarray, idx: np.ndarray, rng: np.random.Generator, mean, std) -> torch.Tensor:
    """Naive per-frame pipeline: every op is its own cv2 call per frame, normalised frame by frame."""
    import cv2

    flip = rng.random() < 0.5
    angle = rng.uniform(-10, 10)
    tx, ty = rng.uniform(-0.1, 0.1, 2) * 112
    rot = cv2.getRotationMatrix2D((55.5, 55.5), angle, 1.0)
    shift = np.float32([[1, 0, tx], [0, 1, ty]])
    out = []
    for i in idx:
        f = np.zeros((112, 112, 3), np.uint8) if i < 0 else np.ascontiguousarray(frames[i])
        if flip:
            f = cv2.flip(f, 1)
        f = cv2.warpAffine(f, rot, (112, 112))
        f = cv2.warpAffine(f, shift, (112, 112))
        out.append((f.astype(np.float32) / 255.0 - mean) / std)
    return torch.from_numpy(np.stack(out)).permute(3, 0, 1, 2).contiguous()


def grid_sample_clip(frames: np.ndarray, idx: np.ndarray, tf: ClipTransform, rng: np.random.Generator) -> torch.Tensor:
    """Same composed matrix as ClipTransform, applied to the whole clip at once with affine_grid + grid_sample."""
    x = torch.from_numpy(frames[np.where(idx < 0, 0, idx)]).permute(0, 3, 1, 2).float().div_(255.0)
    m = np.vstack([tf.matrix((112, 112), rng), [0, 0, 1]])
    # affine_grid maps output -> input in normalised coordinates (align_corners=False)
    to_norm = np.array([[2 / 112, 0, 1 / 112 - 1], [0, 2 / 112, 1 / 112 - 1], [0, 0, 1]])
    theta = (to_norm @ np.linalg.inv(m) @ np.linalg.inv(to_norm))[:2]
    th = torch.tensor(theta, dtype=torch.float32).expand(x.shape[0], 2, 3)
    grid = torch.nn.functional.affine_grid(th, list(x.shape), align_corners=False)
    y = torch.nn.functional.grid_sample(x, grid, align_corners=False)
    y[torch.from_numpy(idx < 0)] = 0
    return y.permute(1, 0, 2, 3).sub_(tf.mean).div_(tf.std)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="measuring time per row")
    ap.add_argument("--videos", type=int, default=24)
    ap.add_argument("--out", default="runs/bench/sampling.json")
    ap.add_argument("--quick", action="store_true", help="smoke run: 0.5 s per row, 6 videos")
    args = ap.parse_args(argv)
    if args.quick:
        args.seconds, args.videos = 0.5, 6
    torch.set_num_threads(1)

    cfg = Config()
    cfg.sampling.T = 64
    records, cache = make_data(args.videos)
    ds = ClipDataset(records, cache, cfg, train=True)
    tf = ds.transform
    params = ds.params
    mean, std = np.float32([0.43216, 0.394666, 0.37645]), np.float32([0.22803, 0.22145, 0.216989])
    rng = np.random.default_rng(0)
    counter = iter(range(10**9))

    def one_dataset():
        ds[next(counter) % len(ds)]

    def pick():
        frames = cache.frames(records[next(counter) % len(records)].video_id)
        return frames, sample("delta", len(frames), 64, rng, **params)

    def one_baseline():
        frames, idx = pick()
        baseline_clip(frames, idx, rng, mean, std)

    def one_grid():
        frames, idx = pick()
        grid_sample_clip(frames, idx, tf, rng)

    rows = {
        "dataset, 1 process (warpAffine per frame)": rate(one_dataset, args.seconds),
        "grid_sample on the whole clip, 1 process": rate(one_grid, args.seconds),
        "baseline: per-frame cv2 ops + numpy normalise": rate(one_baseline, args.seconds),
    }
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, shuffle=True, persistent_workers=True)
    it = iter(loader)
    next(it)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < args.seconds:
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            continue
        n += batch["clip"].shape[0]
    rows["dataset, DataLoader 2 workers"] = n / (time.perf_counter() - t0)
    base = rows["baseline: per-frame cv2 ops + numpy normalise"]
    print(f"{'path':52s} {'clips/s':>9s} {'vs baseline':>12s}")
    for name, r in rows.items():
        print(f"{name:52s} {r:9.1f} {r / base:11.2f}x")
    result = {
        "T": 64,
        "size": [112, 112],
        "cpu_threads": torch.get_num_threads(),
        "clips_per_s": rows,
        "speedup_vs_baseline": {k: v / base for k, v in rows.items()},
    }
    write_json(Path(args.out), result)
    print(f"written to {args.out}")
    return result


if __name__ == "__main__":
    main()
