"""Training-step throughput of each shipped preset's model, against plain eager fp32 timed in the same run.

    python benchmarks/bench_train.py                       # demo and cpu presets, every variant, 2 threads
    python benchmarks/bench_train.py --quick               # smoke run: the demo model, 3 timed steps
    python benchmarks/bench_train.py --presets paper       # the paper model (64x112x112 R(2+1)D-34 + BERT, batch 2)
    python benchmarks/bench_train.py --procs 2             # + one-thread processes side by side (experiment --jobs)
    python benchmarks/bench_train.py --profile runs/demo/config.yaml   # where a real fit's time goes

A step is what training does per batch: forward, focal loss, backward, Ranger step, on a batch of the preset's size
and input shape (random data: the data path is not timed here). Variants: `eager` (fp32, contiguous: the baseline),
`cl` (channels_last_3d), `bf16` (autocast; only fast with native bf16, AVX-512 BF16 / AMX), `bf16-cl` (both),
`compile` (torch.compile, inductor; its compile time is reported apart), `cl-compile` (fp32 channels-last
compiled), `bf16-compile` (compiled under bf16 autocast), `bf16-cl-compile` (all three). Variants are interleaved
after a warm-up, the best and the median of the timed steps are kept, and the fp32 and (where native) bf16 GEMM
peaks are measured in the same run: compare ratios, not seconds.
`--procs N` runs the eager step in N processes of one thread each at once and reports their summed clips/s against
one process with all threads: what `darkaction experiment --jobs N` gains. `--profile RUN/config.yaml` trains that
run's configuration again for a few epochs (into a temporary folder, on its prepared data) under Lightning's simple
profiler and splits the fit's wall time into the training step (forward + loss, backward) and everything outside it
(data, optimizer, precise BN, checkpoints, validation, the rest of Lightning); Lightning's full report is copied to
runs/bench/train-fit-profile.txt. Writes runs/bench/train.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from darkaction.config import load_config
from darkaction.models.build import build_model
from darkaction.training.losses import build_loss
from darkaction.training.optim import build_optimizer
from darkaction.utils import packaged_path, write_json

PRESETS = {"demo": "demo.yaml", "cpu": "cpu.yaml", "paper": "paper.yaml"}
VARIANTS = ("eager", "cl", "bf16", "bf16-cl", "compile", "cl-compile", "bf16-compile", "bf16-cl-compile")


def preset_shape(name: str, batch: int | None, overrides: tuple[str, ...] = ()) -> tuple[object, tuple[int, ...]]:
    cfg = load_config(packaged_path(f"configs/{PRESETS[name]}"), ["model.pretrained=none", *overrides])
    h = cfg.augment.height or cfg.cache.height
    w = cfg.augment.width or cfg.cache.width
    b = batch or (2 if name == "paper" else cfg.train.batch_size)
    return cfg, (b, cfg.model.in_channels, cfg.sampling.T, h, w)


def gemm_peak(dtype: torch.dtype, n: int = 1024, repeats: int = 5) -> float:
    """The best of torch's matmul (MKL for fp32) and a 1x1 convolution of the same size (oneDNN, the library the
    model's convolutions run on), each warmed up first: on an AMD CPU one cold matmul read 44 GFLOP/s, below the
    model's own rate; warmed, MKL reached 124 and oneDNN 144 (docs/results.md, session 17)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    x, w = a.reshape(1, n, 32, 32), b.reshape(n, n, 1, 1)  # (n x n) @ (n x n) as a 1x1 convolution: 2 n^3 FLOPs
    best = float("inf")
    for fn in (lambda: a @ b, lambda: torch.nn.functional.conv2d(x, w)):
        for _ in range(3):
            fn()
        best = min(best, min(_timed(fn) for _ in range(repeats)))
    return 2 * n**3 / best


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def step_flops(cfg, shape) -> float:
    with torch.device("meta"):
        model = build_model(cfg.model, 6, shape[2])
    model.train()
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(shape, device="meta")).sum().backward()
    return float(counter.get_total_flops())


