"""The clip dataset: video records + frame cache -> sampled, augmented, normalised clips.

    ds = ClipDataset(index.split("train"), cache, cfg, train=True)
    item = ds[0]        # {"clip": float32 (C,T,H,W), "rate": float32 (), "label": int, "index": 0}
    test = ClipDataset(index.split("test"), cache, cfg, train=False, views=5, n_min=ds.n_min, n_max=ds.n_max)
    test[0]["clip"]     # float32 (5,C,T,H,W): the test views, one batch for one forward pass
    test[0]["rate"]     # float32 (5,): each view's frames per slot (`sampling.slot_rate`, for `model.rate_input`)

Randomness. Training item i of epoch e is drawn (sampling and augmentation) from `utils.training_rng(seed, e, i)`: a
pure function of (seed, epoch, index), whatever the workers, the loader or a resume did before (`set_epoch` is called
by the loader's sampler every epoch). Evaluation views are `sample_views(..., seed=(sampling.view_seed, seed, i))`:
fixed per video position, independent of workers and order.

C is 3 (RGB) or 5 when a flow cache is given (RGB, dx, dy; see transforms.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from darkaction.data.lowlight import dark_copy_id
from darkaction.data.sampling import (
    LENGTH_RATE_STRATEGIES,
    draw_rate_scale,
    rate_scale_range,
    sample,
    sample_views,
    sampler_params,
    slot_rate,
)
from darkaction.data.transforms import ClipTransform, channel_stats
from darkaction.errors import ConfigError, DataError
from darkaction.utils import training_rng

_NEEDS_LENGTHS = ("constant", "variable")


def _share(value: float, name: str) -> float:
    """A share of the training clips, checked to lie in [0, 1]."""
    share = float(value)
    if not 0.0 <= share <= 1.0:
        raise DataError(f"{name}={share}: give the share of training clips in [0, 1]")
    return share


def read_slots(frames: np.ndarray, idx: np.ndarray, slot: str = "frame") -> np.ndarray:
    """The frames of a sampled clip: uint8 (N,H,W,3) and indices (T,) with -1 for blanks -> uint8 (T,H,W,3).

    frame: the frame at each index (blanks read frame 0; the transform blanks them). span (`sampling.slot`): each
    slot is the mean of the frames from its index up to the next larger sampled index, the last as long as the gap
    before it (within the video), so a clip sampled every s frames sees all of them, as a longer exposure would."""
    blank = idx < 0
    take = np.where(blank, 0, idx)
    if slot == "frame":
        return frames[take]
    if slot != "span":
        raise ConfigError(f"sampling.slot must be 'frame' or 'span', got {slot!r}")
    out = np.array(frames[take])
    starts = np.unique(take[~blank])
    if len(starts) == 0:
        return out
    last_gap = int(starts[-1] - starts[-2]) if len(starts) > 1 else 1
    end = min(int(starts[-1]) + last_gap, len(frames))
    # one read of the frames the clip spans, averaged per slot ([s_i, s_i+1) and the last [s_last, end)) as one
    # matrix product (3x faster than numpy.add.reduceat over the frame axis)
    block = np.asarray(frames[starts[0] : end])
    bounds = np.append(starts, end) - starts[0]
    weights = np.zeros((len(starts), len(block)), np.float32)
    for k in range(len(starts)):
        weights[k, bounds[k] : bounds[k + 1]] = 1.0 / (bounds[k + 1] - bounds[k])
    means = weights @ block.reshape(len(block), -1).astype(np.float32)
    means = (means + 0.5).astype(np.uint8).reshape(len(starts), *frames.shape[1:])
    valid = np.flatnonzero(~blank)
    out[valid] = means[np.searchsorted(starts, take[valid])]
    return out


class ClipDataset(Dataset):
    """A torch Dataset of clips sampled from a frame cache.

    records: objects with `.video_id`, `.label`, `.n_frames` (e.g. `darkaction.data.index.VideoRecord`).
    cache: has `frames(video_id) -> uint8 (N,H,W,3)` (a read-only memmap in `FrameCache`).
    views: clips per item; training returns (C,T,H,W) when views == 1, evaluation always (views,C,T,H,W).
    n_min / n_max: the training index's shortest / longest video (constant and variable sampling); training
    computes them from `records` when not given; `cfg.sampling.n_min/n_max` (non-zero) override both.
    stats: (mean, std) for `augment.normalize: index`; training computes them from `records` when not given.
    flow_cache: optional cache of encoded optical flow (`darkaction.data.flow.encode_flow`) -> 5-channel clips.
    """

    def __init__(
        self,
        records: Sequence[Any],
        cache: Any,
        cfg: Any,
        train: bool,
        views: int = 1,
        n_min: int | None = None,
        n_max: int | None = None,
        seed: int = 0,
        flow_cache: Any = None,
        stats: tuple[Sequence[float], Sequence[float]] | None = None,
    ) -> None:
        self.records = list(records)
        self.cache = cache
        self.flow_cache = flow_cache
        self.cfg = cfg
        self.train = bool(train)
        self.views = int(views)
        if self.views < 1:
            raise DataError(f"ClipDataset needs views >= 1, got {views}")
        self.seed = int(seed)
        self.epoch = 0
        self.T = int(cfg.sampling.T)
        self.strategy = cfg.sampling.strategy if train else (cfg.sampling.test_strategy or cfg.sampling.strategy)
        mix = _share(cfg.augment.length_mix, "augment.length_mix")
        self.length_mix = mix if self.train and self.strategy in LENGTH_RATE_STRATEGIES else 0.0
        loop = _share(cfg.augment.loop, "augment.loop")
        if loop and cfg.sampling.slot != "frame":
            raise DataError(f"augment.loop needs sampling.slot: frame (a looped clip's slots are not spans of it), "
                            f"got {cfg.sampling.slot!r}")  # fmt: skip
        self.loop = loop if self.train else 0.0
        auto_alpha = self.strategy == "delta" and isinstance(cfg.sampling.alpha, str)
        needs = self.strategy in _NEEDS_LENGTHS or auto_alpha
        missing = n_min is None or n_max is None
        # the training videos' lengths, read once: for n_min / n_max, length mixing and looping
        self.lengths = (
            [self._length(i) for i in range(len(self.records))]
            if self.train and (self.length_mix or self.loop or (missing and needs))
            else []
        )
        if self.train and missing and needs and self.lengths:
            n_min = min(self.lengths) if n_min is None else n_min
            n_max = max(self.lengths) if n_max is None else n_max
        self.params = sampler_params(cfg.sampling, n_min, n_max)
        self.rate_scale = rate_scale_range(cfg.augment.rate_scale) if self.train else (1.0, 1.0)
        self.n_min, self.n_max = self.params["n_min"], self.params["n_max"]
        if stats is None and cfg.augment.normalize == "index" and self.train and not cfg.augment.mean:
            stats = channel_stats(cache, [r.video_id for r in self.records])
        self.stats = stats
        self.transform = ClipTransform(cfg.augment, train=self.train, blank=cfg.sampling.blank, stats=stats)
        if cfg.sampling.slot != "frame" and flow_cache is not None:
            raise ConfigError("sampling.slot=span averages frames, not optical flow: use slot=frame with flow models")
        darken = cfg.augment.darken
        self.dark_p = float(darken.p)
        self.dark_copies = int(darken.copies) if self.train and self.dark_p > 0 else 0
        if self.dark_copies:
            if flow_cache is not None:
                raise DataError("augment.darken makes no optical flow for its dark copies: turn one of the two off")
            if hasattr(cache, "__contains__"):  # a FrameCache: say now, not mid-epoch, when a copy is missing
                absent = [dark_copy_id(r.video_id, k) for r in self.records for k in range(1, self.dark_copies + 1)]
                absent = [c for c in absent if c not in cache]
                if absent:
                    raise DataError(
                        f"{len(absent)} dark copies (augment.darken) not in the cache, e.g. {absent[0]}: run "
                        "`darkaction prepare` and `darkaction enhance` with this config"
                    )

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose draws `__getitem__` makes (the loader's EpochShuffle sets it)."""
        self.epoch = int(epoch)

    def _length(self, i: int) -> int:
        rec = self.records[i]
        n = int(getattr(rec, "n_frames", 0) or 0)
        return n if n > 0 else len(self.cache.frames(rec.video_id))

    def _frames(self, video_id: str) -> tuple[np.ndarray, np.ndarray | None]:
        frames = self.cache.frames(video_id)
        if len(frames) == 0:
            raise DataError(f"video '{video_id}' has no frames in the cache; re-run darkaction prepare")
        flow = None
        if self.flow_cache is not None:
            flow = self.flow_cache.frames(video_id)
            if len(flow) != len(frames):
                raise DataError(
                    f"flow cache has {len(flow)} frames for '{video_id}' but the frame cache has {len(frames)}; "
                    "rebuild the flow cache from this frame cache"
                )
        return frames, flow

    def _train_source(self, rec: Any, i: int) -> str:
        """The cache entry training item i reads this epoch: the video, or for a share `augment.darken.p` of the
        draws one of its dark copies (from a stream of its own, so the clip's own draws do not change)."""
        if not self.dark_copies:
            return rec.video_id
        rng = training_rng(self.seed, self.epoch, i, stream="darken")
        if rng.random() >= self.dark_p:
            return rec.video_id
        return dark_copy_id(rec.video_id, int(rng.integers(self.dark_copies)) + 1)

    def _clip(self, frames: np.ndarray, flow: np.ndarray | None, idx: np.ndarray, rng: Any) -> torch.Tensor:
        blank = idx < 0
        take = np.where(blank, 0, idx)  # blanks read frame 0, then the transform blanks them out
        slots = read_slots(frames, idx, self.cfg.sampling.slot)
        return self.transform(slots, blank, rng, flow=None if flow is None else flow[take])

    def _training_length(self, rng: np.random.Generator) -> int:
        """A random training video's frame count (length mixing and looping)."""
        return self.lengths[int(rng.integers(len(self.lengths)))]

    def _train_indices(self, n: int, rng: np.random.Generator) -> np.ndarray:
        scale = draw_rate_scale(rng, *self.rate_scale)
        as_length = None
        if self.length_mix and rng.random() < self.length_mix:
            # the rate of a random training video's length: a class's sampling rate stops following its own lengths
            as_length = self._training_length(rng)
        if self.loop and rng.random() < self.loop:
            looped = self._training_length(rng)
            if looped > n:
                # the clip played again and again up to `looped` frames, sampled as a video that long (a looped
                # clip takes that length's rate, not a length-mixing draw's)
                idx = sample(self.strategy, looped, self.T, rng, rate_scale=scale, **self.params)
                return np.where(idx < 0, idx, idx % n)
        return sample(self.strategy, n, self.T, rng, rate_scale=scale, as_length=as_length, **self.params)

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < len(self.records):
            raise IndexError(f"index {i} out of range for {len(self.records)} videos")
        rec = self.records[i]
        frames, flow = self._frames(self._train_source(rec, i) if self.train else rec.video_id)
        n = len(frames)
        if self.train:
            rng = training_rng(self.seed, self.epoch, i)
            clips, rates = [], []
            for _ in range(self.views):
                idx = self._train_indices(n, rng)
                clips.append(self._clip(frames, flow, idx, rng))
                rates.append(slot_rate(idx))
            clip = clips[0] if self.views == 1 else torch.stack(clips)
            rate = torch.tensor(rates[0] if self.views == 1 else rates, dtype=torch.float32)
        else:
            seed = (int(self.cfg.sampling.view_seed), self.seed, i)
            clip, rate = test_views(
                frames, self.T, self.views, seed, self.strategy, self.params, self.transform, flow, with_rates=True,
                slot=self.cfg.sampling.slot,
            )  # fmt: skip
        return {"clip": clip, "rate": rate, "label": int(rec.label), "index": i}


def test_views(
    frames: np.ndarray,
    T: int,
    k: int,
    seed: Sequence[int],
    strategy: str,
    params: dict,
    transform: ClipTransform,
    flow: np.ndarray | None = None,
    with_rates: bool = False,
    slot: str = "frame",
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """The k test views of one video: uint8 frames (N,H,W,3) -> float32 (k,C,T,h,w); `with_rates` also returns
    each view's frames per slot, float32 (k,) (`sampling.slot_rate`, what a `model.rate_input` head reads).

    The one definition of "what the network sees at test time", shared by evaluation (ClipDataset) and
    `darkaction.Recognizer`: views from `sample_views(strategy, N, T, k, seed, **params)`, blanks black, the
    evaluation transform (centre crop, normalisation)."""
    idx = sample_views(strategy, len(frames), T, k, seed=seed, **params)
    clips = []
    for row in idx:
        blank = row < 0
        take = np.where(blank, 0, row)
        clips.append(transform(read_slots(frames, row, slot), blank, None, flow=None if flow is None else flow[take]))
    if not with_rates:
        return torch.stack(clips)
    return torch.stack(clips), torch.tensor([slot_rate(row) for row in idx], dtype=torch.float32)
