"""How much of the rendered person survives the camera and the codec in a synthetic clip.

    v = person_visibility(cfg, clip, "data/arid/videos/Run/Run_20_4.mp4", size=(96, 96))
    v["r"], v["contrast"], v["noise"]        # 0.29, 1.7, 1.2: the person barely there
    table = dataset_visibility("data/arid", split="test", size=(96, 96))   # cached in the dataset folder

A clip's mean brightness says how dark it is, not whether the action can still be seen: the renderer knows the
person's signal exactly, so it can be measured. With the clip rendered again without noise, once with the person and
once as the empty scene (same exposure gain, `synthetic.clean_layers`), the person's signal is S = person - empty and
what the video holds of it is R = decoded - empty. Both are area-resized to the model's input size first (the
resize averages noise away, as the cache does). Measured over the pixels the person covers (|S| > 0.5 levels):
- r: Pearson correlation of S and R, 1 for a clean video, about 0 where noise and codec left nothing of the person;
- contrast: mean |S| there, the person's contrast against the scene in 8-bit levels before noise and codec;
- noise: the standard deviation of R - S elsewhere (camera noise and codec error on the empty scene), in levels.
Only for datasets `darkaction synth` made (it needs `metadata.json` to render the clips again).
"""

from __future__ import annotations

import logging
from os import PathLike
from pathlib import Path

import numpy as np

from darkaction.config import SynthConfig
from darkaction.errors import DataError
from darkaction.utils import progress_bar, read_json, write_json

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the measure changes: cached tables of another format are computed again
PERSON_LEVEL = 0.5  # 8-bit levels of |S| that count as the person's pixels
MAX_FRAMES = 64  # evenly spaced frames measured per clip: enough for a stable r, a second or so a clip


def _resize(frames: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    import cv2

    f = frames.astype(np.float32)
    if size is None or tuple(f.shape[1:3]) == tuple(size):
        return f
    h, w = size
    return np.stack([cv2.resize(x, (w, h), interpolation=cv2.INTER_AREA) for x in f])


def person_visibility(
    cfg: SynthConfig, clip: dict, video: str | PathLike, size: tuple[int, int] | None = None
) -> dict[str, float]:
    """{"r", "contrast", "noise"} of one planned clip (an entry of metadata.json's "clips") against its decoded video.

    `size` (height, width): measure at this resolution (the model's input); None: at the video's own."""
    from darkaction.data.synthetic import clean_layers
    from darkaction.data.video import decode

    decoded, _ = decode(video, resize="none")
    person, empty = clean_layers(cfg, clip)
    if decoded.shape[1:] != person.shape[1:]:
        raise DataError(f"{video}: frames {decoded.shape[1:3]} but the dataset renders {person.shape[1:3]}")
    n = min(len(decoded), len(person))
    keep = np.unique(np.linspace(0, n - 1, min(n, MAX_FRAMES)).round().astype(int))
    empty_s = _resize(empty[keep], size)
    signal = _resize(person[keep], size) - empty_s
    held = _resize(decoded[keep], size) - empty_s
    on = np.abs(signal) > PERSON_LEVEL
    if on.sum() < 10 or (~on).sum() < 10:
        return {"r": float("nan"), "contrast": float("nan"), "noise": float("nan")}
    s, h = signal[on], held[on]
    r = float(np.corrcoef(s, h)[0, 1]) if s.std() > 0 and h.std() > 0 else 0.0
    noise = float((held - signal)[~on].std())
    return {"r": round(r, 4), "contrast": round(float(np.abs(s).mean()), 4), "noise": round(noise, 4)}


def clip_video_id(clip: dict) -> str:
    """The index's id of a synthetic clip ("Run/Run_1_1.mp4" -> "Run__Run_1_1"), as `prepare` names it."""
    return clip["video"][: -len(".mp4")].replace("/", "__")


def dataset_visibility(
    root: str | PathLike, split: str = "test", size: tuple[int, int] | None = (96, 96), progress: bool = True
) -> dict[str, dict]:
    """Visibility of every clip of `split` of a synthetic dataset: {video_id: {"r", "contrast", "noise", "brightness"}}.

    Cached as `<root>/visibility_<split>_<h>x<w>.json` (written atomically once all clips are measured) and reused
    while the dataset's metadata is unchanged."""
    root = Path(root)
    meta_path = root / "metadata.json"
    if not meta_path.is_file():
        raise DataError(f"{root}: no metadata.json; visibility is measured on datasets `darkaction synth` made")
    meta = read_json(meta_path)
    cfg = SynthConfig(**meta["config"])
    clips = [c for c in meta["clips"] if c["split"] == split]
    if not clips:
        raise DataError(f"{meta_path}: no clips in split {split!r}")
    tag = "source" if size is None else f"{size[0]}x{size[1]}"
    cache = root / f"visibility_{split}_{tag}.json"
    stamp = {"format": FORMAT, "metadata_mtime_ns": meta_path.stat().st_mtime_ns, "n": len(clips)}
    if cache.is_file():
        old = read_json(cache)
        if all(old.get(k) == v for k, v in stamp.items()):
            return old["clips"]
    table = {}
    for clip in progress_bar(clips, desc=f"visibility {split}", unit="video", disable=not progress):
        video = root / "videos" / clip["video"]
        if not video.is_file():
            raise DataError(f"{video}: missing; run darkaction synth again for {root}")
        v = person_visibility(cfg, clip, video, size)
        table[clip_video_id(clip)] = {**v, "brightness": clip.get("brightness")}
    write_json(cache, {**stamp, "clips": table})
    return table
