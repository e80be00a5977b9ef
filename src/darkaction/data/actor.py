"""Actor-centred crops (`cache.crop: actor`; not in the paper): every frame cut to a window that follows the moving
person, so that where they are, and how far they travel across the picture, no longer shows in the cached frames.

    inter = source_size((96, 96), 0.8)               # (120, 120): resize the video to this first ...
    crops = actor_crop(frames_at_inter, (96, 96))     # ... then a 96x96 window follows the actor: uint8 (N,96,96,3)

A static camera is assumed: the background is the per-pixel median of the clip (of at most `BACKGROUND_FRAMES` frames
spread over it), the actor is where a frame differs from it by more than that pixel's own noise, and the window
centres on the densest part of that difference, smoothed over time. Frames that do not place the actor steadily
(before anyone moves, or a clip too dark to show them) take the place of their neighbours, or the middle of the
picture when no frame shows anyone. Parts of a window outside the frame are black, so the actor stays centred at
the picture's edges.
"""

from __future__ import annotations

import cv2
import numpy as np

BACKGROUND_FRAMES = 255  # the median background of a long video from this many frames spread over it
NOISE_K = 3.0  # a pixel is the actor's when it differs from the background by NOISE_K robust sigmas of its own
PEAK_RATIO = 3.0  # a frame places the actor when the difference near its peak is this many times the frame's average
MIN_RUN = 5  # ... and its peak stays steady for this many frames in a row
SMOOTH_FRAMES = 6.0  # Gaussian sigma of the track over time, in frames (0.2 s at 30 fps)
# bump when the tracker's placements change: a cache cut by an older tracker is then refused, never reused
# (2: per-pixel noise threshold and the MIN_RUN steadiness check)
TRACKER_VERSION = 2


def source_size(size: tuple[int, int], scale: float) -> tuple[int, int]:
    """The size a frame is resized to before cropping, so that a window of `scale` of its height and width is `size`."""
    if not 0.0 < scale <= 1.0:
        raise ValueError(f"crop scale must be in (0, 1], got {scale}")
    return max(size[0], round(size[0] / scale)), max(size[1], round(size[1] / scale))


def _gray(frames: np.ndarray) -> np.ndarray:
    """(N,H,W,3) uint8 RGB -> (N,H,W) float32 luminance, blurred a little so the difference below is not pixel noise."""
    sigma = max(1.0, min(frames.shape[1:3]) / 60.0)
    out = np.empty(frames.shape[:3], np.float32)
    for i, f in enumerate(frames):
        g = cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32)
        out[i] = cv2.GaussianBlur(g, (0, 0), sigma)
    return out


def actor_track(frames: np.ndarray) -> np.ndarray:
    """Where the actor is in each frame: (N, 2) float (row, column) of the window centre, in pixels of `frames`."""
    n, h, w = frames.shape[:3]
    centre = np.array([(h - 1) / 2.0, (w - 1) / 2.0])
    if n < 2:
        return np.tile(centre, (n, 1))
    gray = _gray(frames)
    pick = np.unique(np.linspace(0, n - 1, min(n, BACKGROUND_FRAMES)).round().astype(int))
    background = np.median(gray[pick], axis=0)
    # the clip's own noise, pixel by pixel (dark and bright parts of a picture, and its blurred edges, differ), from
    # the same frames spread over it: a robust spread over time, above the clip's typical difference
    sample = np.abs(gray[pick] - background)
    threshold = float(np.median(sample)) + NOISE_K * 1.4826 * np.median(sample, axis=0)
    del sample
    # the actor is the densest place of the difference, not its mean: a mean over the whole frame is pulled to the
    # middle by noise and codec blocks spread over the picture. Each frame's peak of the difference blurred to about
    # a person's width, then the centroid of the difference near that peak (one frame's difference at a time: a long
    # video needs no clip-sized float arrays beyond `gray`)
    blur = max(2.0, min(h, w) / 12.0)
    near = int(round(2 * blur))
    mass, expected, column = np.zeros(n), np.zeros(n), np.zeros(n)
    peaks = np.empty((n, 2))
    for i in range(n):
        weight = np.clip(np.abs(gray[i] - background) - threshold, 0.0, None)
        dense = cv2.GaussianBlur(weight, (0, 0), blur, borderType=cv2.BORDER_CONSTANT)  # no edge mirrored into a peak
        r, c = np.unravel_index(int(np.argmax(dense)), dense.shape)
        peaks[i] = r, c
        r0, r1, c0, c1 = max(r - near, 0), min(r + near + 1, h), max(c - near, 0), min(c + near + 1, w)
        patch = weight[r0:r1, c0:c1]
        mass[i] = patch.sum()
        expected[i] = weight.mean() * (2 * near + 1) ** 2  # what the frame's average difference puts in a patch
        if mass[i] > 0:
            column[i] = (patch.sum(axis=0) * np.arange(c0, c1)).sum() / mass[i]
    # a frame places the actor when the difference near its peak stands out from the frame's average difference and
    # its peak stays near the peaks of the frames around it for MIN_RUN frames in a row (a person moves little in a
    # frame's time; a noise peak may stand out in a frame or two, not in a run); in a clip too dark to show anyone
    # no run forms, and the window stays in the middle
    placed = (mass > 0) & (mass >= PEAK_RATIO * expected)
    step = np.abs(np.diff(peaks, axis=0)).max(axis=1) <= near
    placed &= _in_runs(placed & (np.r_[False, step] | np.r_[step, False]), MIN_RUN)
    track = np.tile(centre, (n, 1))  # people travel along the floor: the window follows them sideways only
    if placed.any():
        t = np.arange(n)
        column = np.interp(t, t[placed], column[placed]).reshape(-1, 1)
        # smoothed over time (the ends reflected rather than padded with zeros)
        track[:, 1] = cv2.GaussianBlur(column, (1, 0), SMOOTH_FRAMES, borderType=cv2.BORDER_REFLECT)[:, 0]
    return track


