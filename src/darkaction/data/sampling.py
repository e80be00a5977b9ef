"""Frame samplers: which T frames of an N-frame video the network sees. Pure functions of (N, T, rng).

Every sampler returns a NumPy int64 array of exactly T entries: indices into the video in [0, N), or -1 for a blank
(padding) frame. Blanks only ever form a contiguous prefix and suffix.

    rng = np.random.default_rng(0)
    idx = sample("delta", n_frames=80, T=64, rng=rng, beta=0.0, gamma=1.5, alpha=4.0)
    views = sample_views("delta", 80, 64, k=5, seed=(0, 17), beta=0.0, gamma=1.5, alpha=4.0)  # (5, 64)

Strategies (paper Sec. 3.3 and Table 2):

- ``delta``: delta ~ U[beta, gamma], rate S = min((N + T*delta)/T, alpha); the clip is taken at rate S and padded
  with P1 ~ U[0, T - N/S] blanks before and P2 = T - N/S - P1 after.
- ``constant``: S = n_max/T (n_max = longest training video), padded like delta.
- ``variable``: S ~ U[n_min/T, n_max/T], padded like delta.
- ``length``: S = N/T, which always fills T exactly (no padding, deterministic).
- ``uniform``: T indices evenly spaced from the first to the last frame, round(linspace(0, N-1, T)) (deterministic).
- ``consecutive``: the reference code's window of T consecutive frames at a random start; a clip shorter than T is
  looped from frame 0 (0, 1, ..., N-1, 0, 1, ...). This is the one sampler whose indices are not non-decreasing.

Rounding of the padded-rate samplers (delta, constant, variable), given a rate S > 0:

- Fitting case, N/S <= T: the clip yields M = ceil(N/S) real frames at indices floor(j*S), j = 0..M-1. The first is
  frame 0 and the window [0, M*S) covers the whole clip, so the gap after the last sampled frame is shorter than
  one stride (no part of the clip is cropped away; with S <= 1 the last index is exactly N-1). The step between
  consecutive indices is floor/ceil of S, so the rate is never above S (and S never above alpha).
  P1 is drawn continuously, p1 ~ U[0, T - N/S], and the integer padding is floor(p1); since
  T - M = floor(T - N/S) this is always in [0, T - M]. P2 = T - M - P1.
- Cropping case, N/S > T (only when the clip is longer than alpha*T, for delta the rate cap, or when beta < 0, or a
  test video longer than the training n_max for constant/variable): the clip cannot fit at rate S. A window of
  T*S frames at a random offset o ~ U[0, N - T*S] is taken at rate S (indices floor(o + j*S)), with no blanks.
  This is the only case that drops frames.
- A non-positive rate (beta < -N/T) is raised to MIN_RATE: every index then repeats one frame.

`delta_plan` exposes the random draws (delta, S, p1, offset) so tests can check their distributions.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from darkaction.config import Strategy
from darkaction.errors import ConfigError

STRATEGIES = typing.get_args(Strategy)
PARAM_NAMES = ("beta", "gamma", "alpha", "n_min", "n_max", "rate_scale", "as_length", "test_rates")
LENGTH_RATE_STRATEGIES = ("delta", "length")  # whose rate follows a length: as_length, length mixing, test_rates
MIN_RATE = 1e-6  # floor for a rate that a negative delta pushed to <= 0
MIN_SLOT_RATE = 0.05  # `slot_rate` of a clip whose slots all show one frame
_EPS = 1e-9  # tolerance so that N/S = 64.0000000001 (float noise) still counts as fitting into 64 slots


@dataclass(frozen=True)
class RatePlan:
    """How a padded-rate sampler lays a clip of N frames into T slots.

    `rate` is S; `n_real` = M real frames; `pad_before` / `pad_after` = P1 / P2 (integers);
    `p1` = the continuous P1 draw (0 when cropping); `offset` = start of the cropped window (0 when fitting);
    `cropped` = whether the clip was longer than T*S; `delta` = the drawn delta (NaN for other strategies).
    """

    n_frames: int
    T: int
    rate: float
    n_real: int
    pad_before: int
    pad_after: int
    p1: float
    offset: float
    cropped: bool
    delta: float = float("nan")

    def indices(self) -> np.ndarray:
        """(T,) int64: -1 for blanks, else the frame index."""
        out = np.full(self.T, -1, dtype=np.int64)
        j = np.arange(self.n_real, dtype=np.float64)
        real = np.floor(self.offset + j * self.rate).astype(np.int64)
        # float rounding can never push an index past the end, but make that a guarantee rather than a hope
        np.clip(real, 0, self.n_frames - 1, out=real)
        out[self.pad_before : self.pad_before + self.n_real] = real
        return out


# Kept for readability at call sites that talk about delta sampling specifically.
DeltaPlan = RatePlan


def _check_sizes(n_frames: int, T: int) -> None:
    if int(n_frames) < 1:
        raise ConfigError(f"cannot sample from a video with {n_frames} frames; the video is empty (re-run prepare)")
    if int(T) < 1:
        raise ConfigError(f"sampling.T must be at least 1, got {T}")


def rate_plan(n_frames: int, T: int, rate: float, rng: np.random.Generator, delta: float = float("nan")) -> RatePlan:
    """Lay N frames sampled at `rate` into T slots: pad both sides when they fit, crop a random window when not."""
    _check_sizes(n_frames, T)
    n, T = int(n_frames), int(T)
    rate = float(rate) if rate > MIN_RATE else MIN_RATE
    span = n / rate  # N/S: how many slots the whole clip needs at this rate
    if span <= T + _EPS:
        m = min(T, max(1, math.ceil(span - _EPS)))
        free = T - span if span < T else 0.0
        p1 = float(rng.uniform(0.0, free)) if free > 0 else 0.0
        before = min(int(math.floor(p1)), T - m)
        return RatePlan(n, T, rate, m, before, T - m - before, p1, 0.0, False, delta)
    # the clip is longer than T*S: take T frames at rate S from a random window (the only case that crops)
    slack = max(0.0, n - T * rate)
    offset = float(rng.uniform(0.0, slack)) if slack > 0 else 0.0
    return RatePlan(n, T, rate, T, 0, 0, 0.0, offset, True, delta)


def delta_plan(
    n_frames: int,
    T: int,
    rng: np.random.Generator,
    beta: float = 0.0,
    gamma: float = 1.5,
    alpha: float = 4.0,
    rate_scale: float = 1.0,
    as_length: int | None = None,
) -> RatePlan:
    """Delta sampling's draws: delta ~ U[beta, gamma], S = min((N + T*delta)/T, alpha), then P1 (Sec. 3.3).

    `rate_scale` (training speed augmentation, `augment.rate_scale`; 1 = the paper) multiplies S before the cap:
    S = min(scale * (N + T*delta)/T, alpha). `as_length` (training length mixing, `augment.length_mix`) takes the
    rate of a clip of that many frames instead: S = min(scale * (as_length + T*delta)/T, alpha); the clip itself
    keeps its N frames (a shorter `as_length` crops a window of it, a longer one pads it).
    """
    if gamma < beta:
        raise ConfigError(f"delta sampling needs sampling.beta <= sampling.gamma, got beta={beta}, gamma={gamma}")
    if alpha <= 0:
        raise ConfigError(f"sampling.alpha (the maximum sampling rate) must be positive, got {alpha}")
    _check_sizes(n_frames, T)
    delta = float(rng.uniform(beta, gamma)) if gamma > beta else float(beta)
    n_rate = int(as_length) if as_length else int(n_frames)
    rate = min(float(rate_scale) * (n_rate + T * delta) / T, float(alpha))
    return rate_plan(n_frames, T, rate, rng, delta=delta)


def _need(params: dict, key: str, strategy: str) -> float:
    value = params.get(key)
    if value is None or value <= 0:
        raise ConfigError(
            f"'{strategy}' sampling needs {key} (the {'longest' if key == 'n_max' else 'shortest'} training video's "
            f"frame count); set sampling.{key} or build the dataset from the training index"
        )
    return float(value)


def _uniform(n: int, T: int) -> np.ndarray:
    if T == 1:
        return np.zeros(1, dtype=np.int64)
    return np.rint(np.linspace(0.0, n - 1, T)).astype(np.int64)


def _consecutive(n: int, T: int, rng: np.random.Generator) -> np.ndarray:
    if n >= T:
        start = int(rng.integers(0, n - T + 1))
        return np.arange(start, start + T, dtype=np.int64)
    # the reference loops a short clip from its first frame until T frames are filled
    return np.arange(T, dtype=np.int64) % n


def sample(strategy: str, n_frames: int, T: int, rng: np.random.Generator, **params: Any) -> np.ndarray:
    """Pick T frame indices from an N-frame video. Returns (T,) int64, -1 = blank.

    params: beta, gamma, alpha (delta); n_min, n_max (constant, variable; from the training index); rate_scale
    (a factor on the rate of the padded-rate samplers: delta, constant, variable, length; training speed
    augmentation, default 1); as_length (delta and length: the rate of a clip of that many frames; training length
    mixing, default the clip's own N); test_rates (read by `sample_views` only). Parameters a strategy does not use
    are ignored, so one `sampler_params(...)` dict serves every strategy.
    """
    unknown = set(params) - set(PARAM_NAMES)
    if unknown:
        raise ConfigError(f"unknown sampler parameter(s) {sorted(unknown)}; valid: {', '.join(PARAM_NAMES)}")
    _check_sizes(n_frames, T)
    n, T = int(n_frames), int(T)
    scale = 1.0 if params.get("rate_scale") is None else float(params["rate_scale"])
    if scale <= 0:
        raise ConfigError(f"the sampling rate scale must be positive, got {scale:g}")
    as_length = params.get("as_length")
    if as_length is not None and int(as_length) < 1:
        raise ConfigError(f"as_length (the length whose rate a clip is sampled at) must be >= 1, got {as_length}")
    if strategy == "delta":
        keys = {k: params[k] for k in ("beta", "gamma", "alpha", "as_length") if params.get(k) is not None}
        return delta_plan(n, T, rng, rate_scale=scale, **keys).indices()
    if strategy == "constant":
        return rate_plan(n, T, scale * _need(params, "n_max", strategy) / T, rng).indices()
    if strategy == "variable":
        lo, hi = _need(params, "n_min", strategy), _need(params, "n_max", strategy)
        if hi < lo:
            raise ConfigError(f"variable sampling needs n_min <= n_max, got n_min={lo:g}, n_max={hi:g}")
        return rate_plan(n, T, scale * (float(rng.uniform(lo / T, hi / T)) if hi > lo else lo / T), rng).indices()
    if strategy == "length":
        return rate_plan(n, T, scale * int(as_length or n) / T, rng).indices()
    if strategy == "uniform":
        return _uniform(n, T)
    if strategy == "consecutive":
        return _consecutive(n, T, rng)
    raise ConfigError(f"unknown sampling strategy '{strategy}'; choose one of: {', '.join(STRATEGIES)}")


def sample_views(strategy: str, n_frames: int, T: int, k: int, seed: int | Sequence[int], **params: Any) -> np.ndarray:
    """k test-time views (the paper averages 5 sets of (delta, P1, P2)). Returns (k, T) int64.

    Deterministic: the same (seed, N, T, k, params) always gives the same views. `seed` may be a tuple such as
    (view_seed, video_position) so every video of a dataset gets its own reproducible views.
    With `test_rates="train"` (delta and length sampling) view i takes the rate of a video of `view_lengths(...)[i]`
    frames, at most its own N, instead of N's own rate.
    """
    if int(k) < 1:
        raise ConfigError(f"the number of test views must be at least 1, got {k}")
    entropy = [int(s) for s in seed] if isinstance(seed, (tuple, list)) else int(seed)
    rng = np.random.default_rng(np.random.SeedSequence(entropy))
    mode = params.get("test_rates") or "own"
    if mode not in ("own", "train"):
        raise ConfigError(f"sampling.test_rates must be 'own' or 'train', got {mode!r}")
    if mode == "own" or strategy not in LENGTH_RATE_STRATEGIES:
        return np.stack([sample(strategy, n_frames, T, rng, **params) for _ in range(int(k))])
    need = "test_rates: train"
    lengths = view_lengths(int(k), _need(params, "n_min", need), _need(params, "n_max", need))
    return np.stack([sample(strategy, n_frames, T, rng, **{**params, "as_length": min(int(n_frames), length)})
                     for length in lengths])  # fmt: skip


def view_lengths(k: int, n_min: float, n_max: float) -> list[int]:
    """`sampling.test_rates: train`: k lengths spaced geometrically over the training range, the middles of k equal
    log-spaced bins of [n_min, n_max] (k=1: their geometric mean)."""
    if not 0 < n_min <= n_max:
        raise ConfigError(f"test_rates: train needs 0 < n_min <= n_max, got n_min={n_min:g}, n_max={n_max:g}")
    ratio = n_max / n_min
    return [max(1, int(round(n_min * ratio ** ((i + 0.5) / k)))) for i in range(int(k))]


def rate_scale_range(bounds: Sequence[float]) -> tuple[float, float]:
    """`augment.rate_scale` checked: [low, high] with 0 < low <= high."""
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ConfigError(
            f"augment.rate_scale={bounds!r}: give [low, high], e.g. [0.7, 3.0] (or [1, 1] for none)"
        ) from None
    if not 0 < lo <= hi:
        raise ConfigError(f"augment.rate_scale={bounds!r}: need 0 < low <= high")
    return lo, hi


def draw_rate_scale(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A training clip's speed factor, log-uniform in [lo, hi] (no draw when lo == hi, so rng streams stay put)."""
    return lo if lo == hi else float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def auto_alpha(n_max: int, T: int) -> float:
    """`sampling.alpha: auto`: N_max / T rounded up to 0.1, the smallest such cap that crops no training clip."""
    return math.ceil(round(10.0 * n_max / T, 6)) / 10.0


def resolve_alpha(alpha: float | str, n_max: int | None, T: int) -> float:
    """`sampling.alpha` as a number: a number as is, "auto" from the training split's longest video (`auto_alpha`)."""
    if isinstance(alpha, str):
        if alpha.strip().lower() != "auto":
            raise ConfigError(f"sampling.alpha must be a number or 'auto', got {alpha!r}")
        if not n_max:
            raise ConfigError(
                "sampling.alpha: auto needs the longest training video's frame count (sampling.n_max, or the "
                "training index); set sampling.alpha to a number to sample without one"
            )
        return auto_alpha(int(n_max), int(T))
    return float(alpha)


def cropped(lengths: Any, T: int, alpha: float) -> int:
    """How many clips of these frame counts delta sampling crops: those longer than alpha * T."""
    return int(sum(1 for n in lengths if n > alpha * T + _EPS))


def sampler_params(sampling: Any, n_min: int | None = None, n_max: int | None = None) -> dict:
    """Keyword arguments of `sample` from a `SamplingConfig`.

    `n_min` / `n_max` are the training index's shortest / longest video; a non-zero `sampling.n_min` / `n_max`
    in the config overrides them (an explicit setting wins). Missing values stay None; the strategies that need
    them raise a `ConfigError` saying so.
    """
    if sampling.strategy not in STRATEGIES:
        raise ConfigError(f"unknown sampling.strategy '{sampling.strategy}'; choose one of: {', '.join(STRATEGIES)}")
    test = getattr(sampling, "test_strategy", "")
    if test and test not in STRATEGIES:
        raise ConfigError(f"unknown sampling.test_strategy '{test}'; choose one of: {', '.join(STRATEGIES)}")
    n_max = int(sampling.n_max) if sampling.n_max else (int(n_max) if n_max else None)
    # alpha caps delta sampling only: `auto` without N_max is an error only when delta sampling will run
    unused = isinstance(sampling.alpha, str) and not n_max and "delta" not in (sampling.strategy, test)
    return {
        "beta": float(sampling.beta),
        "gamma": float(sampling.gamma),
        "alpha": None if unused else resolve_alpha(sampling.alpha, n_max, sampling.T),
        "n_min": int(sampling.n_min) if sampling.n_min else (int(n_min) if n_min else None),
        "n_max": n_max,
        "test_rates": getattr(sampling, "test_rates", "own"),
    }


def slot_rate(indices: Any) -> float:
    """Frames per slot of one sampled clip (T,) (-1 = blank): the mean step between its first and last real frame,
    1.0 with fewer than two; floored at MIN_SLOT_RATE (a clip of one repeated frame). `model.rate_input` reads it."""
    real = np.asarray(indices)
    real = real[real >= 0]
    if len(real) < 2:
        return 1.0
    return max(float(real[-1] - real[0]) / (len(real) - 1), MIN_SLOT_RATE)


def film_strip(
    frames: np.ndarray, idx: np.ndarray, title: str = "", per_row: int = 16, tile: int = 96, gain: bool = True
) -> np.ndarray:
    """Draw the sampled frames as a film strip: uint8 frames (N,H,W,3) + indices (T,) -> uint8 RGB image.

    Each slot shows the picked frame labelled with its source index; a blank (-1) is a black tile crossed in red.
    With `gain`, frames are brightened by one factor for the whole strip (dark videos are otherwise invisible);
    the factor is written in the title.
    """
    import cv2

    T = len(idx)
    h, w = frames.shape[1:3]
    th, tw = max(1, round(tile * h / max(h, w))), max(1, round(tile * w / max(h, w)))
    real = idx[idx >= 0]
    factor = 1.0
    if gain and real.size:
        p99 = float(np.percentile(frames[np.unique(real)], 99.5))
        factor = min(20.0, 255.0 / max(p99, 1.0))
    rows = math.ceil(T / per_row)
    cols = min(T, per_row)
    pad, label_h, head = 4, 14, 24
    canvas = np.full((head + rows * (th + label_h + pad) + pad, pad + cols * (tw + pad), 3), 40, np.uint8)
    red = (230, 40, 40)
    for slot, i in enumerate(idx.tolist()):
        r, c = divmod(slot, per_row)
        y, x = head + pad + r * (th + label_h + pad), pad + c * (tw + pad)
        if i >= 0:
            img = cv2.resize(np.ascontiguousarray(frames[i]), (tw, th), interpolation=cv2.INTER_AREA)
            canvas[y : y + th, x : x + tw] = np.clip(img.astype(np.float32) * factor, 0, 255).astype(np.uint8)
            text, color = str(i), (220, 220, 220)
        else:
            canvas[y : y + th, x : x + tw] = 0
            cv2.line(canvas, (x + 3, y + 3), (x + tw - 4, y + th - 4), red, 2)
            cv2.line(canvas, (x + tw - 4, y + 3), (x + 3, y + th - 4), red, 2)
            text, color = "blank", red
        cv2.putText(canvas, text, (x + 2, y + th + 11), cv2.FONT_HERSHEY_SIMPLEX, 0.38, color, 1, cv2.LINE_AA)
    head_text = f"{title}  display gain x{factor:.1f}" if factor != 1.0 else title
    cv2.putText(canvas, head_text, (pad, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas
