"""R(2+1)D-BERT speed on this machine: forward and forward+backward, fp32 vs bf16 autocast (and channels_last_3d).

    python benchmarks/bench_models.py                 # R(2+1)D-18 and -34 at T=16 and T=64, batch 1, 112x112
    python benchmarks/bench_models.py --quick         # smoke run: width 0.25, R(2+1)D-18, T=16 (well under a minute)
    python benchmarks/bench_models.py --depths 18 34 --frames 16 --threads 1   # a shared, busy machine

Every row is timed in the same process as a bf16 and an fp32 GEMM (torch.matmul of two large square matrices), so the
achieved FLOP/s can be read against what this CPU's matrix units reach right now; the machine is shared, so compare
ratios (bf16 vs fp32, model vs GEMM), not absolute times. Variants are interleaved and the best run is kept; with other
jobs on the cores, `--threads 1` gives steadier ratios (no OpenMP barrier waits on a descheduled thread). FLOPs come
from torch.utils.flop_counter on the meta device (2 per multiply-accumulate; backward counted as traced).
Writes runs/bench/models.json.
"""

from __future__ import annotations

import argparse
import copy
import platform
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from darkaction.config import ModelConfig
from darkaction.models.build import build_model
from darkaction.utils import write_json

# (label, autocast dtype or None, memory format)
VARIANTS = {
    "fp32": (None, torch.contiguous_format),
    "bf16": (torch.bfloat16, torch.contiguous_format),
    "bf16+cl": (torch.bfloat16, torch.channels_last_3d),
    "fp32+cl": (None, torch.channels_last_3d),
}


def gemm_flops(dtype: torch.dtype, n: int, repeats: int) -> float:
    """Best FLOP/s of an n x n x n torch.matmul in `dtype` over `repeats` runs (after one warm-up)."""
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def model_cfg(depth: int, width: float, head: str) -> ModelConfig:
    return ModelConfig(
        backbone=f"r2plus1d_{depth}",
        head=head,
        ig65m_midplanes=depth == 34,  # the paper's R(2+1)D-34 is IG65M's layout
        width=width,
        bert_hidden=max(8, int(512 * width)) // 8 * 8,
        bert_ffn=max(8, int(2048 * width)),
    )


def count_flops(cfg: ModelConfig, shape: tuple[int, ...], backward: bool) -> int:
    """FLOPs of one forward (and backward) pass, traced on the meta device (no compute, no memory)."""
    with torch.device("meta"):
        model = build_model(cfg, 6, shape[2])
    model.train()
    x = torch.zeros(shape, device="meta")
    with FlopCounterMode(display=False) as counter:
        out = model(x)
        if backward:
            out.sum().backward()
    return counter.get_total_flops()


