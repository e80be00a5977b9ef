"""Accuracy by how visible the person is, on a synthetic test split: which errors the data leaves room to fix.

    .venv/bin/python benchmarks/visibility.py --data data/arid RESULTS [RESULTS ...] [--size 96] [--out FILE.md]

RESULTS: run directories (their results.json) or results JSON files (e.g. a transfer's results_test_arid-val.json),
each scored on the test split of --data; several are taken as seeds of one configuration. Every test video's
person visibility r (darkaction/data/visibility.py: the correlation between the person's rendered signal and what
the decoded video holds of it, at the model's input size; cached in the dataset folder) is measured once, then
accuracy is given per band of r, per run and pooled with a 95 % interval (over test recording groups and seeds,
darkaction.evaluation.stats.estimate; none for a band of fewer than 3 groups), and the top-1 each run would have
if every video with r >= 0.7 (the person clearly there) were right and the others kept their outcome: the most
that fixing the errors on visible videos can give.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from darkaction.data.visibility import dataset_visibility
from darkaction.evaluation.stats import estimate
from darkaction.utils import atomic_write_text, read_json

BANDS = (-1.0, 0.5, 0.7, 0.85, 1.01)  # r: none to faint / faint / clear / clean
VISIBLE = 0.7  # from here on the person is clearly there (looked at: docs/results.md, session 23)


def _predictions(arg: str) -> tuple[str, list[dict]]:
    p = Path(arg)
    path = p / "results.json" if p.is_dir() else p
    if not path.is_file():
        raise SystemExit(f"{arg}: no results.json; run darkaction evaluate first")
    res = read_json(path)
    if res.get("split", "test") != "test":
        raise SystemExit(f"{path}: scored on split {res.get('split')!r}; give test-split results")
    return str(path), res["predictions"]


def _band(r: float) -> int:
    return int(np.searchsorted(BANDS, r, side="right")) - 1


def _label(i: int) -> str:
    lo, hi = BANDS[i], min(BANDS[i + 1], 1.0)
    return f"r < {hi:g}" if i == 0 else f"{lo:g} <= r < {hi:g}" if hi < 1 else f"r >= {lo:g}"


def _mean_ci(correct: np.ndarray, groups: np.ndarray) -> str:
    e = estimate(correct.astype(float), groups)
    if len(set(groups)) < 3:
        return f"{100 * e['mean']:.1f} (-)"
    return f"{100 * e['mean']:.1f} ({100 * max(e['lo'], 0):.1f}-{100 * min(e['hi'], 1):.1f})"


def report(table: dict[str, dict], runs: list[tuple[str, list[dict]]]) -> str:
    ids = [p["video_id"] for p in runs[0][1]]
    for name, preds in runs[1:]:
        if sorted(p["video_id"] for p in preds) != sorted(ids):
            raise SystemExit(f"{name}: scored other test videos than {runs[0][0]}; results must be paired")
    missing = [v for v in ids if v not in table]
    if missing:
        raise SystemExit(f"{len(missing)} test videos not in the dataset's split (e.g. {missing[0]}): wrong --data?")
    groups = np.array([str(p["group"]) for p in runs[0][1]])
    r = np.array([table[v]["r"] for v in ids])
    band = np.array([_band(x) for x in r])
    correct = np.array([[{p["video_id"]: p["pred"] == p["label"] for p in preds}[v] for v in ids] for _, preds in runs])
    lines = [
        f"{len(ids)} test videos of {len(set(groups))} recording groups, {len(runs)} run(s): "
        + ", ".join(n for n, _ in runs),
        "",
        "| person visibility | videos (groups) | median rendered brightness | median contrast / noise (levels) "
        "| per-run top-1 (%) | top-1 (95 % CI) | per-run errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for i in range(len(BANDS) - 1):
        inside = band == i
        n = int(inside.sum())
        if not n:
            lines.append(f"| {_label(i)} | 0 | | | | | |")
            continue
        sub = [table[v] for v, k in zip(ids, inside) if k]
        n_groups = len(set(groups[inside]))
        per_run = ", ".join(f"{100 * c[inside].mean():.1f}" for c in correct)
        errors = ", ".join(str(int((~c[inside]).sum())) for c in correct)
        b = np.median([s["brightness"] for s in sub if s["brightness"] is not None] or [np.nan])
        lines.append(
            f"| {_label(i)} | {n} ({n_groups}) | {b:.1f} | {np.median([s['contrast'] for s in sub]):.1f} / "
            f"{np.median([s['noise'] for s in sub]):.1f} | {per_run} | "
            f"{_mean_ci(correct[:, inside], groups[inside])} | {errors} |"
        )
    fixed = correct.copy()
    fixed[:, r >= VISIBLE] = True
    lines += [
        f"| all | {len(ids)} ({len(set(groups))}) | | | {', '.join(f'{100 * c.mean():.1f}' for c in correct)} | "
        f"{_mean_ci(correct, groups)} | {', '.join(str(int((~c).sum())) for c in correct)} |",
        "",
        f"Top-1 if every video with r >= {VISIBLE:g} were right, the others as measured (per run): "
        + ", ".join(f"{100 * f.mean():.1f}" for f in fixed)
        + f" %; {int((r < VISIBLE).sum())} videos have r < {VISIBLE:g}.",
        "",
        "r: correlation of the person's rendered signal with what the decoded video holds of it, at the model's input "
        "size (1: clean; about 0: nothing left). Contrast: the person against the scene before noise and codec; "
        "noise: camera noise and codec error on the empty scene.",
        "",
        "Errors (video, r, label -> prediction, runs wrong):",
    ]
    wrong = [(r[j], ids[j], j) for j in range(len(ids)) if not correct[:, j].all()]
    for rv, v, j in sorted(wrong):
        preds = [next(p for p in pr if p["video_id"] == v) for _, pr in runs]
        got = ", ".join(p["pred"] for p in preds if p["pred"] != p["label"])
        lines.append(f"- {v}: r {rv:.2f}, {preds[0]['label']} -> {got} ({int((~correct[:, j]).sum())} of {len(runs)})")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+", help="run directories or results JSON files, scored on --data's test split")
    ap.add_argument("--data", required=True, help="the synthetic dataset folder (with metadata.json)")
    ap.add_argument("--size", type=int, default=96, help="measure at SIZE x SIZE, the cache size (0: source size)")
    ap.add_argument("--out", default="", help="also write the report to this markdown file")
    args = ap.parse_args()
    table = dataset_visibility(args.data, "test", None if args.size == 0 else (args.size, args.size))
    text = report(table, [_predictions(a) for a in args.results])
    print(text)
    if args.out:
        atomic_write_text(Path(args.out), text)


if __name__ == "__main__":
    main()
