"""Plots and the run report: training curves, confusion matrix, BERT attention over time, report.md / report.html.

Every figure is rendered with matplotlib's Agg backend to bytes and written atomically.
"""

from __future__ import annotations

import csv
import html
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from darkaction.utils import atomic_write_text, figure, save_figure


def _save(fig, path: Path) -> Path:
    return save_figure(fig, path, dpi=110, bbox_inches="tight")


def read_epoch_metrics(metrics_csv: Path) -> dict[str, dict[int, float]]:
    """Lightning CSVLogger file -> {column: {epoch: value}} for the per-epoch columns (step-level ones skipped)."""
    out: dict[str, dict[int, float]] = defaultdict(dict)
    with open(metrics_csv, newline="") as f:
        for row in csv.DictReader(f):
            ep = row.get("epoch", "")
            if ep in ("", None):
                continue
            for key, val in row.items():
                if key in ("epoch", "step") or val in ("", None) or key.endswith("_step"):
                    continue
                try:
                    out[key.removesuffix("_epoch")][int(float(ep))] = float(val)
                except ValueError:
                    continue
    return dict(out)


def plot_curves(metrics_csv: Path, out_png: Path) -> Path | None:
    """Loss (left) and accuracy (right) per epoch from metrics.csv. Returns None when there is nothing to plot."""
    metrics_csv = Path(metrics_csv)
    if not metrics_csv.is_file():
        return None
    data = read_epoch_metrics(metrics_csv)
    loss_keys = sorted(k for k in data if k.endswith("loss"))
    acc_keys = sorted(k for k in data if k.endswith("acc"))
    if not loss_keys and not acc_keys:
        return None
    fig, axes = figure(1, 2, figsize=(10, 3.8))
    for ax, keys, title in ((axes[0], loss_keys, "loss"), (axes[1], acc_keys, "accuracy")):
        for k in keys:
            eps = sorted(data[k])
            ax.plot([e + 1 for e in eps], [data[k][e] for e in eps], marker="o", ms=3, label=k)
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if keys:
            ax.legend(fontsize=8)
    if acc_keys:
        axes[1].set_ylim(-0.02, 1.02)
    return _save(fig, out_png)


def plot_confusion(confusion, classes: list[str], out_png: Path, title: str = "confusion matrix") -> Path:
    """Row-normalised confusion matrix (rows = true class) with the counts written in each cell."""
    cm = np.asarray(confusion, dtype=np.float64)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    n = len(classes)
    fig, ax = figure(1, 1, figsize=(1.0 + 0.7 * n, 0.8 + 0.6 * n))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", color="white" if norm[i, j] > 0.6 else "k")
    ax.set_xticks(range(n), classes, rotation=45, ha="right")
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return _save(fig, out_png)


def plot_attention(items: list[dict], out_png: Path) -> Path | None:
    """BERT CLS attention over time for a few videos.

    Each item: `frames` (T,) sampled frame indices (-1 = blank), `attention` (T',) CLS attention over the temporal
    tokens (T' = T / temporal stride), `title`. Every token covers T / T' consecutive clip positions: its bar spans
    them, and the sampled frame index of each position is drawn on the right axis (blanks as red crosses at 0).
    """
    items = [it for it in items if it.get("attention") is not None]
    if not items:
        return None
    fig, axes = figure(len(items), 1, figsize=(9, 2.1 * len(items)), squeeze=False)
    for ax, it in zip(axes[:, 0], items):
        frames = np.asarray(it["frames"])
        att = np.asarray(it["attention"], dtype=np.float64)
        T, Tp = len(frames), len(att)
        span = T / Tp
        ax.bar(np.arange(Tp) * span - 0.5, att, width=span, align="edge", color="tab:orange", alpha=0.6, ec="k")
        ax.set_ylabel("attention")
        ax.set_ylim(0, max(float(att.max()) * 1.15, 1e-6))
        ax.set_xlim(-0.5, T - 0.5)
        ax.set_title(it.get("title", ""), fontsize=9)
        ax2 = ax.twinx()
        pos = np.arange(T)
        real = frames >= 0
        ax2.plot(pos[real], frames[real], "o", ms=3, color="tab:blue", label="sampled frame")
        if (~real).any():
            ax2.plot(pos[~real], np.zeros((~real).sum()), "x", color="red", ms=5, label="blank")
        ax2.set_ylabel("frame index")
        ax2.legend(loc="upper left", fontsize=7)
    axes[-1, 0].set_xlabel("clip position (T)")
    fig.tight_layout()
    return _save(fig, out_png)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{100 * v:.1f} %" if not math.isnan(v) else "nan"
    return str(v)


