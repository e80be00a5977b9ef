"""What `predict --window` writes: per-window CSV/JSON, labelled segments and a timeline PNG.

    segs = merge_segments(windows)                 # consecutive windows with one label -> one segment
    write_windows(windows, segs, "out/", source="cam.mp4", classes=rec.classes)   # windows.csv, windows.json
    plot_timeline(windows, rec.classes, "out/timeline.png")

The plot uses matplotlib's object API (a `Figure` with an Agg canvas), so a user's pyplot backend is never touched.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from darkaction.utils import atomic_write_text, figure, save_figure, write_json


def merge_segments(windows: list[dict]) -> list[dict]:
    """Runs of consecutive windows with one label -> [{"label", "start", "end", "windows", "prob"}], prob being the
    mean of the label's probability over the run. Segments tile the time without overlapping, although windows may:
    two segments meet half-way between the centres of the last window of one and the first window of the next."""
    runs: list[list[dict]] = []
    for w in windows:
        if runs and runs[-1][0]["label"] == w["label"]:
            runs[-1].append(w)
        else:
            runs.append([w])
    centre = [((r[0]["start"] + r[0]["end"]) / 2, (r[-1]["start"] + r[-1]["end"]) / 2) for r in runs]
    segs = []
    for i, r in enumerate(runs):
        start = r[0]["start"] if i == 0 else (centre[i - 1][1] + centre[i][0]) / 2
        end = r[-1]["end"] if i == len(runs) - 1 else (centre[i][1] + centre[i + 1][0]) / 2
        segs.append({"label": r[0]["label"], "start": round(start, 3), "end": round(end, 3), "windows": len(r),
                     "prob": round(float(np.mean([w["prob"] for w in r])), 6)})  # fmt: skip
    return segs


def csv_header(classes: list[str]) -> str:
    return _csv_line(["index", "start", "end", "label", "prob", "latency", *classes])


def csv_row(r: dict, classes: list[str]) -> str:
    """One window as a CSV line: index, start, end, label, prob, latency, then one probability per class."""
    return _csv_line([r["index"], r["start"], r["end"], r["label"], f"{r['prob']:.6f}", r["latency"],
                      *(f"{r['probs'][c]:.6f}" for c in classes)])  # fmt: skip


def _csv_line(values: list) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow(values)
    return buf.getvalue()


def windows_csv(windows: list[dict], classes: list[str]) -> str:
    """The windows as CSV text (`csv_header` then one `csv_row` per window)."""
    return csv_header(classes) + "".join(csv_row(r, classes) for r in windows)


class Thumbnails:
    """At most `keep` window thumbnails of a stream of any length, spread evenly: when full, every second one is
    dropped and only every 2nd, 4th, ... window is kept from then on."""

    def __init__(self, keep: int = 240) -> None:
        self.keep, self.step, self.items = keep, 1, []

    def add(self, index: int, image) -> None:
        if index % self.step:
            return
        self.items.append((index, image))
        if len(self.items) > self.keep:
            self.step *= 2
            self.items = [(i, im) for i, im in self.items if i % self.step == 0]

    def attach(self, windows: list[dict]) -> list[dict]:
        """The windows with `thumbnail` set where one was kept."""
        kept = dict(self.items)
        return [{**w, "thumbnail": kept.get(w["index"])} for w in windows]


def write_windows(
    windows: list[dict], segments: list[dict], out_dir: str | Path, source: str, classes: list[str], **extra
) -> dict[str, Path]:
    """windows.csv and windows.json (source, classes, windows without thumbnails, segments, `extra`), atomically
    (windows.csv is rewritten whole, so a copy that grew row by row while streaming ends up complete)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "windows.csv", windows_csv(windows, classes))
    rows = [{k: v for k, v in r.items() if k != "thumbnail"} for r in windows]
    write_json(out / "windows.json", {"source": source, "classes": classes, **extra, "windows": rows,
                                      "segments": segments})  # fmt: skip
    return {"csv": out / "windows.csv", "json": out / "windows.json"}


def plot_timeline(windows: list[dict], classes: list[str], path: str | Path, title: str = "") -> Path:
    """Class probabilities over time (one line per class, at each window's centre), the labelled segments as a
    coloured band, and a strip of the windows' enhanced middle frames underneath."""
    path = Path(path)
    thumbs = [w["thumbnail"] for w in windows if w.get("thumbnail") is not None]
    fig = figure(figsize=(11, 5.2 if thumbs else 3.8), layout="constrained")
    grid = fig.add_gridspec(3 if thumbs else 2, 1, height_ratios=[4, 0.5, 1.4][: 3 if thumbs else 2])
    ax = fig.add_subplot(grid[0])
    t = np.array([(w["start"] + w["end"]) / 2 for w in windows])
    colours = {c: f"C{i % 10}" for i, c in enumerate(classes)}
    for c in classes:
        ax.plot(t, [w["probs"][c] for w in windows], marker="o", ms=3, lw=1.5, color=colours[c], label=c)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.set_xlim(windows[0]["start"], windows[-1]["end"])
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax.set_title(title or "class probabilities per window")
    band = fig.add_subplot(grid[1], sharex=ax)
    for s in merge_segments(windows):
        band.axvspan(s["start"], s["end"], color=colours.get(s["label"], "grey"), alpha=0.8)
        band.text((s["start"] + s["end"]) / 2, 0.5, s["label"], ha="center", va="center", fontsize=7, clip_on=True)
    band.set_yticks([])
    band.set_xlabel("seconds")
    if thumbs:
        strip = fig.add_subplot(grid[2])
        step = max(1, int(np.ceil(len(thumbs) / 24)))  # at most 24 thumbnails side by side
        picked = thumbs[::step]
        h = min(x.shape[0] for x in picked)
        row = np.concatenate([x[:h] for x in picked], axis=1)
        strip.imshow(row, aspect="auto")
        strip.set_axis_off()
        strip.set_title(f"enhanced middle frames of {len(picked)} of the {len(windows)} windows", fontsize=8)
    return save_figure(fig, path, dpi=110)
