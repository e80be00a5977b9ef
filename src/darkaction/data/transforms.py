"""Clip transforms: one geometric transform for every frame of a clip, normalisation, blank frames, optical flow.

    tf = ClipTransform(cfg.augment, train=True, blank=cfg.sampling.blank)
    clip = tf(frames, blank_mask, rng)            # uint8 (T,H,W,3), bool (T,) -> float32 (3,T,h,w)
    clip = tf(frames, blank_mask, rng, flow=enc)  # + encoded flow (T,H,W,3) -> float32 (5,T,h,w)

Geometry. Crop/resize, horizontal flip, rotation and translation are composed into ONE 2x3 affine matrix per clip
and applied with one `cv2.warpAffine` per frame (bilinear, black border). Measured on this 2-core CPU for 64 frames
of 112x112: ~3-7 ms per clip with per-frame warpAffine versus ~8.5 ms for a batched torch `affine_grid` +
`grid_sample` (one thread), and no clear gain from warping channel-stacked frames (OpenCV caps at 128 channels);
see benchmarks/bench_sampling.py. When nothing moves (evaluation at cache size) no warp is done at all.

- Size: frames at least `height x width` are cropped at their own scale (the reference's 112 crop out of 128-pixel
  frames): a random crop in training, the centre crop in evaluation. Smaller frames are first scaled up until they
  cover the output, then cropped the same way.
- Training only: flip with probability `augment.hflip`, rotation uniform in [-rotation, rotation] degrees about the
  centre, translation uniform in [-translation, translation] x size in each axis. Evaluation: none of these.
- Training only, `augment.pan` > 0 (not in the paper): a camera pan. Frame t of T is shifted sideways by
  d (t / (T-1) - 1/2) output pixels after the clip's matrix, d ~ U[-pan, pan] x width, so the picture slides at a
  constant speed (one matrix per frame; flow input refuses it, its vectors would need the pan's speed added).

Blank frames (sampler index -1). `black` (the default): the frame is black, pixel value 0, BEFORE normalisation --
the same input a frame recorded with no light at all would give, so a blank looks like "nothing visible" whatever
the normalisation statistics, and padding the video itself with black frames (the paper's Fig. 5) gives the same
tensor. `zero`: the frame is 0 AFTER normalisation, i.e. the dataset's mean colour. `hold` (not in the paper): the
frame repeats the nearest sampled frame of the clip (earlier one on a tie), so padding shows the scene held still
before and after the sampled frames, as a longer recording's idle start and end would, instead of a black screen;
held frames have zero flow and do not enter the `clip` statistics.

Normalisation: x/255, then (x - mean) / std per channel. `augment.normalize` picks the statistics (`kinetics`,
`arid`, `index` = computed from the training cache with `channel_stats`, `none`); explicit `augment.mean`/`std`
override it. `clip` standardises every clip by its own per-channel mean and std (over its real frames, before the
geometric augmentation): it removes the brightness and contrast of the recording, which a network trained on few
recording groups cannot learn to ignore (not in the paper; measured in docs/results.md). Under `clip` a `black`
blank is black relative to the clip's own statistics (real black frames would enter them, blanks do not), and a
`zero` blank is the clip's own mean colour.

Optical flow (5-channel input: RGB, dx, dy). Flow frames are decoded with `darkaction.data.flow.decode_flow`
(pixels at cache resolution), warped with the same matrix as the RGB frames, and the vectors themselves are
transformed by the matrix's linear part (a flip negates dx, a rotation rotates (dx, dy), a resize scales them),
then divided by FLOW_DIVISOR. Blank frames have zero flow.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch

from darkaction.config import BlankMode
from darkaction.data.flow import decode_flow
from darkaction.errors import ConfigError, DataError

NORM_STATS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "kinetics": ((0.43216, 0.394666, 0.37645), (0.22803, 0.22145, 0.216989)),
    "arid": ((0.0796, 0.0739, 0.0725), (0.1005, 0.0971, 0.0899)),
    "none": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
}
NORMALIZE_MODES = (*NORM_STATS, "index", "clip")
# Per-clip standardisation never divides by less than this std (in [0, 1] units): a black or flat clip is not
# blown up into amplified noise.
MIN_CLIP_STD = 4.0 / 255.0
BLANK_MODES = typing.get_args(BlankMode)
# Flow in pixels is divided by this so a typical motion of a few pixels lands near the +-1 spread of normalised RGB.
FLOW_DIVISOR = 4.0


def resolve_stats(augment: Any, stats: tuple[Sequence[float], Sequence[float]] | None = None) -> tuple[list, list]:
    """(mean, std) lists of 3 floats for `augment` (an AugmentConfig); `stats` supplies the `index` statistics."""
    if augment.mean or augment.std:
        mean, std = list(augment.mean), list(augment.std)
        if len(mean) != 3 or len(std) != 3:
            raise ConfigError(
                f"augment.mean and augment.std must both list 3 values (R, G, B), got mean={mean}, std={std}"
            )
    elif augment.normalize == "index":
        if stats is None:
            raise ConfigError(
                "augment.normalize=index needs statistics from the training cache: pass "
                "stats=channel_stats(cache, train_ids) (the dataset does this for training) or set augment.mean/std"
            )
        mean, std = [float(v) for v in stats[0]], [float(v) for v in stats[1]]
    elif augment.normalize in NORM_STATS:
        mean, std = [list(v) for v in NORM_STATS[augment.normalize]]
    elif augment.normalize == "clip":
        mean, std = [0.0] * 3, [1.0] * 3  # x/255 only; ClipTransform standardises each clip by its own statistics
    else:
        valid = ", ".join(NORMALIZE_MODES)
        raise ConfigError(f"unknown augment.normalize '{augment.normalize}'; choose one of: {valid}")
    if min(std) <= 0:
        raise ConfigError(f"normalisation std must be positive, got {std}")
    return [float(v) for v in mean], [float(v) for v in std]


def channel_stats(cache: Any, ids: Sequence[str], max_videos: int = 200, frames_per_video: int = 16) -> tuple:
    """Per-channel mean and std (in [0, 1]) of a frame cache, for `augment.normalize: index`.

    Uses up to `max_videos` of `ids` (evenly spread, deterministic) and up to `frames_per_video` evenly spaced frames
    of each. Returns (mean [3], std [3]) as lists of floats.
    """
    ids = list(ids)
    if not ids:
        raise DataError("channel_stats: no training videos to compute statistics from; check the training index")
    if len(ids) > max_videos:
        ids = [ids[i] for i in np.linspace(0, len(ids) - 1, max_videos).round().astype(int)]
    total = np.zeros(3)
    total_sq = np.zeros(3)
    count = 0
    for vid in ids:
        frames = cache.frames(vid)
        if len(frames) == 0:
            continue
        pick = np.unique(np.linspace(0, len(frames) - 1, min(frames_per_video, len(frames))).round().astype(int))
        px = np.asarray(frames[pick], dtype=np.float64).reshape(-1, 3) / 255.0
        total += px.sum(0)
        total_sq += (px * px).sum(0)
        count += px.shape[0]
    if count == 0:
        raise DataError("channel_stats: every selected video is empty; re-run darkaction prepare")
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean * mean, 1e-12))
    return mean.tolist(), std.tolist()


def clip_affine(
    in_hw: tuple[int, int],
    out_hw: tuple[int, int],
    rng: np.random.Generator | None,
    train: bool,
    hflip: float = 0.0,
    rotation: float = 0.0,
    translation: float = 0.0,
    crop_scale: Sequence[float] = (),
) -> np.ndarray:
    """The 2x3 forward matrix (input pixel -> output pixel) of one clip's crop, flip, rotation and translation.

    Pixel coordinates are pixel centres (OpenCV's convention). With `train=False` only the centre crop / resize.
    `crop_scale` = (low, high), training only: a window whose side is s ~ U[low, high] times that of the largest
    window of the output's shape inside the frame, at a random position, resized to the output (multi-scale crop).
    """
    H, W = in_hw
    oh, ow = out_hw
    if train and rng is not None and len(crop_scale) == 2:
        s = float(rng.uniform(*crop_scale)) * min(H / oh, W / ow)  # window = s x the output's size, in input pixels
        wh, ww = s * oh, s * ow
        y0 = float(rng.uniform(0.0, H - wh)) if H > wh else (H - wh) / 2.0
        x0 = float(rng.uniform(0.0, W - ww)) if W > ww else (W - ww) / 2.0
        r = 1.0 / s
        # out + 1/2 = r (in + 1/2 - corner): pixel centres map to pixel centres across the resize
        m = np.array([[r, 0.0, r * (0.5 - x0) - 0.5], [0.0, r, r * (0.5 - y0) - 0.5], [0.0, 0.0, 1.0]])
        return _jitter(m, out_hw, rng, hflip, rotation, translation)
    scale = 1.0 if (H >= oh and W >= ow) else max(oh / H, ow / W)
    sh, sw = H * scale, W * scale  # size after scaling; at least the output size in both axes
    if train and rng is not None:
        y0 = float(rng.uniform(0.0, sh - oh)) if sh > oh else 0.0
        x0 = float(rng.uniform(0.0, sw - ow)) if sw > ow else 0.0
        if y0 or x0:  # crop offsets on the pixel grid keep a pure crop free of interpolation blur
            y0, x0 = float(math.floor(y0)), float(math.floor(x0))
    else:
        y0, x0 = (sh - oh) / 2.0, (sw - ow) / 2.0
    m = np.array([[scale, 0.0, -x0], [0.0, scale, -y0], [0.0, 0.0, 1.0]])
    if train and rng is not None:
        return _jitter(m, out_hw, rng, hflip, rotation, translation)
    return m[:2]


def _jitter(m: np.ndarray, out_hw: tuple[int, int], rng: np.random.Generator, hflip: float, rotation: float,
            translation: float) -> np.ndarray:  # fmt: skip
    """A crop matrix (3x3) followed by the training flip, rotation and translation -> 2x3."""
    oh, ow = out_hw
    cx, cy = (ow - 1) / 2.0, (oh - 1) / 2.0
    if hflip > 0 and rng.random() < hflip:
        m = np.array([[-1.0, 0.0, ow - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) @ m
    if rotation > 0:
        rot = cv2.getRotationMatrix2D((cx, cy), float(rng.uniform(-rotation, rotation)), 1.0)
        m = np.vstack([rot, [0.0, 0.0, 1.0]]) @ m
    if translation > 0:
        tx = float(rng.uniform(-translation, translation)) * ow
        ty = float(rng.uniform(-translation, translation)) * oh
        m = np.array([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]]) @ m
    return m[:2]


def crop_scale_range(bounds: Sequence[float]) -> tuple[float, ...]:
    """`augment.scale` checked: () for off, else (low, high) with 0 < low <= high <= 1."""
    bounds = tuple(bounds or ())
    if not bounds:
        return ()
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ConfigError(
            f"augment.scale={list(bounds)!r}: give [low, high], e.g. [0.66, 1.0], or [] for off"
        ) from None
    if not 0 < lo <= hi <= 1:
        raise ConfigError(f"augment.scale={[lo, hi]}: need 0 < low <= high <= 1 (fractions of the largest window)")
    return (lo, hi)


def _is_pure_crop(m: np.ndarray) -> bool:
    lin_identity = np.allclose(m[:, :2], np.eye(2))
    return bool(lin_identity and np.allclose(m[:, 2], np.round(m[:, 2])))


def pan_matrices(m: np.ndarray, T: int, shift: float) -> np.ndarray:
    """(T,2,3): the clip's 2x3 matrix `m` followed by a sideways shift of shift * (t/(T-1) - 1/2) output pixels in
    frame t, a pan at constant speed by `shift` pixels over the clip, centred so the middle frame keeps `m`."""
    ms = np.repeat(np.asarray(m, dtype=np.float64)[None], T, axis=0)
    ms[:, 0, 2] += shift * (np.linspace(0.0, 1.0, T) - 0.5) if T > 1 else 0.0
    return ms


def warp_clip(frames: np.ndarray, m: np.ndarray, out_hw: tuple[int, int], border: float = 0.0) -> np.ndarray:
    """Apply a 2x3 matrix to every frame, or (T,2,3) matrices one per frame. (T,H,W,C) -> (T,oh,ow,C), same dtype;
    `border` fills uncovered pixels."""
    oh, ow = out_hw
    T, H, W = frames.shape[:3]
    per_frame = m.ndim == 3
    if per_frame and m.shape[0] != T:
        raise DataError(f"warp_clip: {m.shape[0]} matrices for {T} frames")
    if not per_frame and _is_pure_crop(m):
        x0, y0 = -int(round(m[0, 2])), -int(round(m[1, 2]))
        if 0 <= x0 and 0 <= y0 and x0 + ow <= W and y0 + oh <= H:
            return np.ascontiguousarray(frames[:, y0 : y0 + oh, x0 : x0 + ow])
    out = np.empty((T, oh, ow) + frames.shape[3:], dtype=frames.dtype)
    for t in range(T):
        cv2.warpAffine(
            np.ascontiguousarray(frames[t]),
            m[t] if per_frame else m,
            (ow, oh),
            dst=out[t],
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(border,) * 4,
        )
    return out


def nearest_real(blank: np.ndarray) -> np.ndarray:
    """For each of T slots, the position of the nearest non-blank slot (the earlier on a tie); needs one."""
    pos = np.flatnonzero(~np.asarray(blank, dtype=bool))
    t = np.arange(len(blank))
    right = np.clip(np.searchsorted(pos, t), 0, len(pos) - 1)
    left = np.clip(right - 1, 0, len(pos) - 1)
    return np.where(np.abs(pos[left] - t) <= np.abs(pos[right] - t), pos[left], pos[right])


def clip_statistics(frames: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std (in [0, 1], std floored at MIN_CLIP_STD) of uint8 frames (n,H,W,3): the recording's
    own statistics for `augment.normalize: clip`, taken before the geometric augmentation so its black borders do not
    enter them (evaluation has none)."""
    if len(frames) == 0:
        return torch.zeros(3), torch.ones(3)
    px = torch.from_numpy(np.ascontiguousarray(frames)).reshape(-1, 3).float().div_(255.0)
    std, mean = torch.std_mean(px, dim=0, correction=0)
    return mean, std.clamp_min(MIN_CLIP_STD)


class ClipTransform:
    """uint8 frames (T,H,W,3) + blank mask (T,) -> float32 clip (C,T,h,w), C = 3 (RGB) or 5 (RGB + flow dx, dy).

    The same crop / flip / rotation / translation for every frame (drawn once from `rng`); none when `train=False`
    (centre crop only). See the module docstring for blanks, normalisation and flow.
    """

    def __init__(
        self,
        augment: Any,
        train: bool,
        blank: str = "black",
        stats: tuple[Sequence[float], Sequence[float]] | None = None,
    ) -> None:
        if blank not in BLANK_MODES:
            raise ConfigError(f"unknown sampling.blank '{blank}'; choose one of: {', '.join(BLANK_MODES)}")
        for name in ("hflip", "rotation", "translation", "pan"):
            if getattr(augment, name) < 0:
                raise ConfigError(f"augment.{name} must be >= 0, got {getattr(augment, name)}")
        if augment.height < 1 or augment.width < 1:
            raise ConfigError(f"augment.height/width must be positive, got {augment.height}x{augment.width}")
        self.crop_scale = crop_scale_range(augment.scale)
        self.augment = augment
        self.train = bool(train)
        self.blank = blank
        self.out_hw = (int(augment.height), int(augment.width))
        mean, std = resolve_stats(augment, stats)
        self.per_clip = augment.normalize == "clip" and not (augment.mean or augment.std)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1, 1)
        self._scale = 1.0 / (255.0 * self.std)
        self._shift = -self.mean / self.std

    def matrix(self, in_hw: tuple[int, int], rng: np.random.Generator | None) -> np.ndarray:
        """The clip's 2x3 affine matrix (input -> output pixels); draws from `rng` in training only."""
        a = self.augment
        return clip_affine(in_hw, self.out_hw, rng, self.train, a.hflip, a.rotation, a.translation, self.crop_scale)

    def __call__(
        self,
        frames: np.ndarray,
        blank: np.ndarray | None = None,
        rng: np.random.Generator | None = None,
        flow: np.ndarray | None = None,
    ) -> torch.Tensor:
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise DataError(f"ClipTransform expects uint8 frames of shape (T,H,W,3), got {frames.dtype} {frames.shape}")
        T = frames.shape[0]
        blank = np.zeros(T, dtype=bool) if blank is None else np.asarray(blank, dtype=bool)
        if blank.shape != (T,):
            raise DataError(f"blank mask has shape {blank.shape}, expected ({T},) for {T} frames")
        if self.train and rng is None:
            raise ValueError("ClipTransform(train=True) needs a numpy Generator for its random augmentation")
        m = self.matrix(frames.shape[1:3], rng)
        if self.train and self.augment.pan > 0:  # drawn after the clip's matrix: pan 0 keeps every earlier draw
            if flow is not None:
                raise ConfigError("augment.pan does not support optical-flow input (model.in_channels 5); set it to 0")
            m = pan_matrices(m, T, float(rng.uniform(-self.augment.pan, self.augment.pan)) * self.out_hw[1])
        real = ~blank

        oh, ow = self.out_hw
        if real.all():
            rgb = warp_clip(frames, m, self.out_hw, border=0.0)
        else:
            rgb = np.zeros((T, oh, ow, 3), dtype=np.uint8)  # blanks stay black (0) before normalisation
            if real.any():
                rgb[real] = warp_clip(frames[real], m[real] if m.ndim == 3 else m, self.out_hw, border=0.0)
                if self.blank == "hold":  # the warped real frames gathered; flow below keeps blanks still
                    rgb = rgb[nearest_real(blank)]
        # (T,h,w,3) uint8 -> (3,T,h,w) float: reorder while still uint8 (4x less memory traffic than float),
        # then x/255 and (x - mean)/std fused into one multiply-add: x * (1/(255 std)) - mean/std
        clip = torch.from_numpy(rgb).permute(3, 0, 1, 2).contiguous().float()
        scale, shift = self._scale, self._shift
        if self.per_clip:  # the same multiply-add with this clip's own statistics
            mean, std = clip_statistics(frames if real.all() else frames[real])
            scale, shift = (1.0 / (255.0 * std)).view(3, 1, 1, 1), (-mean / std).view(3, 1, 1, 1)
        clip.mul_(scale).add_(shift)
        if self.blank == "zero" and blank.any():
            clip[:, torch.from_numpy(blank)] = 0.0
        if flow is None:
            return clip.contiguous()
        return torch.cat([clip, self._flow(flow, real, m)], dim=0).contiguous()

    def _flow(self, flow: np.ndarray, real: np.ndarray, m: np.ndarray) -> torch.Tensor:
        """Encoded flow (T,H,W,3) uint8 -> (2,T,h,w) float32 following the clip's geometry."""
        flow = np.asarray(flow)
        if flow.ndim != 4 or flow.shape[-1] != 3 or flow.shape[0] != real.shape[0]:
            raise DataError(
                f"flow frames must be encoded (T,H,W,3) uint8 matching the {real.shape[0]} RGB frames, got {flow.shape}"
            )
        oh, ow = self.out_hw
        out = np.zeros((real.shape[0], oh, ow, 2), dtype=np.float32)
        if real.any():
            vec = warp_clip(decode_flow(flow[real]), m, self.out_hw, border=0.0)  # (n,h,w,2) pixels
            # displacements transform by the linear part only: flip negates dx, rotation rotates, scale scales
            out[real] = vec @ m[:, :2].T.astype(np.float32)
        return torch.from_numpy(out).permute(3, 0, 1, 2).div_(FLOW_DIVISOR)
