"""Low-light simulation: a well-lit video as a camera would have recorded it in near darkness.

    dark = darken(frames, level=6.0, photons=20000, read_noise=5e-5, crf=24, seed=(0, 17, 1))  # uint8 (N,H,W,3)
    for frame in darken_iter(frames, ...): ...                                   # the same, one frame at a time
    p = draw_darkening(cfg.augment.darken, rng)                                  # one copy's camera

Used by `prepare` to add *dark copies* of training videos to the frame cache (`augment.darken`): a model trained
on a few dozen nearly black clips cannot learn what a person looks like at 5 / 255, but every well-lit training
video can show it. The copy is made where a camera makes it, at the source resolution and before the video codec:
the frames go to linear light (sRGB taken as gamma 2.2), are scaled so that the video's mean 8-bit level would be
`level` without noise, get Poisson shot noise (`photons` photo-electrons at full scale) and Gaussian read noise
(`read_noise`, linear full-scale units), go back to gamma-encoded 8 bits and through an H.264 round trip at `crf`,
which at these levels turns the noise and the figure into the blocks and colour casts of real dark footage. The
copy's measured mean is usually a level or two below `level` (the concave gamma curve over the noise, and the
codec's colour conversion); a video already darker than `level` is not scaled up, though its noise can lift a
near-black frame by a level or two. The draw ranges are generic camera ranges, not any one dataset's
(docs/design.md).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from darkaction.errors import ConfigError, DataError

GAMMA = 2.2  # sRGB is close to a pure 2.2 power; the simulation needs its shape, not the exact piecewise curve
COPY_MARK = "~dark"  # a dark copy's cache id: <video_id>~dark<k>, k = 1..copies ("~" is in no index's ids)
SIM_VERSION = 1  # stored with every copy's camera: a change to the simulation itself remakes the copies


def dark_copy_id(video_id: str, k: int) -> str:
    """The frame-cache id of dark copy k (1-based) of a training video."""
    return f"{video_id}{COPY_MARK}{int(k)}"


def is_dark_copy(cache_id: str) -> bool:
    return COPY_MARK in cache_id


def darken_iter(
    frames: np.ndarray, level: float, photons: float, read_noise: float, crf: int, seed: Sequence[int] | int
) -> Iterator[np.ndarray]:
    """uint8 (N,H,W,3) RGB -> the N frames of the dark recording, uint8 (H,W,3) each, one at a time: besides the
    source, only the encoded stream and one frame are held."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise DataError(f"darken needs uint8 frames (N,H,W,3) with N >= 1, got {frames.dtype} {frames.shape}")
    if not (0 < level < 256 and 0 < photons < math.inf and 0 <= read_noise < 1 and 0 <= crf <= 51):
        raise ConfigError(f"darken: level {level}, photons {photons}, read_noise {read_noise}, crf {crf} out of range")
    rng = np.random.default_rng(seed)
    # gamma-space scaling commutes with the power law: (s x)^(1/g) = s^(1/g) x^(1/g), so scaling linear light by
    # (level / mean)^g moves the gamma-encoded mean to `level` exactly (before noise and clipping)
    gain = min(1.0, level / max(float(frames.mean()), 1e-6)) ** GAMMA
    lut = (np.arange(256, dtype=np.float32) / 255.0) ** GAMMA * np.float32(gain)
    q, sigma, inv_gamma = np.float32(photons), np.float32(read_noise), np.float32(1 / GAMMA)

    def exposed() -> Iterator[np.ndarray]:
        for f in frames:
            electrons = rng.poisson(lut[f] * q).astype(np.float32)
            lin = electrons / q + rng.standard_normal(f.shape, dtype=np.float32) * sigma
            np.clip(lin, 0.0, 1.0, out=lin)
            yield np.rint(lin**inv_gamma * 255.0).astype(np.uint8)

    return h264_roundtrip(exposed(), crf, len(frames))


