"""Decoding: generated videos (exact frame counts, RGB order, resize modes), frame folders, broken files."""

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from darkaction.data.video import decode, output_size
from darkaction.errors import DataError


def write_video(path: Path, n_frames: int, width: int = 64, height: int = 48, fps: int = 30, seed: int = 0) -> Path:
    """Write a small test video with PyAV (H.264 for .mp4, MPEG-4 part 2 otherwise): a moving dark gradient."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = rng.integers(5, 40)
    codec = "libx264" if path.suffix == ".mp4" else "mpeg4"
    with av.open(str(path), "w") as out:
        s = out.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        yy, xx = np.mgrid[0:height, 0:width]
        for t in range(n_frames):
            img = np.zeros((height, width, 3), np.uint8)
            img[..., 0] = (base + (xx + 2 * t) % 32).astype(np.uint8)
            img[..., 1] = (base + yy % 16).astype(np.uint8)
            img[..., 2] = base
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)
    return path


def test_output_size_modes():
    assert output_size(240, 320, "fixed", 112, 112, 128) == (112, 112)
    assert output_size(240, 320, "short_side", 112, 112, 128) == (128, 171)
    assert output_size(320, 240, "short_side", 112, 112, 128) == (171, 128)


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_decode_exact_frame_count_and_size(tmp_path, suffix):
    p = write_video(tmp_path / f"v{suffix}", 37, 64, 48)
    frames, info = decode(p, resize="fixed", height=32, width=40)
    assert frames.shape == (37, 32, 40, 3) and frames.dtype == np.uint8
    assert info["n_frames"] == 37 and (info["src_height"], info["src_width"]) == (48, 64)
    assert info["fps"] == pytest.approx(30.0)
    assert info["warnings"] == []
    assert 5 <= info["mean_brightness"] <= 80


def test_decode_short_side_keeps_aspect(tmp_path):
    p = write_video(tmp_path / "v.mp4", 5, 96, 48)
    frames, _ = decode(p, resize="short_side", short_side=24)
    assert frames.shape == (5, 24, 48, 3)


def test_decode_is_rgb(tmp_path):
    """The encoder got red > blue; RGB output must keep that order (a BGR mix-up would swap them)."""
    p = tmp_path / "red.mp4"
    with av.open(str(p), "w") as out:
        s = out.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
        img = np.zeros((32, 32, 3), np.uint8)
        img[..., 0] = 200
        img[..., 2] = 20
        for _ in range(3):
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)
    frames, info = decode(p, resize="none")
    assert frames[..., 0].mean() > 150 and frames[..., 2].mean() < 60
    assert info["channel_mean"][0] > info["channel_mean"][2]


def test_decode_frame_folder(tmp_path):
    d = tmp_path / "clip"
    d.mkdir()
    for i in range(1, 8):
        img = np.full((30, 40, 3), 10 * i, np.uint8)
        img[..., 2] = 0  # BGR on disk: blue channel 0 -> RGB last channel 0
        cv2.imwrite(str(d / f"img_{i:05d}.jpg"), img)
    frames, info = decode(d, resize="fixed", height=15, width=20)
    assert frames.shape == (7, 15, 20, 3)
    assert frames[..., 0].mean() < 5  # red in RGB was blue (0) in the BGR file
    assert frames[-1, ..., 1].mean() > frames[0, ..., 1].mean()
    assert info["n_frames"] == 7


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_bytes(np.random.default_rng(0).bytes(20000)), "not a readable video"),
        (lambda p: p.write_text("this is not a video\n" * 50), "not a readable video"),
    ],
)
def test_broken_files_raise_data_error_naming_the_file(tmp_path, make, reason):
    p = tmp_path / "bad.mp4"
    make(p)
    with pytest.raises(DataError) as e:
        decode(p)
    assert str(p) in str(e.value) and reason in str(e.value)


@pytest.mark.parametrize("suffix, keep", [(".avi", 0.8), (".mkv", 0.5)])
def test_truncated_video_keeps_good_frames(tmp_path, suffix, keep):
    """A file cut short still yields its good frames (fewer than were written); an AVI's header count flags it."""
    p = write_video(tmp_path / f"v{suffix}", 60, 64, 48)
    data = p.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: int(len(data) * keep)])
    frames, info = decode(cut)
    assert 0 < frames.shape[0] < 60
    if suffix == ".avi":
        assert info["warnings"] and "truncated" in info["warnings"][0]


def test_truncated_mp4_header_only_is_data_error(tmp_path):
    p = write_video(tmp_path / "v.mp4", 30)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(p.read_bytes()[:200])
    with pytest.raises(DataError, match="cut.mp4"):
        decode(cut)


def test_frame_buffer_joins_blocks_in_order():
    from darkaction.data.video import FrameBuffer

    frames = np.random.default_rng(0).integers(0, 255, (11, 4, 5, 3), dtype=np.uint8)
    buf = FrameBuffer(block=4)
    for f in frames[:7]:
        buf.append(f)
    for f in frames[7:]:
        buf.slot(f.shape)[...] = f
    assert len(buf) == 11
    np.testing.assert_array_equal(buf.array(), frames)
    one = FrameBuffer(block=4)
    one.append(frames[0])
    np.testing.assert_array_equal(one.array(), frames[:1])
