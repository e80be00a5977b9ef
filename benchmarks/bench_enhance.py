"""Zero-DCE inference throughput: frames/s at 320x240 and 112x112 for DCE fp32, DCE bf16 and Zero-DCE++, each as a
ratio against a plain fp32 implementation of the official forward pass (8 separate curve slices, 8 sequential
`x + r * (x**2 - x)` updates, NCHW) timed in the same run, with the max abs difference to the plain output.

    .venv/bin/python benchmarks/bench_enhance.py [--weights Epoch99.pth] [--reps 5]

Prints a table and writes runs/bench/enhance.json. Interleaved repetitions, best of N: the machine is shared.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from darkaction.enhancement.base import bf16_supported
from darkaction.enhancement.dce import DCENet, DCENetPP
from darkaction.utils import write_json

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "zero_dce" / "official_Epoch99.pth"


class PlainDCE(torch.nn.Module):
    """The official forward pass written plainly (its style), sharing the weights of a DCENet. B,3,H,W -> B,3,H,W."""

    def __init__(self, net: DCENet) -> None:
        super().__init__()
        self.n = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.n
        x1 = F.relu(n.e_conv1(x))
        x2 = F.relu(n.e_conv2(x1))
        x3 = F.relu(n.e_conv3(x2))
        x4 = F.relu(n.e_conv4(x3))
        x5 = F.relu(n.e_conv5(torch.cat([x3, x4], 1)))
        x6 = F.relu(n.e_conv6(torch.cat([x2, x5], 1)))
        x_r = torch.tanh(n.e_conv7(torch.cat([x1, x6], 1)))
        r1, r2, r3, r4, r5, r6, r7, r8 = torch.split(x_r, 3, dim=1)
        x = x + r1 * (torch.pow(x, 2) - x)
        x = x + r2 * (torch.pow(x, 2) - x)
        x = x + r3 * (torch.pow(x, 2) - x)
        x = x + r4 * (torch.pow(x, 2) - x)
        x = x + r5 * (torch.pow(x, 2) - x)
        x = x + r6 * (torch.pow(x, 2) - x)
        x = x + r7 * (torch.pow(x, 2) - x)
        return x + r8 * (torch.pow(x, 2) - x)


def _best(fn, x: torch.Tensor, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn(x)
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=str(DEFAULT_WEIGHTS), help="DCE-Net weights (random init if missing)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--scale-factor", type=int, default=4, help="Zero-DCE++ curve downscale factor")
    ap.add_argument("--out", default="runs/bench/enhance.json")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 repetition")
    args = ap.parse_args(argv)
    if args.quick:
        args.reps = 1

    torch.manual_seed(0)
    net = DCENet()
    if Path(args.weights).is_file():
        net.load_state_dict(torch.load(args.weights, weights_only=True, map_location="cpu"))
    else:
        net.init_weights(0.02)
    net.eval()
    plain = PlainDCE(net).eval()
    fast = DCENet()
    fast.load_state_dict(net.state_dict())
    fast = fast.eval().to(memory_format=torch.channels_last)
    pp = DCENetPP(scale_factor=args.scale_factor)
    pp.init_weights(0.02)  # no official Zero-DCE++ weights here: speed only, its output is not comparable
    pp = pp.eval().to(memory_format=torch.channels_last)
    pp_s1 = DCENetPP(scale_factor=1)
    pp_s1.load_state_dict(pp.state_dict())
    pp_s1 = pp_s1.eval().to(memory_format=torch.channels_last)

    variants = {
        "dce fp32": lambda x: fast.enhance(x, "fp32"),
        "dce bf16": lambda x: fast.enhance(x, "bf16"),
        "dce++ fp32 s=1": lambda x: pp_s1.enhance(x, "fp32"),
        f"dce++ fp32 s={args.scale_factor}": lambda x: pp.enhance(x, "fp32"),
    }
    if not bf16_supported():
        print("note: this CPU has no native bf16; the bf16 row runs emulated")
    results = []
    torch.set_grad_enabled(False)
    for h, w, batch in ((240, 320, 8), (112, 112, 32)):
        g = torch.Generator().manual_seed(1)
        x = torch.rand(batch, 3, h, w, generator=g) * 0.3  # dark frames
        xcl = x.contiguous(memory_format=torch.channels_last)
        ref = plain(x)
        times = {"plain fp32": [], **{k: [] for k in variants}}
        for fn in [plain, *variants.values()]:  # warm-up: oneDNN primitive creation
            fn(xcl if fn is not plain else x)
        for _ in range(args.reps):  # interleaved so that load from other processes hits every variant alike
            times["plain fp32"].append(_best(plain, x, 1))
            for k, fn in variants.items():
                times[k].append(_best(fn, xcl, 1))
        t_plain = min(times["plain fp32"])
        for k in times:
            t = min(times[k])
            if k == "plain fp32":
                diff = 0.0
            elif k.startswith("dce++"):
                diff = float("nan")
            else:
                diff = float((variants[k](xcl) - ref).abs().max())
            results.append(
                {
                    "size": f"{w}x{h}",
                    "batch": batch,
                    "variant": k,
                    "fps": batch / t,
                    "ratio_vs_plain": t_plain / t,
                    "max_abs_diff": diff,
                }
            )
    print(f"{'size':>8} {'variant':>16} {'frames/s':>10} {'x plain':>8} {'max|diff|':>10}")
    for r in results:
        d = "-" if r["max_abs_diff"] != r["max_abs_diff"] else f"{r['max_abs_diff']:.2e}"
        print(f"{r['size']:>8} {r['variant']:>16} {r['fps']:>10.1f} {r['ratio_vs_plain']:>8.2f} {d:>10}")
    report = {
        "threads": torch.get_num_threads(),
        "bf16_native": bf16_supported(),
        "weights": args.weights if Path(args.weights).is_file() else "random",
        "results": results,
    }
    write_json(Path(args.out), report)
    print(f"written {args.out}")
    return report


if __name__ == "__main__":
    main()
