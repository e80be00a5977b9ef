"""Rows of a table as per-video outcomes, and paired comparisons between rows on the same videos and seeds.

    o = outcomes(row_result.runs)              # None when a run was saved without per-video predictions
    o.correct()                                # (seeds, videos) 0/1
    estimate_top1(o)                           # the row's mean top-1 with its 95 % interval (fractions)
    paired(a, b)                               # a - b on their common seeds and videos: diff, lo, hi, p, n, seeds
    paired(a, b, metric=confusion_between("sit", "stand"))

Intervals add the test sample's variance (clustered by recording group; a video without a group is its own) and the
seeds' (evaluation/stats.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from darkaction.evaluation.stats import estimate, paired_difference


@dataclass
class Outcomes:
    """What every seed of one row predicted for every test video (same videos, same order, for every seed)."""

    seeds: list[int]
    videos: list[str]
    groups: list[str]
    n_frames: list[int]
    labels: list[str]
    preds: np.ndarray  # (seeds, videos) of class names

    def correct(self) -> np.ndarray:
        return (self.preds == np.asarray(self.labels)[None, :]).astype(float)

    def cluster_ids(self) -> np.ndarray:
        return np.array([g or f"video:{v}" for g, v in zip(self.groups, self.videos)])

    def subset(self, seeds: list[int], videos: list[str]) -> Outcomes:
        si = [self.seeds.index(s) for s in seeds]
        pos = {v: i for i, v in enumerate(self.videos)}
        vi = [pos[v] for v in videos]
        pick = lambda xs: [xs[i] for i in vi]  # noqa: E731
        return Outcomes(list(seeds), list(videos), pick(self.groups), pick(self.n_frames), pick(self.labels),
                        self.preds[np.ix_(si, vi)])  # fmt: skip


def missing_predictions(runs: list[dict]) -> str:
    """Why `outcomes(runs)` is None ("" when it is not)."""
    if not runs:
        return "no finished run"
    if any(not r.get("predictions") for r in runs):
        return "no per-video predictions saved (rerun the table)"
    common = set.intersection(*({p["video_id"] for p in r["predictions"]} for r in runs))
    return "" if common else "the seeds were scored on different videos"


def outcomes(runs: list[dict]) -> Outcomes | None:
    """The row's outcomes from its runs' results.json dicts, on the videos every seed scored (in the first seed's
    order); None when a run lacks predictions (saved before they were recorded) or no video is common."""
    if missing_predictions(runs):
        return None
    by_id = [{p["video_id"]: p for p in r["predictions"]} for r in runs]
    videos = [p["video_id"] for p in runs[0]["predictions"] if all(p["video_id"] in b for b in by_id)]
    first = [by_id[0][v] for v in videos]
    return Outcomes(
        seeds=[int(r.get("seed", k)) for k, r in enumerate(runs)],
        videos=videos,
        groups=[str(p.get("group") or "") for p in first],
        n_frames=[int(p.get("n_frames") or 0) for p in first],
        labels=[p["label"] for p in first],
        preds=np.array([[b[v]["pred"] for v in videos] for b in by_id], dtype=object),
    )


def estimate_top1(o: Outcomes) -> dict:
    """The mean top-1 over seeds and test videos with its 95 % interval, clipped to [0, 1] (fractions)."""
    e = estimate(o.correct(), o.cluster_ids())
    return {**e, "lo": max(0.0, e["lo"]), "hi": min(1.0, e["hi"])}


Metric = Callable[[Outcomes], tuple[np.ndarray, np.ndarray]]  # -> (seeds x videos scores, video mask)


def top1(o: Outcomes) -> tuple[np.ndarray, np.ndarray]:
    return o.correct(), np.ones(len(o.videos), dtype=bool)


def confusion_between(a: str, b: str) -> Metric:
    """Per video of class a or b: 1 where it was predicted as the other one of the two (lower is better)."""

    def metric(o: Outcomes) -> tuple[np.ndarray, np.ndarray]:
        labels = np.asarray([x.lower() for x in o.labels])
        preds = np.vectorize(lambda x: str(x).lower(), otypes=[object])(o.preds)
        other = np.where(labels == a, b, np.where(labels == b, a, ""))
        return (preds == other[None, :]).astype(float), (labels == a) | (labels == b)

    return metric


def paired(a: Outcomes, b: Outcomes, metric: Metric = top1) -> dict | None:
    """metric(a) - metric(b) on the seeds and videos both rows have: {"diff", "lo", "hi", "p", "clusters", "n",
    "seeds"} (fractions), or None when they share no seed or video."""
    seeds = [s for s in a.seeds if s in b.seeds]
    in_b = set(b.videos)
    videos = [v for v in a.videos if v in in_b]
    if not seeds or not videos:
        return None
    a, b = a.subset(seeds, videos), b.subset(seeds, videos)
    sa, mask = metric(a)
    sb, _ = metric(b)
    if not mask.any():
        return None
    d = paired_difference(sa[:, mask], sb[:, mask], a.cluster_ids()[mask])
    return {**d, "n": int(mask.sum()), "seeds": seeds}
