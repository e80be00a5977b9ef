"""Accuracy of the method in miniature (issue 13): the CPU preset with its BERT head and with a TGAP head on the same
pretrained backbone, several seeds, on the preset's data (default: `synth.profile: arid`) or any other
(`--set data.source.root=... synth.profile=arid-val ...`).

    .venv/bin/python benchmarks/acc_miniature.py [--config configs/cpu.yaml] [--seeds 3] [--heads bert,tgap]
        [--out runs/miniature] [--set KEY=VALUE ...] [--against OTHER_OUT]
    # the second, differently rendered profile (its own data, cache and runs):
    .venv/bin/python benchmarks/acc_miniature.py --out runs/miniature-val --set synth.profile=arid-val \
        synth.out=data/arid-val data.source.root=data/arid-val data.prepared=prepared/arid-val
    # the runs trained on the preset's data, also scored on another dataset with the same classes (transfer):
    .venv/bin/python benchmarks/acc_miniature.py --no-train --transfer synth.profile=arid-val \
        synth.out=data/arid-val data.source.root=data/arid-val data.prepared=prepared/arid-val

Every (head, seed) run is resumable and skipped when done. Prints and writes `<out>/summary.md` and `summary.json`:
per-seed test top-1 and sit<->stand confusion, the mean with a 95 % bootstrap interval (whole test recording groups
resampled, the same for every seed and head, and seeds resampled), and the paired
BERT - TGAP difference (same videos, same seeds) with its interval and a sign-flip permutation p-value over groups.
"""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

import numpy as np

from darkaction.config import load_config, save_config
from darkaction.evaluation.evaluate import evaluate
from darkaction.pipeline import build_data
from darkaction.training.run import train, train_seconds, train_state
from darkaction.utils import atomic_write_text, read_json, write_json


