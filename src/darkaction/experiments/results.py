"""Write a measured table: markdown, CSV, JSON and a bar chart, the paper's numbers only in their own column / bars.

write_table(table, row_results, out_dir, preset="cpu", seeds=3, notes=[...])
  -> {"md": <out>/table2.md, "csv": <out>/table2.csv, "json": <out>/table2.json, "png": <out>/table2.png}

Each row: per-seed top-1, the mean with a 95 % interval (test recording groups and seeds, evaluation/stats.py), and the
paired difference from the table's full-method row on the same videos and seeds, with its interval and p-value
(experiments/compare.py). The JSON keeps every run's per-video predictions for `experiment claims`.
"""

from __future__ import annotations

import csv
import io
import textwrap
from pathlib import Path

from darkaction.experiments.compare import estimate_top1, outcomes, paired
from darkaction.utils import atomic_write_bytes, atomic_write_text, write_json

CSV_FIELDS = [
    "table",
    "row",
    "method",
    "status",
    "measured_top1_mean",
    "measured_top1_std",
    "measured_top1_ci_lo",
    "measured_top1_ci_hi",
    "diff_vs_full_method",
    "diff_ci_lo",
    "diff_ci_hi",
    "diff_p",
    "n_test_videos",
    "measured_mean_class_acc",
    "split",
    "measured_test_csv_top1_mean",
    "measured_test_csv_top1_std",
    "n_seeds",
    "seeds_top1",
    "paper_top1_reported",
    "reason",
]


def row_stats(table, results: list) -> dict[str, dict]:
    """Per row key: "mean" and "ci" (the mean top-1 over seeds and videos from the per-video predictions and its 95 %
    interval, percent), "clusters", "seeds_covered", and "diff" (paired difference from the table's full-method row,
    points, with "lo", "hi", "p", "n", "seeds"); empty where runs lack per-video predictions."""
    outs = {r.key: outcomes(r.runs) if r.status == "ok" else None for r in results}
    ref = outs.get(getattr(table, "reference", ""))
    stats: dict[str, dict] = {}
    for r in results:
        o = outs[r.key]
        if o is None:
            stats[r.key] = {}
            continue
        e = estimate_top1(o)
        entry: dict = {"mean": 100 * e["mean"], "ci": (100 * e["lo"], 100 * e["hi"]), "n": len(o.videos),
                       "clusters": e["clusters"], "seeds_covered": e["seeds_covered"]}  # fmt: skip
        if ref is not None and r.key != table.reference:
            d = paired(o, ref)
            if d is not None:
                entry["diff"] = {**d, **{k: 100 * d[k] for k in ("diff", "lo", "hi")}}
        stats[r.key] = entry
    return stats


