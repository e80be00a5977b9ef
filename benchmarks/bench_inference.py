"""Long-video inference: peak memory (RSS) of `Recognizer.windows` on 1 min vs 10 min of 320x240 30 fps video, and the
latency per window, against decoding the whole 10-min video into memory first (the previous `predict`) in the same run.

    .venv/bin/python benchmarks/bench_inference.py [--run runs/demo] [--minutes 1 10] [--window 4 --stride 2]

Without --run, the CPU preset's model with random weights (and a random Zero-DCE) is used: memory and latency do not
depend on what the weights learned. Each measurement runs in a fresh child process (peak RSS is per process).
Prints a table and writes runs/bench/inference.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from darkaction.utils import write_json

OUT = Path("runs/bench")


def render(path: Path, seconds: float, fps: int = 30, size: tuple[int, int] = (240, 320)) -> Path:
    """A dark, noisy video with a moving bright blob, encoded frame by frame (never held in memory)."""
    import av

    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.mp4")
    rng = np.random.default_rng(0)
    h, w = size
    noise = np.clip(10 + rng.normal(0, 3, (32, h, w, 3)), 0, 255).astype(np.uint8)  # cycled: cheap to draw
    yy, xx = np.mgrid[-24:24, -24:24]
    blob = (40.0 * np.exp(-(xx**2 + yy**2) / 300.0))[..., None].astype(np.uint8)
    with av.open(str(tmp), "w") as out:
        s = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "23"})
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for i in range(int(seconds * fps)):
            img = noise[i % len(noise)].copy()
            cx = int(w / 2 + (w / 3) * np.sin(i / 40))
            cy = int(h / 2 + (h / 4) * np.cos(i / 55))
            patch = img[cy - 24 : cy + 24, cx - 24 : cx + 24]
            patch += np.minimum(blob[: patch.shape[0], : patch.shape[1]], 255 - patch)
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)
    tmp.replace(path)
    return path


def recognizer(run: str):
    from darkaction.inference import Recognizer

    if run:
        return Recognizer.from_run(run)
    import torch

    from darkaction.config import load_config
    from darkaction.enhancement.base import CurveEnhancer
    from darkaction.enhancement.dce import DCENet
    from darkaction.models.build import build_model

    cfg = load_config("configs/cpu.yaml", ["model.pretrained=", "sampling.alpha=14.1"])
    torch.manual_seed(0)
    model = build_model(cfg.model, 6, cfg.sampling.T)
    enhancer = CurveEnhancer(DCENet(), "zero-dce", "random", cfg.enhance.precision, cfg.enhance.batch_size)
    return Recognizer(cfg, ["run", "sit", "stand", "turn", "walk", "wave"], model, enhancer)


def child(args: argparse.Namespace) -> None:
    """One measurement in this process; prints one JSON line."""
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    rec = recognizer(args.run)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    if args.mode == "windows":
        lat = [w["latency"] for w in rec.windows(args.video, window=args.window, stride=args.stride, views=args.views,
                                                  thumbnails=False)]  # fmt: skip
        n = len(lat)
    else:  # the previous `predict`: decode the whole video (resized to the cache size) first, then classify it once
        from darkaction.data.video import decode

        c = rec.cfg.cache
        frames, _ = decode(args.video, resize=c.resize, height=c.height, width=c.width, short_side=c.short_side)
        rec.predict(frames, views=args.views)
        lat, n = [], 1
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_mb": peak, "model_mb": base, "seconds": time.perf_counter() - t0, "windows": n,
                      "latency_ms": [1000 * x for x in lat]}))  # fmt: skip


def measure(video: Path, mode: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", str(video), "--mode", mode, "--run", args.run,
           "--window", str(args.window), "--stride", str(args.stride), "--views", str(args.views)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="", help="a trained run (default: the CPU preset's model, random weights)")
    ap.add_argument("--minutes", type=float, nargs="+", default=[1.0, 10.0])
    ap.add_argument("--window", type=float, default=4.0)
    ap.add_argument("--stride", type=float, default=2.0)
    ap.add_argument("--views", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="0.25 and 1 minute")
    ap.add_argument("--child", default="", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="windows", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.video = args.child
        return child(args)
    minutes = [0.25, 1.0] if args.quick else args.minutes
    videos = {m: render(OUT / "videos" / f"dark_{m:g}min.mp4", 60 * m) for m in minutes}
    rows = []
    for m, v in videos.items():
        r = measure(v, "windows", args)
        lat = np.array(r["latency_ms"])
        rows.append({"minutes": m, "mode": "windows (streamed)", **{k: r[k] for k in ("peak_mb", "model_mb", "seconds",
                     "windows")}, "latency_ms_median": float(np.median(lat)), "latency_ms_p95": float(np.percentile(
                     lat, 95))})  # fmt: skip
    full = measure(videos[max(minutes)], "whole", args)
    rows.append({"minutes": max(minutes), "mode": "old predict (whole video)", **{k: full[k] for k in ("peak_mb",
                 "model_mb", "seconds", "windows")}})  # fmt: skip
    print(f"{'video':>8} {'mode':>26} {'peak RSS MB':>12} {'after load MB':>14} {'s':>7} {'windows':>8} "
          f"{'latency ms (median / p95)':>26}")  # fmt: skip
    for r in rows:
        lat = f"{r['latency_ms_median']:.0f} / {r['latency_ms_p95']:.0f}" if "latency_ms_median" in r else "-"
        print(f"{r['minutes']:>6g} m {r['mode']:>26} {r['peak_mb']:>12.0f} {r['model_mb']:>14.0f} {r['seconds']:>7.1f} "
              f"{r['windows']:>8} {lat:>26}")  # fmt: skip
    s = [r for r in rows if r["mode"].startswith("windows")]
    ratio = s[-1]["peak_mb"] / s[0]["peak_mb"]
    print(f"peak RSS {s[-1]['minutes']:g} min / {s[0]['minutes']:g} min of video (streamed windows): {ratio:.2f}x")
    record = {"rows": rows, "peak_ratio_long_over_short": ratio, "window": args.window, "stride": args.stride,
              "views": args.views, "run": args.run or "random"}  # fmt: skip
    write_json(OUT / "inference.json", record)


if __name__ == "__main__":
    main()