def transfer_run(run_dir: Path, overrides: list[str], out: Path) -> Path:
    """A copy of a trained run whose config reads another dataset (`overrides`): the checkpoint and the run's own
    enhancer weights stay, the data (rendered, prepared and enhanced with those weights when missing) change."""
    dest = out / run_dir.name
    cfg = load_config(run_dir / "config.yaml", [*overrides, f"run_dir={dest}"])
    # a saved config spells out every synth key, which would win over a `synth.profile` override: take the synth
    # section from the overrides alone
    cfg.synth = load_config(None, [o for o in overrides if o.startswith("synth.")]).synth
    for name in ("checkpoints/best.ckpt", "data.json", "metrics.csv"):
        if (run_dir / name).is_file() and not (dest / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(run_dir / name, dest / name)
    save_config(cfg, dest / "config.yaml")
    build_data(cfg)
    return dest


def score(res: dict, head: str, seed: int, seconds: float) -> dict:
    correct = np.array([p["pred"] == p["label"] for p in res["predictions"]], dtype=float)
    darkest = (res.get("by_brightness") or [{"acc": None, "n": 0}])[0]  # the nearly black band, 0-8 / 255
    return {"head": head, "seed": seed, "top1": res["top1"], "mean_class_acc": res["mean_class_acc"],
            "n": res["n_test_videos"], "sit_stand": sit_stand_confusion(res), "correct": correct.tolist(),
            "videos": [p["video_id"] for p in res["predictions"]], "train_seconds": round(seconds, 1),
            "nearly_black": darkest["acc"], "nearly_black_n": darkest["n"]}  # fmt: skip


def run_one(base: list[str], config: str, head: str, seed: int, out: Path, train_runs: bool = True,
            transfer: list[str] | None = None) -> dict:  # fmt: skip
    name = f"{head}-seed{seed}"
    cfg = load_config(config, [*base, f"model.head={head}", f"seed={seed}", f"train.seed={seed}",
                               f"name={name}", f"run_dir={out / name}"])  # fmt: skip
    run_dir = cfg.resolved_run_dir()
    state = train_state(run_dir, cfg.train.epochs)
    if not train_runs:
        state = "done"  # --no-train: score what is there (e.g. runs trained by parallel invocations)
    if state != "done":
        train(cfg, resume=state == "resume")
    seconds = train_seconds(run_dir)  # summed over resumed parts; runs from before fit.json: their bench.json
    if seconds is None and (run_dir / "bench.json").is_file():
        seconds = read_json(run_dir / "bench.json")["train_seconds"]
    seconds = float("nan") if seconds is None else seconds
    data: list[str] = []
    if transfer:
        run_dir = transfer_run(run_dir, transfer, out / "transfer")
        # the checkpoint's embedded config names the training data: point the evaluation at the other set
        data = [o for o in transfer if o.startswith("data.")]
    res = evaluate(run_dir, views=cfg.eval.views, progress=False, data=data, flip=cfg.eval.flip,
                   test_rates=cfg.sampling.test_rates)  # fmt: skip
    return score(res, head, seed, seconds)


def sit_stand_confusion(res: dict) -> float | None:
    """Share of sit and stand test videos predicted as the other one of the two."""
    classes = [c.lower() for c in res["classes"]]
    if "sit" not in classes or "stand" not in classes:
        return None
    i, j = classes.index("sit"), classes.index("stand")
    cm = np.asarray(res["confusion"])
    n = cm[i].sum() + cm[j].sum()
    return float((cm[i, j] + cm[j, i]) / n) if n else None


def group_of(video_id: str) -> str:
    """The recording group of an ARID-style video id (`Run__Run_17_1` -> `17`): the unit the claim generalises over."""
    parts = video_id.rsplit("_", 2)
    return parts[-2] if len(parts) == 3 else video_id


def _draw(groups: np.ndarray, seeds: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One bootstrap replicate: seeds resampled, and whole test groups resampled (the same for every seed and
    head, since all of them are scored on the same videos)."""
    names = np.unique(groups)
    pick = rng.choice(names, size=len(names))
    cols = np.concatenate([np.flatnonzero(groups == g) for g in pick])
    return rng.integers(0, seeds, seeds), cols


def bootstrap_mean(correct: np.ndarray, groups: np.ndarray, boot: int, rng: np.random.Generator) -> list[float]:
    """95 % interval of the mean accuracy (seeds x videos), seeds and test groups resampled."""
    means = np.empty(boot)
    for b in range(boot):
        rows, cols = _draw(groups, correct.shape[0], rng)
        means[b] = correct[rows][:, cols].mean()
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def paired(a: np.ndarray, b: np.ndarray, groups: np.ndarray, boot: int, rng: np.random.Generator) -> dict:
    """a - b on the same seeds and videos: the mean difference, its 95 % bootstrap interval (seeds and test groups
    resampled) and the p-value of a paired sign-flip permutation test over test groups (each group's difference,
    averaged over seeds, keeps or flips its sign)."""
    d = a - b
    diffs = np.empty(boot)
    for k in range(boot):
        rows, cols = _draw(groups, d.shape[0], rng)
        diffs[k] = d[rows][:, cols].mean()
    names = np.unique(groups)
    per_group = np.array([d[:, groups == g].sum() for g in names]) / d.size
    observed = per_group.sum()
    flips = rng.choice([-1.0, 1.0], size=(boot, len(names))) @ per_group
    p = (np.sum(np.abs(flips) >= abs(observed) - 1e-12) + 1) / (boot + 1)
    return {"diff": float(d.mean()), "lo": float(np.percentile(diffs, 2.5)), "hi": float(np.percentile(diffs, 97.5)),
            "p": float(p), "groups": len(names)}  # fmt: skip


def against(runs: list[dict], others: list[dict], groups: np.ndarray, boot: int, rng: np.random.Generator) -> dict:
    """Each head's paired difference (this - other) over the seeds both hold, on the same test videos."""
    out = {}
    for h in dict.fromkeys(r["head"] for r in runs):
        mine = {r["seed"]: r for r in runs if r["head"] == h}
        theirs = {r["seed"]: r for r in others if r["head"] == h}
        seeds = sorted(mine.keys() & theirs.keys())
        if not seeds:
            continue
        if any(theirs[s]["videos"] != mine[s]["videos"] for s in seeds):
            raise SystemExit(f"--against: the {h} runs were scored on other test videos; no paired comparison")
        a = np.array([mine[s]["correct"] for s in seeds])
        b = np.array([theirs[s]["correct"] for s in seeds])
        out[h] = {**paired(a, b, groups, boot, rng), "seeds": seeds}
    if not out:
        raise SystemExit("--against: no head and seed in common")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/cpu.yaml")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0,
                    help="seeds first-seed .. first-seed + seeds - 1 (two invocations side by side, one thread each, "
                         "can train different seeds into one --out; score them together afterwards)")  # fmt: skip
    ap.add_argument("--heads", default="bert,tgap")
    ap.add_argument("--out", default="runs/miniature")
    ap.add_argument("--boot", type=int, default=5000)
    ap.add_argument("--no-train", action="store_true", help="only evaluate and summarise runs that exist")
    ap.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="KEY=VALUE")
    ap.add_argument("--transfer", nargs="*", default=[], metavar="KEY=VALUE",
                    help="score the trained runs on another dataset: config overrides naming it (copies of the runs "
                         "go to <out>/transfer; the summary is <out>/transfer/summary.md)")  # fmt: skip
    ap.add_argument("--against", metavar="OUT",
                    help="another invocation's --out (e.g. another backbone): each head's paired difference to "
                         "the same head there (same seeds, videos; with --transfer, its transfer runs)")  # fmt: skip
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # the stages' progress messages
    out = Path(args.out)
    other = Path(args.against or "") / ("transfer" if args.transfer else "") / "summary.json"
    if args.against and not other.is_file():  # checked before any run is evaluated
        raise SystemExit(f"--against: {other} does not exist (run that invocation first)")
    if not args.no_train:  # --no-train scores runs that exist: their data are there (a transfer builds its own)
        build_data(load_config(args.config, args.overrides))
    heads = args.heads.split(",")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    pairs = [(h, s) for s in seeds for h in heads]
    runs = [run_one(args.overrides, args.config, h, s, out, not args.no_train, args.transfer) for h, s in pairs]
    if args.transfer:
        args.overrides = [*args.overrides, "transfer:", *args.transfer]
        out = out / "transfer"
    rng = np.random.default_rng(0)
    lines = [f"config {args.config} {' '.join(args.overrides)}".rstrip(), "",
             "| head | per-seed top-1 (%) | mean top-1 (95 % CI) | per-seed sit<->stand confusion (%) | "
             "per-seed top-1 on nearly black videos (%) | train s per run |", "|---|---|---|---|---|---|"]  # fmt: skip
    summary: dict = {"config": args.config, "overrides": args.overrides, "heads": {}}
    videos = runs[0]["videos"]
    if any(r["videos"] != videos for r in runs):
        raise SystemExit("runs were scored on different test videos; a paired comparison needs the same ones")
    groups = np.array([group_of(v) for v in videos])
    correct = {}
    for h in heads:
        rs = [r for r in runs if r["head"] == h]
        correct[h] = np.array([r["correct"] for r in rs])
        lo, hi = bootstrap_mean(correct[h], groups, args.boot, rng)
        mean = float(correct[h].mean())
        ss = [r["sit_stand"] for r in rs]
        summary["heads"][h] = {"top1": [r["top1"] for r in rs], "mean": mean, "ci": [lo, hi], "sit_stand": ss,
                               "n_test_videos": rs[0]["n"], "seeds": len(rs)}  # fmt: skip
        per = ", ".join(f"{100 * r['top1']:.1f}" for r in rs)
        sst = ", ".join("-" if v is None else f"{100 * v:.1f}" for v in ss)
        secs = ", ".join(f"{r['train_seconds']:.0f}" for r in rs)
        dark = ", ".join("-" if r.get("nearly_black") is None else f"{100 * r['nearly_black']:.1f}" for r in rs)
        dark += f" (of {rs[0].get('nearly_black_n', 0)})"
        lines.append(f"| {h} | {per} | {100 * mean:.1f} ({100 * lo:.1f}-{100 * hi:.1f}) | {sst} | {dark} | {secs} |")
    n, g = runs[0]["n"], len(set(groups))
    lines += ["", f"{n} test videos of {g} recording groups, {args.seeds} seeds ({seeds[0]}..{seeds[-1]}); "
              f"intervals: bootstrap over seeds and whole test groups (3 seeds make the seed part coarse; {g} groups "
              f"allow {2**g} sign patterns, so p >= 1/{2 ** (g - 1)}). Nearly black: source videos of mean 8-bit level "
              "below 8."]  # fmt: skip
    if "bert" in correct and "tgap" in correct:
        pd = paired(correct["bert"], correct["tgap"], groups, args.boot, rng)
        summary["bert_minus_tgap"] = pd
        ci = f"95 % CI {100 * pd['lo']:+.1f} to {100 * pd['hi']:+.1f}"
        lines.append(f"Paired BERT - TGAP (same videos and seeds): {100 * pd['diff']:+.1f} points ({ci}), "
                     f"sign-flip permutation p = {pd['p']:.3f} over {pd['groups']} test groups.")  # fmt: skip
    if args.against:
        diffs = against(runs, read_json(other)["runs"], groups, args.boot, rng)
        summary["against"] = {"out": str(other.parent), "heads": diffs}
        for h, pd in diffs.items():
            lines.append(f"Paired {h} here - {h} in {other.parent} (seeds {pd['seeds']}, same videos): "
                         f"{100 * pd['diff']:+.1f} points (95 % CI {100 * pd['lo']:+.1f} to {100 * pd['hi']:+.1f}), "
                         f"sign-flip p = {pd['p']:.3f}.")  # fmt: skip
    text = "\n".join(lines) + "\n"
    print(text)
    atomic_write_text(out / "summary.md", text)
    write_json(out / "summary.json", {**summary, "runs": runs})


if __name__ == "__main__":
    main()