class Step:
    """One training step of a fresh model (seed 0) in one variant."""

    def __init__(self, cfg, shape, variant: str):
        torch.manual_seed(0)
        self.model = build_model(cfg.model, 6, shape[2]).train()
        parts = variant.split("-")
        cl = "cl" in parts
        self.fmt = torch.channels_last_3d if cl else torch.contiguous_format
        self.model.use_channels_last(cl)  # what train.channels_last does
        self.forward = torch.compile(self.model) if "compile" in parts else self.model
        self.bf16 = "bf16" in parts
        self.loss = build_loss(cfg.train.loss, cfg.train.focal_gamma)
        self.opt = build_optimizer(cfg.train.optimizer, self.model.parameters(), cfg.train)
        g = torch.Generator().manual_seed(1)
        self.x = torch.randn(shape, generator=g).contiguous(memory_format=self.fmt)
        self.y = torch.randint(0, 6, (shape[0],), generator=g)

    def __call__(self) -> None:
        self.opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            out = self.forward(self.x)
        self.loss(out.float(), self.y).backward()
        self.opt.step()


def bench_preset(name: str, variants: list[str], steps: int, batch: int | None, overrides=()) -> list[dict]:
    cfg, shape = preset_shape(name, batch, overrides)
    flops = step_flops(cfg, shape)
    # each preset compiles afresh: dynamo's cache is per code object, so the models' shared forward would otherwise
    # be recompiled with dynamic shapes for the second preset (inductor failed on that: "Invalid ranges", session 18)
    torch._dynamo.reset()
    runs, compile_s = {}, {}
    for v in variants:
        runs[v] = Step(cfg, shape, v)
        t = time.perf_counter()
        runs[v]()  # warm-up: oneDNN picks kernels, the allocator grows, inductor compiles
        if "compile" in v.split("-"):
            compile_s[v] = time.perf_counter() - t
    times: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(steps):  # interleaved: a burst of load from elsewhere hits every variant alike
        for v in variants:
            times[v].append(_timed(runs[v]))
    base = min(times["eager"]) if "eager" in times else None
    rows = []
    for v in variants:
        best, med = min(times[v]), statistics.median(times[v])
        rows.append({"preset": name, "variant": v, "shape": list(shape), "gflop_per_step": flops / 1e9,
                     "best_s": best, "median_s": med, "clips_per_s": shape[0] / best,
                     "gflops_per_s": flops / best / 1e9,
                     "speedup_vs_eager": base / best if base else None, "compile_s": compile_s.get(v),
                     "all_s": times[v]})  # fmt: skip
    return rows


def bench_eval(name: str, views: int, batches: tuple[int, ...], repeats: int, overrides=()) -> list[dict]:
    """Inference clips/s of the preset's model in eval mode with `b` videos x `views` views per forward, for each b
    (evaluate's eval.batch_size), interleaved, best of `repeats`."""
    cfg, shape = preset_shape(name, None, overrides)
    torch.manual_seed(0)
    model = build_model(cfg.model, 6, shape[2]).eval()
    xs = {b: torch.randn(b * views, *shape[1:]) for b in batches}
    best = dict.fromkeys(batches, float("inf"))
    with torch.inference_mode():
        for i in range(repeats + 1):
            for b in batches:
                t = _timed(lambda x=xs[b]: model(x))
                if i:  # round 0 warms up
                    best[b] = min(best[b], t)
    return [{"preset": name, "videos_per_batch": b, "views": views, "clips_per_s": b * views / best[b]}
            for b in batches]  # fmt: skip


def _proc_worker(name: str, batch: int | None, steps: int, overrides, start, queue) -> None:
    torch.set_num_threads(1)
    cfg, shape = preset_shape(name, batch, overrides)
    step = Step(cfg, shape, "eager")
    step()
    start.wait()  # every process starts timing together
    t = time.perf_counter()
    for _ in range(steps):
        step()
    queue.put(steps * shape[0] / (time.perf_counter() - t))


