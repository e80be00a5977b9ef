"""Video-level and clip-level classification metrics (torchmetrics underneath).

    probs = view_probs.mean(1)                 # (N, V, C) softmax per view -> (N, C) video-level
    m = classification_metrics(probs, labels, num_classes)
    m["top1"], m["top5"], m["mean_class_acc"], m["per_class"], m["confusion"]

Mean class accuracy averages the per-class recalls over the classes that occur in `labels` (a class with no test
video has no accuracy; it is reported as None in `per_class`).
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_confusion_matrix


def average_views(view_probs: torch.Tensor) -> torch.Tensor:
    """Test-time view averaging: mean of the softmax over views. (N, V, C) -> (N, C)."""
    return view_probs.float().mean(dim=1)


def classification_metrics(probs: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict:
    """Metrics of (N, C) probabilities (or logits) against (N,) int labels.

    Returns: top1 (float), top5 (float, or None with five classes or fewer), mean_class_acc (float),
    per_class (list[float | None], length C),
    support (list[int]), confusion (C x C list, rows = true class, columns = predicted), n (int).
    """
    probs = probs.float()
    labels = labels.long()
    n = int(labels.numel())
    if n == 0:
        return {
            "top1": 0.0,
            "top5": None,
            "mean_class_acc": 0.0,
            "per_class": [None] * num_classes,
            "support": [0] * num_classes,
            "confusion": [[0] * num_classes for _ in range(num_classes)],
            "n": 0,
        }
    top1 = multiclass_accuracy(probs, labels, num_classes=num_classes, average="micro").item()
    # top-5 only means something with more than five classes (HMDB51: 51; ARID's six classes would make it ~100 %)
    top5 = (
        float(multiclass_accuracy(probs, labels, num_classes=num_classes, average="micro", top_k=5))
        if num_classes > 5
        else None
    )
    per = multiclass_accuracy(probs, labels, num_classes=num_classes, average="none")
    cm = multiclass_confusion_matrix(probs, labels, num_classes=num_classes)
    support = cm.sum(dim=1)
    present = support > 0
    per_class = [float(per[c]) if bool(present[c]) else None for c in range(num_classes)]
    mean_class = float(per[present].mean()) if bool(present.any()) else 0.0
    return {
        "top1": float(top1),
        "top5": top5,
        "mean_class_acc": mean_class,
        "per_class": per_class,
        "support": [int(s) for s in support],
        "confusion": cm.tolist(),
        "n": n,
    }


def clip_top1(view_probs: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    """Accuracy of every view on its own (clip level). view_probs (N, V, C), labels (N,) -> float."""
    n, v, c = view_probs.shape
    if n == 0:
        return 0.0
    flat = view_probs.reshape(n * v, c).float()
    rep = labels.long().repeat_interleave(v)
    return float(multiclass_accuracy(flat, rep, num_classes=num_classes, average="micro"))


# Mean 8-bit level of a source video (its frames as decoded): nearly black, very dark, dark, lit. ARID's clips fall
# mostly in the first three; the bands are fixed so that runs and datasets compare.
BRIGHTNESS_BANDS = (0.0, 8.0, 20.0, 60.0, 256.0)


def accuracy_by_brightness(brightness: list[float], correct: list[bool], edges=BRIGHTNESS_BANDS) -> list[dict]:
    """Video-level accuracy per band of source brightness: [{"band": "0-8", "n", "acc" (None when empty)}, ...]."""
    b, ok = np.asarray(brightness, float), np.asarray(correct, bool)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (b >= lo) & (b < hi)
        n = int(inside.sum())
        out.append({"band": f"{lo:g}-{hi:g}", "n": n, "acc": float(ok[inside].mean()) if n else None})
    return out