def one_run(model, x, labels, dtype, backward: bool) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one forward (no_grad, eval) or one training forward+backward."""
    model.train(backward)
    model.zero_grad(set_to_none=True)
    t, c = time.perf_counter(), time.process_time()
    with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        if backward:
            loss = torch.nn.functional.cross_entropy(model(x).float(), labels)
        else:
            with torch.no_grad():
                model(x)
    if backward:
        loss.backward()
    return time.perf_counter() - t, time.process_time() - c


def time_variants(models: dict, x, labels, variants: list[str], backward: bool, repeats: int) -> dict:
    """variant -> (best wall s, best CPU s, all wall times). Variants are interleaved (A B C A B C ...) after one
    warm-up each, so a burst of load from other jobs hits all of them alike; the minimum is the run least disturbed.

    CPU time is kept beside wall time because this machine is shared: when other jobs take the cores, wall time
    grows with the queue while CPU time grows much less.
    """
    inputs = {fmt: x.contiguous(memory_format=fmt) for fmt in {VARIANTS[v][1] for v in variants}}
    runs: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}
    for i in range(repeats + 1):  # round 0 is the warm-up (oneDNN picks kernels, the allocator grows)
        for v in variants:
            dtype, fmt = VARIANTS[v]
            r = one_run(models[fmt], inputs[fmt], labels, dtype, backward)
            if i:
                runs[v].append(r)
    return {v: (min(w for w, _ in r), min(c for _, c in r), [w for w, _ in r]) for v, r in runs.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--depths", type=int, nargs="+", default=[18, 34], choices=[18, 34])
    ap.add_argument("--frames", type=int, nargs="+", default=[16, 64], help="clip lengths T")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--size", type=int, default=112, help="height and width")
    ap.add_argument("--width", type=float, default=1.0, help="channel multiplier (1.0 = the paper's model)")
    ap.add_argument("--head", default="bert", choices=["bert", "tgap"])
    ap.add_argument("--variants", nargs="+", default=["fp32", "bf16", "bf16+cl"], choices=list(VARIANTS))
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per cell (best is reported), after a warm-up")
    ap.add_argument("--gemm", type=int, default=2048, help="GEMM size n for the n x n x n reference matmul")
    ap.add_argument("--no-backward", action="store_true", help="time forward passes only")
    ap.add_argument("--quick", action="store_true", help="smoke run: width 0.25, depth 18, T=16, 64x64, batch 2")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default, the core count)")
    ap.add_argument("--out", default="runs/bench/models.json")
    args = ap.parse_args(argv)
    if args.threads:
        # On a shared machine, 1 thread avoids OpenMP barriers waiting for a descheduled sibling thread.
        torch.set_num_threads(args.threads)
    if args.quick:
        # Batch 2: at batch 1 PyTorch sends fp32 convolutions with few channels to its slow im2col path instead of
        # oneDNN, which would flatter bf16 (always oneDNN) in a smoke run.
        args.depths, args.frames, args.width, args.size, args.batch = [18], [16], 0.25, 64, 2

    torch.manual_seed(0)
    gemm = {
        "bf16": gemm_flops(torch.bfloat16, args.gemm, 3),
        "fp32": gemm_flops(torch.float32, args.gemm, 3),
    }
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}; "
        f"GEMM {args.gemm}^3: bf16 {gemm['bf16'] / 1e9:.0f} GFLOP/s, fp32 {gemm['fp32'] / 1e9:.0f} GFLOP/s "
        f"(ratio {gemm['bf16'] / gemm['fp32']:.2f})",
        flush=True,
    )
    passes = ["fwd"] + ([] if args.no_backward else ["fwd+bwd"])
    header = f"{'model':<16}{'T':>4}{'pass':>9}{'variant':>9}{'GFLOP':>9}{'seconds':>9}{'GFLOP/s':>9}"
    header += f"{'of bf16 GEMM':>14}{'vs fp32':>9}{'CPU s':>9}{'vs fp32':>9}"
    print(header)
    rows = []
    for depth in args.depths:
        cfg = model_cfg(depth, args.width, args.head)
        for T in args.frames:
            shape = (args.batch, 3, T, args.size, args.size)
            torch.manual_seed(0)
            model = build_model(cfg, 6, T)
            # One copy per memory format, with the same weights, so variants can be interleaved without conversions.
            models = {torch.contiguous_format: model}
            if any(VARIANTS[v][1] == torch.channels_last_3d for v in args.variants):
                models[torch.channels_last_3d] = copy.deepcopy(model).use_channels_last()
            x = torch.randn(shape)
            labels = torch.zeros(args.batch, dtype=torch.long)
            for p in passes:
                backward = p == "fwd+bwd"
                # The GEMM reference is re-measured beside every cell and the best kept: a single measurement taken
                # while another job holds the core would make the model look faster than the matrix units.
                for k, dt in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
                    gemm[k] = max(gemm[k], gemm_flops(dt, args.gemm, 2))
                flops = count_flops(cfg, shape, backward)
                timed = time_variants(models, x, labels, args.variants, backward, args.repeats)
                base, base_cpu = timed["fp32"][:2] if "fp32" in timed else (None, None)
                for v in args.variants:
                    sec, cpu, all_runs = timed[v]
                    row = {
                        "model": f"r2plus1d_{depth}" + (f" w{args.width:g}" if args.width != 1 else ""),
                        "T": T,
                        "batch": args.batch,
                        "size": args.size,
                        "pass": p,
                        "variant": v,
                        "gflop": flops / 1e9,
                        "seconds": sec,
                        "gflops_per_s": flops / sec / 1e9,
                        "fraction_of_bf16_gemm": flops / sec / gemm["bf16"],
                        "speedup_vs_fp32": (base / sec) if base else None,
                        "cpu_seconds": cpu,
                        "cpu_speedup_vs_fp32": (base_cpu / cpu) if base_cpu else None,
                        "all_seconds": all_runs,
                    }
                    rows.append(row)
                    speed = f"{row['speedup_vs_fp32']:.2f}x" if row["speedup_vs_fp32"] else "-"
                    cspeed = f"{row['cpu_speedup_vs_fp32']:.2f}x" if row["cpu_speedup_vs_fp32"] else "-"
                    print(
                        f"{row['model']:<16}{T:>4}{p:>9}{v:>9}{row['gflop']:>9.1f}{sec:>9.3f}"
                        f"{row['gflops_per_s']:>9.0f}{row['fraction_of_bf16_gemm']:>13.0%} {speed:>9}"
                        f"{cpu:>9.3f}{cspeed:>9}",
                        flush=True,
                    )
            del model, models
    for row in rows:  # against the best GEMM seen in the whole run
        row["fraction_of_bf16_gemm"] = row["gflops_per_s"] * 1e9 / gemm["bf16"]
    print(
        f"best GEMM over the run: bf16 {gemm['bf16'] / 1e9:.0f} GFLOP/s, fp32 {gemm['fp32'] / 1e9:.0f} GFLOP/s; "
        f"best model: {max(r['fraction_of_bf16_gemm'] for r in rows):.0%} of bf16 GEMM"
    )
    out = write_json(
        Path(args.out),
        {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "gemm_n": args.gemm,
            "gemm_gflops_per_s": {k: v / 1e9 for k, v in gemm.items()},
            "settings": {k: v for k, v in vars(args).items() if k != "out"},
            "rows": rows,
        },
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