def bench_procs(name: str, procs: int, steps: int, batch: int | None, overrides=()) -> dict:
    """Summed clips/s of `procs` one-thread processes running the eager step at once, and one process with every
    thread over the same number of steps."""
    ctx = mp.get_context("spawn")
    start, queue = ctx.Barrier(procs), ctx.Queue()
    ps = [ctx.Process(target=_proc_worker, args=(name, batch, steps, overrides, start, queue)) for _ in range(procs)]
    for p in ps:
        p.start()
    rates = [queue.get() for _ in ps]
    for p in ps:
        p.join()
    cfg, shape = preset_shape(name, batch, overrides)
    step = Step(cfg, shape, "eager")
    step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    one = steps * shape[0] / (time.perf_counter() - t)
    return {"preset": name, "procs": procs, "clips_per_s_procs": sum(rates), "per_proc": rates,
            "clips_per_s_one_process": one, "threads_one_process": torch.get_num_threads(),
            "gain": sum(rates) / one}  # fmt: skip


def profile_fit(run_config: str, epochs: int, out: Path, overrides=()) -> dict:
    """Train `run_config` again for `epochs` (in a temporary folder, no loggers) under the simple profiler; returns
    its fit-shares.json record and copies Lightning's full report next to `out`."""
    import shutil
    import tempfile

    from darkaction.training.run import train

    with tempfile.TemporaryDirectory() as tmp:
        fixed = [("run_dir", tmp), ("train.epochs", epochs), ("train.max_steps", -1), ("train.pretrain_epochs", 0),
                 ("train.progress", False), ("train.loggers", []), ("train.profiler", "simple")]  # fmt: skip
        cfg = load_config(run_config, [*fixed, *overrides])
        run = train(cfg)
        record = json.loads((run / "fit-shares.json").read_text())
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(run / "fit-profile.txt", out.with_name(out.stem + "-fit-profile.txt"))
    return {"config": run_config, "epochs": epochs, "batch": cfg.train.batch_size, **record}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--presets", nargs="+", choices=list(PRESETS), help="default: demo cpu (none with --profile)")
    ap.add_argument("--variants", nargs="+", default=["eager", "cl", "bf16"], choices=VARIANTS)
    ap.add_argument("--steps", type=int, default=8, help="timed steps per variant (after one warm-up)")
    ap.add_argument("--batch", type=int, help="batch size (default: the preset's; paper: 2)")
    ap.add_argument("--procs", type=int, default=0, help="also time N one-thread processes side by side")
    ap.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="KEY=VALUE",
                    help="config overrides for every preset, e.g. augment.height=32 augment.width=32")  # fmt: skip
    ap.add_argument("--eval", action="store_true", help="also time inference at 1 vs 8 videos (x 5 views) a batch")
    ap.add_argument("--profile", metavar="RUN_CONFIG", help="a run's config.yaml: profile a few epochs of its fit")
    ap.add_argument("--profile-epochs", type=int, default=2, help="epochs of the profiled fit (default 2)")
    ap.add_argument("--quick", action="store_true", help="smoke run: the demo model, eager and cl, 3 steps")
    ap.add_argument("--out", default="runs/bench/train.json")
    args = ap.parse_args(argv)
    if args.presets is None:
        args.presets = [] if args.profile else ["demo", "cpu"]
    if args.quick:
        args.presets, args.variants, args.steps = ["demo"], ["eager", "cl"], 3
    native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}"
          f", native bf16: {native}", flush=True)  # fmt: skip
    peaks = {}
    if args.presets:  # the peaks the steps are compared with, measured in the same run
        # emulated bf16 (no AVX-512 BF16 / AMX) is no peak to measure against, and its GEMMs take ~40 s
        peaks = {"fp32": gemm_peak(torch.float32), "bf16": gemm_peak(torch.bfloat16) if native else None}
        bf16 = f"{peaks['bf16'] / 1e9:.0f} GFLOP/s" if native else "emulated, not measured"
        print(f"GEMM 1024^3 (matmul or 1x1 conv, the faster): fp32 {peaks['fp32'] / 1e9:.0f} GFLOP/s, bf16 {bf16}")
        print(f"{'preset':<7}{'variant':>9}{'GFLOP/step':>11}{'best s':>8}{'median s':>9}{'clips/s':>8}{'GFLOP/s':>8}"
              f"{'of fp32 pk':>11}{'of bf16 pk':>11}{'vs eager':>9}")  # fmt: skip
    rows = []
    for name in args.presets:
        for r in bench_preset(name, args.variants, args.steps, args.batch, tuple(args.overrides)):
            r["of_fp32_peak"] = r["gflops_per_s"] * 1e9 / peaks["fp32"]
            r["of_bf16_peak"] = r["gflops_per_s"] * 1e9 / peaks["bf16"] if native else None
            rows.append(r)
            of_bf16 = f"{r['of_bf16_peak']:>11.0%}" if native else f"{'emulated':>11}"
            extra = f"  (compile {r['compile_s']:.0f} s)" if r["compile_s"] else ""
            # without the eager variant in the run there is no baseline to divide by
            vs = f"{r['speedup_vs_eager']:>8.2f}x" if r["speedup_vs_eager"] else f"{'-':>9}"
            print(f"{name:<7}{r['variant']:>9}{r['gflop_per_step']:>11.1f}{r['best_s']:>8.3f}{r['median_s']:>9.3f}"
                  f"{r['clips_per_s']:>8.1f}{r['gflops_per_s']:>8.0f}{r['of_fp32_peak']:>11.0%}{of_bf16}"
                  f"{vs}{extra}", flush=True)  # fmt: skip
    procs = []
    if args.procs > 1:
        for name in args.presets:
            p = bench_procs(name, args.procs, args.steps, args.batch, tuple(args.overrides))
            procs.append(p)
            print(f"{name}: {args.procs} one-thread processes {p['clips_per_s_procs']:.1f} clips/s in total vs one "
                  f"process of {p['threads_one_process']} threads {p['clips_per_s_one_process']:.1f}: "
                  f"{p['gain']:.2f}x", flush=True)  # fmt: skip
    evals = []
    if args.eval:
        for name in args.presets:
            rows_e = bench_eval(name, 5, (1, 8), max(2, args.steps // 2), tuple(args.overrides))
            evals += rows_e
            base = rows_e[0]["clips_per_s"]
            cells = [f"{r['videos_per_batch']} video(s) x 5 views {r['clips_per_s']:.1f} clips/s "
                     f"({r['clips_per_s'] / base:.2f}x)" for r in rows_e]  # fmt: skip
            print(f"{name} inference: " + ", ".join(cells))
    out = Path(args.out)
    profile = None
    if args.profile:
        profile = profile_fit(args.profile, args.profile_epochs, out, tuple(args.overrides))
        print(f"fit of {args.profile}: {profile['epochs']} epochs, {profile['train_steps']} steps of "
              f"{profile['batch']} clips, {profile['fit_s']:.1f} s; outside the training step (forward + loss and "
              f"backward of the training batches): {profile['outside_train_step']:.0%}")  # fmt: skip
        for group, sec in profile["seconds"].items():
            share = profile["share"][group]
            print(
                f"  {group:<28}" + (f"{sec:>8.2f} s {share:>6.1%}" if sec is not None else "     n/a (accumulate > 1)")
            )
    write_json(out, {"overrides": args.overrides, "torch": torch.__version__, "threads": torch.get_num_threads(),
                     "cpu": platform.processor(), "cores": os.cpu_count(), "peaks": peaks, "rows": rows,
                     "procs": procs, "eval": evals, "profile": profile})  # fmt: skip
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