def darken(
    frames: np.ndarray, level: float, photons: float, read_noise: float, crf: int, seed: Sequence[int] | int
) -> np.ndarray:
    """`darken_iter` as one uint8 (N,H,W,3) array."""
    return np.stack(list(darken_iter(frames, level, photons, read_noise, crf, seed)))


def h264_roundtrip(frames: Iterable[np.ndarray], crf: int, n: int) -> Iterator[np.ndarray]:
    """Encode `n` uint8 (H,W,3) RGB frames as H.264 (yuv420p, CRF `crf`, one encoder thread: prepare runs one
    process per core) in memory, then yield them decoded, one at a time. Odd sizes are padded by edge replication
    for the encoder (4:2:0 needs even sides) and cropped back."""
    import av

    buf = io.BytesIO()
    h = w = 0
    with av.open(buf, "w", format="mp4") as container:
        stream = None
        for f in frames:
            if stream is None:
                h, w = f.shape[:2]
                stream = container.add_stream("libx264", rate=30)
                stream.width, stream.height, stream.pix_fmt = w + w % 2, h + h % 2, "yuv420p"
                stream.options = {"crf": str(int(crf)), "preset": "veryfast", "threads": "1"}
            if h % 2 or w % 2:
                f = np.pad(f, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                container.mux(packet)
        if stream is None:
            raise DataError("H.264 round trip of no frames")
        for packet in stream.encode():
            container.mux(packet)
    buf.seek(0)
    got = 0
    with av.open(buf) as container:
        for frame in container.decode(video=0):
            got += 1
            yield frame.to_ndarray(format="rgb24")[:h, :w]
    if got != n:
        raise DataError(f"H.264 round trip returned {got} frames for {n}")


def _log_uniform(rng: np.random.Generator, bounds: Sequence[float]) -> float:
    lo, hi = float(bounds[0]), float(bounds[1])
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def check_darken(d: Any) -> None:
    """Refuse `augment.darken` settings that `draw_darkening` cannot draw from, naming the key."""
    if int(d.copies) != d.copies or d.copies < 0:
        raise ConfigError(f"augment.darken.copies={d.copies}: give 0 (off) or a number of dark copies per video")
    if not 0.0 <= float(d.p) <= 1.0:
        raise ConfigError(f"augment.darken.p={d.p}: give the share of training draws in [0, 1]")
    if int(d.seed) != d.seed or d.seed < 0:
        raise ConfigError(f"augment.darken.seed={d.seed}: give a non-negative integer")
    for key, lo_min, hi_max in (("level", 0, 255), ("photons", 0, 1e12), ("read_noise", -1e-12, 0.5),
                                ("crf", -1e-12, 51)):  # fmt: skip
        b = getattr(d, key)
        if len(b) != 2 or not lo_min < float(b[0]) <= float(b[1]) <= hi_max:
            raise ConfigError(f"augment.darken.{key}={list(b)}: give [low, high], {lo_min} < low <= high <= {hi_max}")


def check_darken_config(cfg: Any) -> None:
    """`check_darken` and the settings dark copies cannot work with, before any work is done."""
    check_darken(cfg.augment.darken)
    if not cfg.augment.darken.copies:
        return
    if cfg.enhance.at == "source":
        raise ConfigError(
            "enhance.at: source decodes the well-lit source, not its dark copies: use enhance.at: cache with "
            "augment.darken.copies > 0"
        )
    if cfg.model.in_channels == 5:
        raise ConfigError("augment.darken makes no optical flow for its dark copies: use model.in_channels=3 with it")


def draw_darkening(d: Any, rng: np.random.Generator) -> dict:
    """One dark copy's camera: level and photons log-uniform (they span decades), read noise uniform, CRF an
    integer uniform, all within `augment.darken`'s bounds; `sim` is the simulation's version."""
    return {
        "level": round(_log_uniform(rng, d.level), 4),
        "photons": round(_log_uniform(rng, d.photons), 1),
        "read_noise": round(float(rng.uniform(*d.read_noise)), 7),
        "crf": int(rng.integers(int(d.crf[0]), int(d.crf[1]) + 1)),
        "sim": SIM_VERSION,
    }