def write_report(run_dir: Path, results: dict, images: dict[str, Path | None]) -> Path:
    """report.md and report.html in `run_dir` linking the images (relative paths). Returns the markdown path."""
    run_dir = Path(run_dir)
    classes = results.get("classes", [])
    lines = [
        f"# Run report: {run_dir.name}",
        "",
        f"- split: `{results.get('split', 'test')}`, videos: {results.get('n_test_videos')}, "
        f"views per video: {results.get('views')} (strategy `{results.get('strategy')}`"
        f"{', rates of the training lengths' if results.get('test_rates') == 'train' else ''}"
        f"{', each also mirrored' if results.get('flip') else ''})",
        f"- video-level top-1: **{_fmt(results.get('top1'))}**, mean class accuracy: "
        f"**{_fmt(results.get('mean_class_acc'))}**",
        f"- clip-level top-1 (each view alone): {_fmt(results.get('clip_top1'))}",
        *([f"- video-level top-5: {_fmt(results['top5'])}"] if results.get("top5") is not None else []),
        f"- checkpoint: `{results.get('checkpoint', '')}`",
        "",
        "| class | accuracy | videos |",
        "|---|---|---|",
    ]
    per = results.get("per_class", {})
    for c in classes:
        entry = per.get(c, {}) if isinstance(per, dict) else {}
        lines.append(f"| {c} | {_fmt(entry.get('acc'))} | {entry.get('n', 0)} |")
    lines.append("")
    bands = [b for b in results.get("by_brightness", []) if b["n"]]
    if bands:
        lines += ["| source brightness (mean 8-bit level) | accuracy | videos |", "|---|---|---|"]
        lines += [f"| {b['band']} | {_fmt(b['acc'])} | {b['n']} |" for b in bands]
        lines.append("")
    titles = {"curves": "Training curves", "confusion": "Confusion matrix", "attention": "BERT attention over time"}
    for key, path in images.items():
        if path is None:
            continue
        rel = Path(path).relative_to(run_dir) if Path(path).is_relative_to(run_dir) else Path(path)
        lines += [f"## {titles.get(key, key)}", "", f"![{key}]({rel.as_posix()})", ""]
    md = "\n".join(lines)
    md_path = atomic_write_text(run_dir / "report.md", md + "\n")

    body = [f"<h1>Run report: {html.escape(run_dir.name)}</h1>", "<ul>"]
    for line in lines[2:6]:
        body.append(f"<li>{html.escape(line[2:]).replace('**', '')}</li>")
    body.append("</ul><table border=1 cellpadding=4><tr><th>class</th><th>accuracy</th><th>videos</th></tr>")
    for c in classes:
        entry = per.get(c, {}) if isinstance(per, dict) else {}
        body.append(f"<tr><td>{html.escape(c)}</td><td>{_fmt(entry.get('acc'))}</td><td>{entry.get('n', 0)}</td></tr>")
    body.append("</table>")
    if bands:
        body.append("<table border=1 cellpadding=4><tr><th>source brightness</th><th>accuracy</th><th>videos</th></tr>")
        body += [f"<tr><td>{b['band']}</td><td>{_fmt(b['acc'])}</td><td>{b['n']}</td></tr>" for b in bands]
        body.append("</table>")
    for key, path in images.items():
        if path is None:
            continue
        rel = Path(path).relative_to(run_dir) if Path(path).is_relative_to(run_dir) else Path(path)
        body.append(f"<h2>{titles.get(key, key)}</h2><img src='{html.escape(rel.as_posix())}'>")
    atomic_write_text(run_dir / "report.html", "<html><body>" + "\n".join(body) + "</body></html>\n")
    return md_path