def _fmt(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "-"
    return f"{mean:.2f} ± {std:.2f}" if std is not None else f"{mean:.2f}"


def _measured_cell(r, st: dict) -> str:
    if r.status != "ok":
        return f"{r.status}: {r.reason}".replace("|", "\\|")
    if "ci" in st:  # the point estimate and its interval from the same per-video predictions
        return f"{st['mean']:.1f} [{st['ci'][0]:.1f}, {st['ci'][1]:.1f}]"
    mean, std = r.mean("top1"), r.std("top1")
    if mean is None:
        return "-"
    return f"{mean:.1f}" + (f" ± {std:.1f} sd" if std is not None else "") + " (no per-video predictions: no interval)"


def _paper(r) -> str:
    return "-" if r.paper is None else f"{r.paper:.2f}"


def _diff_cell(st: dict, is_reference: bool) -> str:
    if is_reference:
        return "(reference)"
    d = st.get("diff")
    if not d:
        return "-"
    p = "< 0.001" if d["p"] < 0.001 else f"= {d['p']:.3f}"
    return f"{d['diff']:+.1f} [{d['lo']:+.1f}, {d['hi']:+.1f}], p {p}"


def markdown(table, results: list, preset: str, seeds: int, notes: list[str], stats: dict | None = None) -> str:
    stats = stats if stats is not None else row_stats(table, results)
    lines = [f"# {table.label}: {table.title}", ""]
    splits = {run.get("split", "test") for r in results for run in r.runs}
    where = {
        frozenset({"val"}): "the held-out validation split of the training clips (the paper's 1,470 / 367 split of "
        "ARID 1.1's 1,837; the checkpoint kept is the one best on that split, as the paper's selection would be, "
        "so it is an optimistic number)",
        frozenset({"test"}): "the test split",
    }.get(frozenset(splits), "the validation split for some seeds and the test split for others (see the CSV)")
    n_videos = sorted({st["n"] for st in stats.values() if "n" in st})
    count = f" ({', '.join(map(str, n_videos))} videos)" if n_videos else ""
    ref = next((r.name for r in results if r.key == getattr(table, "reference", "")), None)
    lines.append(
        f"Measured: preset `{preset}`, {seeds} seed(s) per row, top-1 accuracy (%) on {where}{count} with the "
        "configured test views averaged: the mean over seeds with its 95 % interval [the test sample clustered by "
        "recording group plus the spread over seeds, Student t; with one seed the training randomness is not in "
        "it], and the per-seed values."
    )
    against = table.compared_with
    if ref:
        lines.append(
            f"Difference from {against} ({ref}): the paired difference in points on the same test videos and "
            "seeds, its 95 % interval (as above) and the two-sided p-value of the same t statistic."
        )
    has_test = any(run.get("test_top1") is not None for r in results for run in r.runs)
    if has_test:
        lines.append("The labelled test CSV's top-1 is beside it, in its own column.")
    lines.append(
        f"Paper: {table.paper_source or 'the accuracy the paper reports (ARID 1.1 track 1, 6 classes, GPU)'} -- "
        "quoted, not measured here."
    )
    lines += [""] + [f"- {n}" for n in notes] + ([""] if notes else [])
    test_head = " Measured top-1 on the test CSV (%) |" if has_test else ""
    lines.append(
        f"| Method | Measured top-1 (%) [95 % CI] | Per seed | Difference from {against} | "
        f"Measured mean class acc. (%) |{test_head} Seeds run | Paper top-1 (%, reported) |"
    )
    lines.append("|---|---|---|---|---|" + ("---|" if has_test else "") + "---|---|")
    for r in results:
        st = stats.get(r.key, {})
        cls = _fmt(r.mean("mean_class_acc"), None) if r.status == "ok" else "-"
        per_seed = ", ".join(f"{run['top1']:.1f}" for run in r.runs if run.get("top1") is not None) or "-"
        diff = _diff_cell(st, r.key == getattr(table, "reference", "")) if r.status == "ok" else "-"
        test = ""
        if has_test:
            test = f" {_fmt(r.mean('test_top1'), r.std('test_top1')) if r.status == 'ok' else '-'} |"
        lines.append(
            f"| {r.name} | {_measured_cell(r, st)} | {per_seed} | {diff} | {cls} |{test} {len(r.runs)} | {_paper(r)} |"
        )
    runs = [(r.key, run.get("seed"), run.get("run_dir")) for r in results for run in r.runs]
    if runs:
        lines += ["", "Runs:", ""] + [f"- `{k}` seed {s}: `{d}`" for k, s, d in runs]
    return "\n".join(lines) + "\n"


def csv_text(table, results: list, stats: dict | None = None) -> str:
    stats = stats if stats is not None else row_stats(table, results)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    num = lambda x: "" if x is None else f"{x:.4f}"  # noqa: E731
    for r in results:
        st = stats.get(r.key, {})
        ci, diff = st.get("ci", (None, None)), st.get("diff", {})
        w.writerow(
            {
                "table": table.stem,
                "row": r.key,
                "method": r.name,
                "status": r.status,
                "measured_top1_mean": num(r.mean("top1")),
                "measured_top1_std": num(r.std("top1")),
                "measured_top1_ci_lo": num(ci[0]),
                "measured_top1_ci_hi": num(ci[1]),
                "diff_vs_full_method": num(diff.get("diff")),
                "diff_ci_lo": num(diff.get("lo")),
                "diff_ci_hi": num(diff.get("hi")),
                "diff_p": num(diff.get("p")),
                "n_test_videos": st.get("n", ""),
                "measured_mean_class_acc": num(r.mean("mean_class_acc")),
                "split": ";".join(sorted({run.get("split", "test") for run in r.runs})),
                "measured_test_csv_top1_mean": num(r.mean("test_top1")),
                "measured_test_csv_top1_std": num(r.std("test_top1")),
                "n_seeds": len(r.runs),
                "seeds_top1": ";".join(f"{run['top1']:.4f}" for run in r.runs if run.get("top1") is not None),
                "paper_top1_reported": "" if r.paper is None else f"{r.paper:.2f}",
                "reason": r.reason,
            }
        )
    return buf.getvalue()


def bar_chart(table, results: list, preset: str, stats: dict | None = None) -> bytes:
    """PNG bytes: per row a measured bar (mean, error bar = its 95 % interval, or the std over seeds when the runs
    have no per-video predictions) beside a hatched grey bar of the paper's number."""
    import numpy as np

    from darkaction.utils import figure

    stats = stats if stats is not None else row_stats(table, results)
    x = np.arange(len(results))
    width = 0.38
    width_in = max(5.0, 1.5 * len(results) + 1.5)
    fig, ax = figure(1, 1, figsize=(width_in, 4.2), dpi=110)
    measured, lower, upper, sd_only = [], [], [], False
    for r in results:
        st = stats.get(r.key, {})
        m = st.get("mean", r.mean("top1")) if r.status == "ok" else None
        measured.append(m)
        if m is not None and "ci" in st:
            lower.append(max(0.0, m - st["ci"][0]))
            upper.append(max(0.0, st["ci"][1] - m))
        else:  # runs saved without per-video predictions: the spread over seeds, said in the legend
            sd = r.std("top1") or 0.0
            sd_only = sd_only or (m is not None)
            lower.append(sd)
            upper.append(sd)
    heights = [m if m is not None else 0.0 for m in measured]
    label = f"measured ({preset}), 95 % CI" + (" (sd over seeds where no predictions were kept)" if sd_only else "")
    ax.bar(x - width / 2, heights, width, yerr=[lower, upper], capsize=3, color="tab:blue", label=label)
    reported = [(i, r.paper) for i, r in enumerate(results) if r.paper is not None]  # no bar where none is reported
    if reported:
        ax.bar([x[i] + width / 2 for i, _ in reported], [p for _, p in reported], width, color="lightgrey",
               hatch="//", edgecolor="grey", label="paper (reported)")  # fmt: skip
    for i, (m, r) in enumerate(zip(measured, results)):
        text = f"{m:.1f}" if m is not None else r.status
        ax.text(i - width / 2, (m or 0.0) + upper[i] + 1.0, text, ha="center", va="bottom", fontsize=7, rotation=90)
    ax.set_xticks(x, [r.name for r in results], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_ylim(0, 115)
    ax.set_title(textwrap.fill(f"{table.label}: {table.title}", int(12 * width_in)), fontsize=9)  # 9 pt: ~12/inch
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def table_record(table, results: list, preset: str, seeds: int, stats: dict) -> dict:
    """Everything measured for the table, per-video predictions included (what `experiment claims` reads)."""
    return {
        "table": table.number,
        "stem": table.stem,
        "kind": table.kind,
        "title": table.title,
        "reference": getattr(table, "reference", ""),
        "preset": preset,
        "seeds": seeds,
        "rows": [
            {
                "key": r.key,
                "name": r.name,
                "paper": r.paper,
                "status": r.status,
                "reason": r.reason,
                "stats": stats.get(r.key, {}),
                "runs": r.runs,
            }  # fmt: skip
            for r in results
        ],
    }


def write_table(table, results: list, out: Path, preset: str, seeds: int, notes: list[str]) -> dict[str, Path]:
    out = Path(out)
    stem = out / table.stem
    stats = row_stats(table, results)
    return {
        "md": atomic_write_text(stem.with_suffix(".md"), markdown(table, results, preset, seeds, notes, stats)),
        "csv": atomic_write_text(stem.with_suffix(".csv"), csv_text(table, results, stats)),
        "json": write_json(stem.with_suffix(".json"), table_record(table, results, preset, seeds, stats)),
        "png": atomic_write_bytes(stem.with_suffix(".png"), bar_chart(table, results, preset, stats)),
    }
