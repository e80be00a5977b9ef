"""`predict(videos, run, views=5) -> list[dict]`: classify video files with a trained run (through `Recognizer`).

    for r in predict(["night.avi"], "runs/demo"):
        print(r["label"], r["prob"], r["probs"])     # probs: {class name: mean softmax over the views}

Each video is decoded and resized exactly like the run's frame cache, enhanced with the run's enhancer, sampled into
k test views with the run's test strategy and classified with the averaged softmax of the views
(`darkaction.inference.Recognizer.predict`). The run is loaded once for all the videos.
"""

from __future__ import annotations

from pathlib import Path

from darkaction.errors import DataError


def predict(
    videos: list[str | Path],
    run: str | Path,
    views: int = 5,
    top_k: int = 5,
    progress: bool = False,
    precision: str = "run",
) -> list[dict]:
    """Classify each video. Returns per video: video, label, prob (of that label), top_k, probs {class: p},
    n_frames, views. Raises DataError naming the file for missing or unreadable videos. `precision="fp32"` runs
    the enhancer and model in fp32 instead of the run's setting (bf16 where the CPU has it)."""
    from darkaction.inference.recognizer import Recognizer

    if not videos:
        raise DataError("no videos given; pass one or more video files")
    rec = Recognizer.from_run(run, precision=precision)
    return [{"video": str(v), **rec.predict(v, views=views, top_k=top_k)} for v in videos]
