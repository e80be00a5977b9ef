"""Data throughput: `prepare` frames per second on a synthetic dataset, and T=64 clip loads per second from the
112x112 cache compared with decoding the same frames from the video each time.

    .venv/bin/python benchmarks/bench_data.py [--reps 2] [--loads 300] [--workers 2]

Prints a table and writes runs/bench/data.json.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np

from darkaction.config import Config, DataConfig, DataSource, SynthConfig
from darkaction.data.prepare import open_prepared, prepare
from darkaction.data.video import decode
from darkaction.utils import read_json, write_json

OUT = Path("runs/bench")


def _synth_dataset(reps: int) -> Path:
    from darkaction.data.synthetic import synth

    out = OUT / f"synth_data_r{reps}"
    if not (out / "train.csv").is_file():
        synth(SynthConfig(out=str(out), seed=0, train_groups=2, test_groups=1, reps=reps))
    return out


def bench_prepare(data_root: Path, workers: int) -> dict:
    """Cold prepare (empty cache) then a warm re-run (nothing to do)."""
    prepared = OUT / "prepared_data_bench"
    shutil.rmtree(prepared, ignore_errors=True)
    cfg = Config(data=DataConfig(source=DataSource(format="synth", root=str(data_root)), prepared=str(prepared)))
    cfg.cache.workers = workers
    t = time.perf_counter()
    prepare(cfg, progress=False)
    cold = time.perf_counter() - t
    s = read_json(prepared / "prepare.json")
    t = time.perf_counter()
    prepare(cfg, progress=False)
    warm = time.perf_counter() - t
    return {
        "videos": s["decoded"],
        "frames": s["frames_decoded"],
        "cold_s": round(cold, 3),
        "frames_per_s": round(s["frames_decoded"] / cold, 1),
        "rerun_s": round(warm, 3),
        "cfg": cfg,
    }


def bench_clip_loads(cfg: Config, loads: int, T: int = 64) -> dict:
    """Cache: open the memmap and gather T indexed frames. Baseline: decode the video up to the last wanted frame
    (one sequential pass, the fastest way to get arbitrary frames from the file) and gather the same frames."""
    index, cache = open_prepared(cfg)
    rng = np.random.default_rng(0)
    recs = index.split("train")
    picks = [recs[i] for i in rng.integers(0, len(recs), loads)]
    idxs = [np.sort(rng.integers(0, r.n_frames, T)) for r in picks]

    t = time.perf_counter()
    for r, idx in zip(picks, idxs):
        clip = np.asarray(cache.frames(r.video_id)[idx])
    cache_s = (time.perf_counter() - t) / loads
    assert clip.shape == (T, 112, 112, 3)

    n_base = max(5, loads // 20)  # decoding is slow: fewer repetitions are enough for a stable mean
    t = time.perf_counter()
    for r, idx in zip(picks[:n_base], idxs[:n_base]):
        frames, _ = decode(r.path, height=112, width=112, max_frames=int(idx.max()) + 1)
        base = frames[idx]
    base_s = (time.perf_counter() - t) / n_base
    assert base.shape == clip.shape
    return {
        "T": T,
        "cache_ms_per_clip": round(cache_s * 1e3, 3),
        "cache_clips_per_s": round(1 / cache_s, 1),
        "decode_ms_per_clip": round(base_s * 1e3, 2),
        "speedup": round(base_s / cache_s, 1),
    }


def bench_train_step(T: int = 64, size: int = 112, steps: int = 3) -> dict:
    """The consumer: one training step (forward + backward + Ranger step, batch 1) of the CPU-sized R(2+1)D-18-BERT
    of configs/cpu.yaml at T x size x size, fp32 and bf16 autocast; the cache must deliver clips much faster."""
    import torch

    from darkaction.config import load_config
    from darkaction.models.build import build_model
    from darkaction.training.optim import build_optimizer

    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "cpu.yaml")
    model = build_model(cfg.model, 6, T)
    opt = build_optimizer("ranger", model.parameters(), cfg.train)
    x, y = torch.randn(1, 3, T, size, size), torch.zeros(1, dtype=torch.long)
    out = {}
    for name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        times = []
        for _ in range(steps + 1):
            t = time.perf_counter()
            with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = torch.nn.functional.cross_entropy(model(x).float(), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            times.append(time.perf_counter() - t)
        out[f"{name}_ms"] = round(1e3 * min(times[1:]), 1)  # first step warms up oneDNN
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=2, help="synthetic clips per (class, group)")
    ap.add_argument("--loads", type=int, default=300)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="fewer loads and training steps")
    args = ap.parse_args(argv)
    if args.quick:
        args.loads = min(args.loads, 60)
    root = _synth_dataset(args.reps)
    p = bench_prepare(root, args.workers)
    cfg = p.pop("cfg")
    c = bench_clip_loads(cfg, args.loads)
    s = bench_train_step(steps=1 if args.quick else 3)
    fastest_step = min(s["fp32_ms"], s["bf16_ms"])
    s["step_over_clip_load"] = round(fastest_step / c["cache_ms_per_clip"], 1)
    result = {"prepare": p, "clip_loads": c, "train_step": s, "workers": args.workers}
    print(f"{'measure':44s} {'value':>12s}")
    print(f"{'prepare: videos / frames decoded':44s} {p['videos']:>6d} / {p['frames']:<6d}")
    print(f"{'prepare: frames per second (cold, 112x112)':44s} {p['frames_per_s']:>12.1f}")
    print(f"{'prepare: re-run on unchanged data (s)':44s} {p['rerun_s']:>12.3f}")
    print(f"{'clip load from cache, T=64 (ms)':44s} {c['cache_ms_per_clip']:>12.3f}")
    print(f"{'clip loads per second from cache':44s} {c['cache_clips_per_s']:>12.1f}")
    print(f"{'baseline: decode the same frames (ms)':44s} {c['decode_ms_per_clip']:>12.2f}")
    print(f"{'cache speed-up over decoding (ratio)':44s} {c['speedup']:>12.1f}x")
    print(f"{'cpu.yaml model train step, T=64 fp32 (ms)':44s} {s['fp32_ms']:>12.1f}")
    print(f"{'cpu.yaml model train step, T=64 bf16 (ms)':44s} {s['bf16_ms']:>12.1f}")
    print(f"{'fastest train step / clip load (target >= 20)':44s} {s['step_over_clip_load']:>12.1f}x")
    write_json(OUT / "data.json", result)
    return result


if __name__ == "__main__":
    main()
