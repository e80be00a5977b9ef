"""Optical flow: the uint8 encoding round trip and Farneback flow of moving patterns."""

import os

import numpy as np
import pytest

from darkaction.data.flow import FLOW_SCALE, decode_flow, encode_flow, farneback_flow


def _textured(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth random texture (H, W) in 0..255: Farneback needs gradients everywhere, not a flat image."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, (h, w)).astype(np.float32)
    return cv2.GaussianBlur(noise, (0, 0), 2.0)


def _translating_clip(dx: int, dy: int, t: int = 4, size: int = 64) -> np.ndarray:
    """(T, size, size, 3) uint8: a texture shifted by (dx, dy) pixels per frame."""
    big = _textured(size * 2, size * 2)
    big = (big - big.min()) / (big.max() - big.min()) * 255
    frames = []
    for k in range(t):
        x0, y0 = size // 2 - k * dx, size // 2 - k * dy  # moving the window left moves the content right
        crop = big[y0 : y0 + size, x0 : x0 + size]
        frames.append(np.repeat(crop[..., None], 3, axis=2))
    return np.stack(frames).astype(np.uint8)


def test_encoding_round_trip_to_an_eighth_of_a_pixel():
    flow = np.random.default_rng(0).uniform(-15, 15, (3, 8, 8, 2)).astype(np.float32)
    back = decode_flow(encode_flow(flow))
    assert np.abs(back - flow).max() <= 0.5 / FLOW_SCALE + 1e-6


@pytest.mark.parametrize(("dx", "dy"), [(2, 0), (-3, 0), (0, 2), (1, -1)])
def test_farneback_flow_of_a_translating_pattern_points_the_right_way(dx, dy):
    clip = _translating_clip(dx, dy)
    flow = farneback_flow(clip)
    assert flow.shape == (4, 64, 64, 2) and flow.dtype == np.float32
    inner = flow[:-1, 12:-12, 12:-12]  # away from borders, where content enters and leaves
    mdx, mdy = float(np.median(inner[..., 0])), float(np.median(inner[..., 1]))
    assert mdx == pytest.approx(dx, abs=0.35)
    assert mdy == pytest.approx(dy, abs=0.35)
    np.testing.assert_array_equal(flow[-1], flow[-2])  # the last frame repeats the previous flow


def test_farneback_flow_of_a_static_clip_is_zero_and_survives_encoding():
    clip = np.repeat(_translating_clip(0, 0, t=1), 3, axis=0)
    flow = farneback_flow(clip)
    assert np.abs(flow).max() < 0.15  # Farneback leaves small residues at the image borders
    assert np.abs(np.median(flow)) < 1e-3
    assert np.abs(decode_flow(encode_flow(flow))).max() < 0.25
    assert farneback_flow(clip[:1]).shape == (1, 64, 64, 2)


def test_farneback_flow_rejects_wrong_shape():
    with pytest.raises(ValueError, match="T,H,W,3"):
        farneback_flow(np.zeros((4, 8, 8), np.uint8))


def test_flow_cache_from_prepared_frames_is_complete_and_resumable(tiny_synth, tmp_path):
    from darkaction.config import load_config
    from darkaction.data.cache import FrameCache
    from darkaction.data.prepare import prepare
    from darkaction.errors import DataError
    from darkaction.training.flow_cache import build_flow_cache, open_flow_cache

    cfg = load_config(
        None,
        [
            f"data.source.root={tiny_synth}",
            f"data.prepared={tmp_path / 'prepared'}",
            "cache.height=32",
            "cache.width=32",
            "enhance.method=identity",
        ],
    )
    prepare(cfg, progress=False)
    with pytest.raises(DataError, match="build_flow_cache"):
        open_flow_cache(cfg)
    out = build_flow_cache(cfg, workers=2, progress=False)
    assert out == tmp_path / "prepared" / "flow" / "fixed_32x32"
    raw = FrameCache(tmp_path / "prepared" / "frames" / "fixed_32x32", create=False)
    flow = open_flow_cache(cfg)
    assert flow.ids == raw.ids
    vid = raw.ids[0]
    enc = flow.frames(vid)
    assert enc.shape == raw.frames(vid).shape and enc.dtype == np.uint8
    assert np.abs(decode_flow(enc)).max() < 16  # inside the encodable range; the figures move slowly
    # Resumable: a removed entry is recomputed, the others are kept as they are.
    before = (out / f"{raw.ids[1]}.npy").stat().st_mtime_ns
    flow.remove(vid)
    build_flow_cache(cfg, workers=1, progress=False)
    assert vid in FrameCache(out) and (out / f"{raw.ids[1]}.npy").stat().st_mtime_ns == before
    # Current: re-enhanced / re-prepared source frames make their flow stale, and only that entry is recomputed.
    src = tmp_path / "prepared" / "frames" / "fixed_32x32" / f"{raw.ids[2]}.npy"
    os.utime(src, ns=(src.stat().st_atime_ns, src.stat().st_mtime_ns + 10**9))
    stale_before = (out / f"{raw.ids[2]}.npy").stat().st_mtime_ns
    build_flow_cache(cfg, workers=1, progress=False)
    assert (out / f"{raw.ids[2]}.npy").stat().st_mtime_ns != stale_before
    assert (out / f"{raw.ids[1]}.npy").stat().st_mtime_ns == before
