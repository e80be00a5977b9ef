"""Latency per clip of the exported classifier: ONNX Runtime and TorchScript against PyTorch eager (fp32, and bf16
autocast where the CPU has it), on the same 5-view batches in the same run, with the max abs difference of the
softmax to PyTorch fp32.

    .venv/bin/python benchmarks/bench_export.py [--run runs/demo] [--reps 20] [--threads 2]

Without --run, the CPU preset's model with random weights is exported (latency does not depend on what it learned).
Interleaved repetitions, median of N. Prints a table and writes runs/bench/export.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from darkaction.utils import write_json

OUT = Path("runs/bench")


def random_run(folder: Path) -> Path:
    """A run directory holding the CPU preset's model with random weights (config and classes embedded)."""
    from darkaction.config import load_config, save_config, to_dict
    from darkaction.models.build import build_model

    cfg = load_config("configs/cpu.yaml", ["model.pretrained=", "sampling.alpha=14.1", "enhance.method=gamma"])
    torch.manual_seed(0)
    model = build_model(cfg.model, 6, cfg.sampling.T)
    classes = ["run", "sit", "stand", "turn", "walk", "wave"]
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    info = {"classes": classes, "num_classes": 6, "config": to_dict(cfg)}
    (folder / "checkpoints").mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "darkaction": info}, folder / "checkpoints" / "last.ckpt")
    save_config(cfg, folder / "config.yaml")
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--views", type=int, default=5)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--quick", action="store_true", help="5 repetitions")
    args = ap.parse_args()
    reps = 5 if args.quick else args.reps
    torch.set_num_threads(args.threads)
    from darkaction.inference import Recognizer
    from darkaction.inference.export import export_run

    with tempfile.TemporaryDirectory() as tmp:
        run = Path(args.run) if args.run else random_run(Path(tmp) / "run")
        fp32 = Recognizer.from_run(run, precision="fp32", enhancer=False)
        auto = Recognizer.from_run(run, enhancer=False)
        backends = {"pytorch fp32": fp32, "pytorch (run precision)": auto}
        for fmt in ("onnx", "torchscript"):
            export_run(run, Path(tmp) / fmt, fmt=fmt, views=args.views)
            backends[fmt] = Recognizer.from_run(Path(tmp) / fmt, enhancer=False)
        cfg = fp32.cfg
        gen = torch.Generator().manual_seed(1)
        shape = (1, args.views, cfg.model.in_channels, cfg.sampling.T, cfg.augment.height, cfg.augment.width)
        clips = torch.randn(shape, generator=gen)
        ref, _ = fp32.predict_clips(clips)
        times: dict[str, list[float]] = {k: [] for k in backends}
        for rec in backends.values():  # warm-up
            rec.predict_clips(clips)
        for _ in range(reps):
            for name, rec in backends.items():
                t0 = time.perf_counter()
                rec.predict_clips(clips)
                times[name].append(time.perf_counter() - t0)
        rows = []
        base = float(np.median(times["pytorch fp32"]))
        for name, rec in backends.items():
            med = float(np.median(times[name]))
            diff = float((rec.predict_clips(clips)[0] - ref).abs().max())
            rows.append({"backend": name, "ms_per_clip": 1000 * med, "speed_vs_pytorch_fp32": base / med,
                         "max_abs_diff_probs": diff})  # fmt: skip
    print(f"{args.views} views of {tuple(shape[2:])} per clip, {args.threads} torch threads, median of {reps}")
    print(f"{'backend':>24} {'ms per clip':>12} {'x fp32':>8} {'max |dp|':>10}")
    for r in rows:
        print(f"{r['backend']:>24} {r['ms_per_clip']:>12.1f} {r['speed_vs_pytorch_fp32']:>8.2f} "
              f"{r['max_abs_diff_probs']:>10.2e}")  # fmt: skip
    import onnxruntime

    record = {"rows": rows, "views": args.views, "threads": args.threads, "reps": reps, "run": args.run or "random",
              "onnxruntime": onnxruntime.__version__, "torch": torch.__version__}  # fmt: skip
    write_json(OUT / "export.json", record)


if __name__ == "__main__":
    main()