def _in_runs(flags: np.ndarray, k: int) -> np.ndarray:
    """The True entries of `flags` that belong to a run of at least `k` consecutive True ones."""
    edges = np.flatnonzero(np.diff(np.r_[0, flags.astype(np.int8), 0]))  # run starts and ends, alternating
    out = np.zeros(len(flags), bool)
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        out[start:end] = end - start >= k
    return out


def actor_crop(frames: np.ndarray, size: tuple[int, int], track: np.ndarray | None = None) -> np.ndarray:
    """(N,H,W,3) uint8 -> (N,h,w,3) uint8: each frame's window of `size` centred on the actor (`actor_track` unless
    given), black where it leaves the frame; its centre is kept inside the frame."""
    n, fh, fw = frames.shape[:3]
    h, w = size
    if h > fh or w > fw:
        raise ValueError(f"a {h}x{w} window does not fit {fh}x{fw} frames")
    track = actor_track(frames) if track is None else np.asarray(track, float)
    out = np.zeros((n, h, w, 3), np.uint8)
    for i in range(n):
        cy = min(max(track[i, 0], 0.0), fh - 1.0)
        cx = min(max(track[i, 1], 0.0), fw - 1.0)
        top, left = int(round(cy - (h - 1) / 2.0)), int(round(cx - (w - 1) / 2.0))
        y0, y1 = max(top, 0), min(top + h, fh)
        x0, x1 = max(left, 0), min(left + w, fw)
        out[i, y0 - top : y1 - top, x0 - left : x1 - left] = frames[i, y0:y1, x0:x1]
    return out


def uses_crop(cache_cfg) -> bool:
    """Whether a `CacheConfig` asks for actor-centred windows (`cache.crop: actor`)."""
    return getattr(cache_cfg, "crop", "none") == "actor"


def crop_tag(cache_cfg) -> str:
    """What names a cropped cache's folders (`_actor0.8`; '' without the crop): the raw cache key and the enhanced
    folder both carry it."""
    return f"_actor{float(cache_cfg.crop_scale):g}" if uses_crop(cache_cfg) else ""


def shrink(frames: np.ndarray, size: tuple[int, int], scale: float) -> np.ndarray:
    """Frames uint8 (N,H,W,3) at any size -> resized to `source_size` (INTER_AREA, as `prepare` resizes), the size a
    window of `size` is cut from."""
    from darkaction.data.video import resize_frame

    inter = source_size(size, scale)
    frames = np.asarray(frames, np.uint8)
    return frames if frames.shape[1:3] == inter else np.stack([resize_frame(f, inter) for f in frames])


def crop_to_actor(frames: np.ndarray, size: tuple[int, int], scale: float) -> np.ndarray:
    """Frames uint8 (N,H,W,3) at any size -> the actor's windows (N,h,w,3): `shrink`, then `actor_crop`."""
    return actor_crop(shrink(frames, size, scale), size)


def decode_cropped(path, size: tuple[int, int], scale: float) -> tuple[np.ndarray, dict]:
    """`video.decode` for an actor-cropped cache: decoded straight to `source_size`, then cropped. `info`'s channel
    moments (dataset normalisation) are the windows'; its mean brightness stays the whole picture's, so evaluation's
    brightness bands put a video in the same band cropped or not."""
    from darkaction.data.video import channel_moments, decode

    inter = source_size(size, scale)
    frames, info = decode(path, resize="fixed", height=inter[0], width=inter[1])
    frames = actor_crop(frames, size)
    mean, sqmean = channel_moments(frames)
    info.update(channel_mean=mean.tolist(), channel_sqmean=sqmean.tolist())
    return frames, info


def check_crop_config(cfg) -> None:
    """Settings an actor-cropped cache cannot work with, refused before any work is done."""
    from darkaction.errors import ConfigError

    if not uses_crop(cfg.cache):
        return
    if cfg.enhance.at == "source":
        raise ConfigError(
            "cache.crop: actor places its window on the raw frames; enhance.at: source would enhance frames that are "
            "cropped elsewhere: use enhance.at: cache with it"
        )
    if cfg.augment.darken.copies:
        raise ConfigError("augment.darken makes its dark copies uncropped: use cache.crop: none with it")
