"""Dataset statistics from a prepared folder: clips per class, frame lengths per class (the paper's Figure 4),
brightness histogram, dataset channel mean / std. Written to `<prepared>/stats/` as `stats.json` and PNGs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from darkaction.utils import write_json

log = logging.getLogger(__name__)


def compute_stats(index, cache) -> dict[str, Any]:
    """Plain-dict statistics of a `DatasetIndex` whose records are in `cache` (per split and per class)."""
    lengths: dict[str, dict[str, list[int]]] = {}
    bright: dict[str, list[float]] = {}
    msum = np.zeros(3)
    sqsum = np.zeros(3)
    nframes = 0
    for r in index.records:
        m = cache.meta(r.video_id)
        cls = index.classes[r.label]
        lengths.setdefault(r.split, {}).setdefault(cls, []).append(int(m["n_frames"]))
        bright.setdefault(r.split, []).append(float(m.get("mean_brightness", np.nan)))
        if r.split == "train" and "channel_mean" in m:
            # frame-weighted so that the dataset mean is the mean over all training pixels
            msum += np.asarray(m["channel_mean"]) * m["n_frames"]
            sqsum += np.asarray(m["channel_sqmean"]) * m["n_frames"]
            nframes += m["n_frames"]
    out: dict[str, Any] = {"classes": index.classes, "splits": {}}
    for split, per in lengths.items():
        all_len = np.concatenate([np.asarray(v) for v in per.values()])
        out["splits"][split] = {
            "clips": int(all_len.size),
            "clips_per_class": {c: len(per.get(c, [])) for c in index.classes},
            "frames": _describe(all_len),
            "frames_per_class": {c: _describe(np.asarray(v)) for c, v in sorted(per.items())},
            "fraction_shorter_than_64": float((all_len < 64).mean()),
            "mean_brightness": _describe(np.asarray(bright[split])),
        }
    if nframes:
        mean = msum / nframes
        std = np.sqrt(np.maximum(sqsum / nframes - mean**2, 0.0))
        out["train_channel_mean"] = [round(float(x), 5) for x in mean]
        out["train_channel_std"] = [round(float(x), 5) for x in std]
    out["_lengths"] = lengths
    out["_brightness"] = bright
    return out


def _describe(x: np.ndarray) -> dict[str, float]:
    if x.size == 0:
        return {}
    return {
        "min": float(x.min()),
        "median": float(np.median(x)),
        "mean": round(float(x.mean()), 3),
        "max": float(x.max()),
    }


def write_stats(stats: dict[str, Any], out_dir: Path) -> list[Path]:
    """stats.json + frame_lengths.png (violins per class and split) + brightness.png; returns the written paths."""
    from darkaction.utils import figure

    out_dir.mkdir(parents=True, exist_ok=True)
    lengths, bright = stats["_lengths"], stats["_brightness"]
    classes = stats["classes"]
    splits = [s for s in ("train", "val", "test") if s in lengths]
    paths = [write_json(out_dir / "stats.json", {k: v for k, v in stats.items() if not k.startswith("_")})]

    fig, ax = figure(1, 1, figsize=(max(6, 1.3 * len(classes) + 2), 4.5))
    width = 0.8 / max(1, len(splits))
    colors = {"train": "tab:blue", "val": "tab:orange", "test": "tab:green"}
    for si, split in enumerate(splits):
        pos, data = [], []
        for ci, c in enumerate(classes):
            v = lengths[split].get(c, [])
            if len(v):
                pos.append(ci + (si - (len(splits) - 1) / 2) * width)
                data.append(v)
        if not data:
            continue
        parts = ax.violinplot(data, positions=pos, widths=width * 0.95, showmedians=True, showextrema=True)
        for b in parts["bodies"]:
            b.set_facecolor(colors[split])
            b.set_alpha(0.55)
        for key in ("cmedians", "cmins", "cmaxes", "cbars"):
            if key in parts:
                parts[key].set_color(colors[split])
        ax.plot([], [], color=colors[split], lw=6, alpha=0.55, label=f"{split} ({stats['splits'][split]['clips']})")
    ax.axhline(64, color="gray", ls="--", lw=1, label="T = 64")
    ax.set_xticks(range(len(classes)), [f"{c}" for c in classes], rotation=30 if len(classes) > 8 else 0)
    ax.set_ylabel("frames per clip")
    ax.set_title("Frame-length distribution per class")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    paths.append(_save(fig, out_dir / "frame_lengths.png"))

    fig, ax = figure(1, 1, figsize=(6, 4))
    hi = max(1.0, max((max(v) for v in bright.values() if v), default=1.0))
    bins = np.linspace(0, hi * 1.05, 40)
    for split in splits:
        ax.hist(bright[split], bins=bins, alpha=0.55, color=colors[split], label=split)
    ax.set_xlabel("mean pixel value per clip (0-255)")
    ax.set_ylabel("clips")
    ax.set_title("Brightness")
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(_save(fig, out_dir / "brightness.png"))
    return paths


def _save(fig, path: Path) -> Path:
    from darkaction.utils import save_figure

    return save_figure(fig, path, dpi=110)


def cropping(lengths: dict[str, dict[str, list[int]]], sampling) -> dict[str, Any]:
    """Clips per split that delta sampling at `sampling.T` and `sampling.alpha` would crop (auto resolved from the
    training split's longest clip). {} when there is no training split to resolve `alpha: auto` from."""
    from darkaction.data.sampling import cropped, resolve_alpha

    train = [n for v in lengths.get("train", {}).values() for n in v]
    n_max = sampling.n_max or (max(train) if train else 0)
    if isinstance(sampling.alpha, str) and not n_max:
        return {}
    alpha = resolve_alpha(sampling.alpha, n_max, sampling.T)
    return {
        "T": int(sampling.T),
        "alpha": alpha,
        "alpha_setting": str(sampling.alpha),
        "cropped": {split: cropped([n for v in per.values() for n in v], sampling.T, alpha)
                    for split, per in lengths.items()},
    }  # fmt: skip


def stats(cfg, progress: bool = True) -> Path:
    """Statistics of the prepared dataset for `cfg` into `<prepared>/stats/`; returns that folder."""
    from darkaction.data.prepare import open_prepared

    index, cache = open_prepared(cfg)
    s = compute_stats(index, cache)
    s["cropping"] = cropping(s["_lengths"], cfg.sampling)
    out = Path(cfg.data.prepared) / "stats"
    write_stats(s, out)
    if progress:
        for split, d in s["splits"].items():
            per = ", ".join(f"{c} {n}" for c, n in d["clips_per_class"].items())
            f = d["frames"]
            log.info(f"{split}: {d['clips']} clips ({per}); frames min {f['min']:.0f} median {f['median']:.0f} "
                  f"max {f['max']:.0f}; {100 * d['fraction_shorter_than_64']:.1f}% shorter than 64")  # fmt: skip
        if "train_channel_mean" in s:
            log.info(f"train channel mean {s['train_channel_mean']} std {s['train_channel_std']}")
        c = s["cropping"]
        if c:
            per = ", ".join(f"{split} {n} of {s['splits'][split]['clips']}" for split, n in c["cropped"].items())
            log.info(f"delta sampling at T={c['T']}, alpha {c['alpha']:g} ({c['alpha_setting']}): clips cropped: {per}")
        log.info(f"statistics written to {out}")
    return out
