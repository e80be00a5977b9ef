"""Actor-centred crops (`cache.crop: actor`): the window follows a moving figure, stays put on noise, is black outside
the frame; the cache settings and key change only when it is on; `prepare` and the Recognizer crop alike."""

import av
import numpy as np
import pytest
import torch
from test_recognizer import _encode

from darkaction.config import load_config
from darkaction.data.actor import (
    TRACKER_VERSION,
    actor_crop,
    actor_track,
    check_crop_config,
    crop_to_actor,
    source_size,
)
from darkaction.data.cache import FrameCache, cache_key, resize_settings
from darkaction.data.prepare import frames_dir, prepare
from darkaction.errors import ConfigError, DataError
from darkaction.inference.recognizer import Recognizer


def walking_square(n=40, h=60, w=80, noise=3.0, level=20, seed=0):
    """A static textured scene with a bright 10x16 'person' crossing it left to right, plus camera noise."""
    rng = np.random.default_rng(seed)
    scene = (level + 10 * rng.random((h, w, 3))).astype(np.float32)
    xs = np.linspace(8, w - 9, n)
    frames = np.empty((n, h, w, 3), np.uint8)
    for t, x in enumerate(xs):
        f = scene.copy()
        f[30:46, int(x) - 5 : int(x) + 5] = level + 60
        frames[t] = np.clip(f + noise * rng.standard_normal(f.shape), 0, 255).astype(np.uint8)
    return frames, xs


def test_the_track_follows_a_moving_figure_sideways_only():
    frames, xs = walking_square()
    track = actor_track(frames)
    assert track.shape == (len(frames), 2)
    assert np.allclose(track[:, 0], (frames.shape[1] - 1) / 2)  # the window never moves up or down
    inner = slice(5, -5)  # the ends of the smoothed track lag a little
    assert np.abs(track[inner, 1] - xs[inner]).max() < 4.0


def test_the_crop_keeps_the_figure_centred_and_is_black_outside_the_frame():
    frames, xs = walking_square()
    crops = actor_crop(frames, (40, 40))
    assert crops.shape == (len(frames), 40, 40, 3) and crops.dtype == np.uint8
    for t in (10, 20, 30):
        bright = np.nonzero(crops[t].mean(-1) > 60)[1]
        assert abs(bright.mean() - 19.5) < 4.0  # the figure near the window's middle column wherever it is
    assert crops[0, :, :5].max() == 0  # at the left edge of the picture the window reaches past it: black there
    with pytest.raises(ValueError, match="does not fit"):
        actor_crop(frames, (70, 40))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("kind", ["gaussian", "poisson"])
def test_on_noise_alone_the_window_stays_in_the_middle(kind, seed):
    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        frames = np.clip(6 + 2 * rng.standard_normal((30, 60, 80, 3)), 0, 255).astype(np.uint8)
    else:  # a nearly black camera: a few photons a pixel, quantised to 8 bits
        frames = np.clip(rng.poisson(0.3 + 1.2 * (seed % 2), (60, 120, 120, 3)), 0, 255).astype(np.uint8)
    track = actor_track(frames)
    assert np.allclose(track, [(frames.shape[1] - 1) / 2, (frames.shape[2] - 1) / 2])


def test_source_size_makes_the_window_the_cache_size():
    assert source_size((96, 96), 0.8) == (120, 120)
    assert source_size((96, 96), 1.0) == (96, 96)
    with pytest.raises(ValueError):
        source_size((96, 96), 0.0)


def _cfg(*extra):
    return load_config(None, ["cache.height=24", "cache.width=32", *extra])


def test_a_cache_cut_by_an_older_tracker_is_refused(tmp_path):
    """The folder name does not change with the tracker; its settings do, so stale crops are never reused."""
    settings = resize_settings(_cfg("cache.crop=actor").cache)
    assert settings["tracker"] == TRACKER_VERSION
    FrameCache(tmp_path / "c", settings={**settings, "tracker": TRACKER_VERSION - 1})
    with pytest.raises(DataError, match="delete the folder"):
        FrameCache(tmp_path / "c", settings=settings)
    FrameCache(tmp_path / "c2", settings=settings)
    FrameCache(tmp_path / "c2", settings=resize_settings(_cfg("cache.crop=actor").cache))  # the same version: reused


def test_cache_settings_and_key_change_only_when_the_crop_is_on():
    plain = _cfg()
    assert "crop" not in resize_settings(plain.cache) and cache_key(plain.cache) == "fixed_24x32"
    on = _cfg("cache.crop=actor", "cache.crop_scale=0.75")
    assert resize_settings(on.cache)["crop_scale"] == 0.75
    assert cache_key(on.cache) == "fixed_24x32_actor0.75"
    with pytest.raises(ConfigError, match="resize: fixed"):
        resize_settings(_cfg("cache.crop=actor", "cache.resize=short_side").cache)
    with pytest.raises(ConfigError, match="crop_scale"):
        resize_settings(_cfg("cache.crop=actor", "cache.crop_scale=0.1").cache)
    with pytest.raises(ConfigError, match="enhance.at"):
        check_crop_config(_cfg("cache.crop=actor", "enhance.at=source"))
    with pytest.raises(ConfigError, match="darken"):
        check_crop_config(_cfg("cache.crop=actor", "augment.darken.copies=1"))


def test_prepare_and_the_recognizer_crop_a_video_alike(tmp_path):
    root = tmp_path / "data"
    rows = ["VideoID,Video,ClassID"]
    for i, cls in enumerate(["Run", "Walk"]):
        rel = f"{cls}/{cls}_1_1.mp4"
        (root / "videos" / cls).mkdir(parents=True, exist_ok=True)
        _encode(walking_square(n=30 + 5 * i, seed=i)[0], root / "videos" / rel, fmt="mp4", codec="libx264")
        rows.append(f"{i},{rel},{5 if cls == 'Run' else 9}")
    (root / "train.csv").write_text("\n".join(rows) + "\n")
    (root / "test.csv").write_text(rows[0] + "\n" + rows[1] + "\n")
    cfg = load_config(
        None,
        [
            "data.source.format=synth", f"data.source.root={root}", f"data.prepared={tmp_path / 'prep'}",
            "cache.height=40", "cache.width=40", "cache.crop=actor", "cache.crop_scale=0.7", "cache.workers=1",
            "sampling.n_max=40",
        ],
    )  # fmt: skip
    prepare(cfg, progress=False)
    assert frames_dir(cfg).name == "fixed_40x40_actor0.7"
    cache = FrameCache(frames_dir(cfg), create=False)
    rec = Recognizer(cfg, ["run", "walk"], torch.nn.Identity())
    for vid in cache.ids:
        with av.open(str(cache.meta(vid)["source"])) as c:
            source = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
        cached = np.asarray(cache.frames(vid))
        assert cached.shape[1:3] == (40, 40)
        assert np.array_equal(rec.preprocess(source), cached)
        # `predict` shrinks the video chunk by chunk and crops it whole: the same frames
        shrunk = np.concatenate([rec._shrink(source[:7]), rec._shrink(source[7:])])
        assert np.array_equal(rec.preprocess(shrunk), cached)
        assert np.array_equal(crop_to_actor(source, (40, 40), 0.7), cached)
        # the brightness bands of evaluation read the whole picture's brightness, cropped or not
        assert cache.meta(vid)["mean_brightness"] == pytest.approx(rec._shrink(source).mean(), abs=1e-3)
        # `predict` (chunk by chunk) and one window over the whole video classify exactly the cached frames
        seen = []
        rec._view_probs = lambda frames, views, position=0, seen=seen: seen.append(frames) or torch.ones(1, views, 2)
        rec.predict(source, views=1, chunk=7)
        list(rec.windows(source, window=len(source) / 30.0, stride=100.0, views=1, fps=30.0))
        assert len(seen) == 2 and all(np.array_equal(f, cached) for f in seen)


def test_cropped_and_whole_frame_caches_are_enhanced_into_folders_of_their_own(tmp_path):
    from darkaction.enhancement.base import build_enhancer
    from darkaction.enhancement.run import enhanced_dir

    plain = _cfg(f"data.prepared={tmp_path}", "enhance.method=gamma")
    cropped = _cfg(f"data.prepared={tmp_path}", "enhance.method=gamma", "cache.crop=actor")
    enhancer = build_enhancer(plain)
    assert enhanced_dir(plain, enhancer).name == enhancer.fingerprint
    assert enhanced_dir(cropped, enhancer).name == f"{enhancer.fingerprint}_actor0.8"
