"""Dark copies of training videos (`augment.darken`, data/lowlight.py): the simulation itself, the copies that
`prepare` and `enhance` add to the caches, and the training draws that read them."""

import json
from pathlib import Path

import numpy as np
import pytest
from test_prepare import cfg_for, make_dataset

from darkaction.config import DarkenConfig
from darkaction.data.cache import FrameCache
from darkaction.data.dataset import ClipDataset
from darkaction.data.lowlight import (
    check_darken,
    check_darken_config,
    dark_copy_id,
    darken,
    darken_iter,
    draw_darkening,
    h264_roundtrip,
)
from darkaction.data.prepare import cache_entries, frames_dir, open_prepared, prepare
from darkaction.enhancement.run import enhance, training_cache
from darkaction.errors import ConfigError, DataError


def scene(n: int = 12, h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    """A well-lit moving scene: a smooth gradient with a bright square sliding across it."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = 60 + 80 * x / w + 20 * y / h
    frames = np.repeat(base[None, :, :, None], n, 0).repeat(3, -1)
    for t in range(n):
        frames[t, 16:32, 4 + 3 * t : 20 + 3 * t] = 230
    return np.clip(frames + rng.normal(0, 2, frames.shape), 0, 255).astype(np.uint8)


def test_darken_reaches_the_level_and_keeps_the_shape():
    frames = scene()
    dark = darken(frames, level=6.0, photons=20000, read_noise=2e-4, crf=20, seed=[1, 2])
    assert dark.shape == frames.shape and dark.dtype == np.uint8
    assert 4.0 < dark.mean() < 8.0  # noise and clipping move it a little off the target
    assert dark.max() < 60
    # the moving square is still there, darker: the frame's brightest column band follows it
    col = dark[:, 16:32].astype(float).mean(axis=(1, 3))  # (n, w)
    assert col[0].argmax() < col[-1].argmax()


def test_darken_is_deterministic_and_seeded():
    frames = scene()
    a = darken(frames, 5.0, 5000, 5e-4, 24, seed=[0, 7, 1])
    b = darken(frames, 5.0, 5000, 5e-4, 24, seed=[0, 7, 1])
    c = darken(frames, 5.0, 5000, 5e-4, 24, seed=[0, 7, 2])
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_darken_does_not_scale_up_a_dark_video():
    frames = (scene() // 30).astype(np.uint8)  # mean about 3 / 255
    out = darken(frames, level=40.0, photons=20000, read_noise=1e-4, crf=23, seed=0)
    assert out.mean() < frames.mean() + 2.5  # the noise floor may lift it a little, the level of 40 does not


def test_more_photons_less_noise():
    flat = np.full((8, 32, 32, 3), 120, np.uint8)
    noisy = darken(flat, 8.0, 1000, 0.0, 0, seed=0).astype(float)  # crf 0: the codec keeps most of the noise
    clean = darken(flat, 8.0, 100000, 0.0, 0, seed=0).astype(float)
    assert noisy.std() > 2 * clean.std()


def test_h264_roundtrip_odd_sizes_and_frame_count():
    frames = scene(n=5, h=33, w=47)
    out = np.stack(list(h264_roundtrip(iter(frames), crf=18, n=5)))
    assert out.shape == frames.shape
    assert np.abs(out.astype(int) - frames).mean() < 6
    with pytest.raises(DataError, match="returned 5 frames for 6"):
        list(h264_roundtrip(iter(frames), crf=18, n=6))


def test_darken_iter_matches_darken():
    frames = scene()
    a = darken(frames, 6.0, 8000, 5e-5, 22, seed=[3])
    b = np.stack(list(darken_iter(frames, 6.0, 8000, 5e-5, 22, seed=[3])))
    assert np.array_equal(a, b)


def test_darken_refuses_bad_input():
    with pytest.raises(DataError, match="uint8"):
        darken(np.zeros((3, 8, 8, 3), np.float32), 5, 1000, 1e-4, 20, seed=0)
    with pytest.raises(DataError, match="N >= 1"):
        darken(np.zeros((0, 8, 8, 3), np.uint8), 5, 1000, 1e-4, 20, seed=0)
    with pytest.raises(ConfigError, match="out of range"):
        darken(scene(), -1, 1000, 1e-4, 20, seed=0)


def test_draws_stay_in_bounds_and_bad_bounds_are_named():
    d = DarkenConfig(copies=2, level=[4.0, 10.0], photons=[2000.0, 50000.0], read_noise=[1e-4, 1e-3], crf=[18, 30])
    rng = np.random.default_rng(0)
    for _ in range(200):
        p = draw_darkening(d, rng)
        assert 4.0 <= p["level"] <= 10.0 and 2000 <= p["photons"] <= 50000
        assert 1e-4 <= p["read_noise"] <= 1e-3 and 18 <= p["crf"] <= 30 and isinstance(p["crf"], int)
    with pytest.raises(ConfigError, match="augment.darken.level"):
        check_darken(DarkenConfig(level=[10.0, 4.0]))
    with pytest.raises(ConfigError, match="augment.darken.crf"):
        check_darken(DarkenConfig(crf=[18, 60]))
    with pytest.raises(ConfigError, match="augment.darken.p"):
        check_darken(DarkenConfig(p=1.5))
    with pytest.raises(ConfigError, match="augment.darken.copies"):
        check_darken(DarkenConfig(copies=-1))
    with pytest.raises(ConfigError, match="augment.darken.seed"):
        check_darken(DarkenConfig(seed=-3))
    with pytest.raises(ConfigError, match="augment.darken.photons"):
        check_darken(DarkenConfig(photons=[1000.0, float("inf")]))


def test_settings_dark_copies_cannot_work_with_are_refused_before_any_work(tmp_path):
    root = make_dataset(tmp_path / "data", n_frames=16, size=(64, 48))
    cfg = cfg_for(root, tmp_path / "prepared", "augment.darken.copies=1", "enhance.at=source")
    with pytest.raises(ConfigError, match="enhance.at: source"):
        prepare(cfg, progress=False)
    assert not (tmp_path / "prepared" / "index.json").exists()  # refused before the decoding
    cfg = cfg_for(root, tmp_path / "prepared", "augment.darken.copies=1", "model.in_channels=5")
    with pytest.raises(ConfigError, match="optical flow"):
        check_darken_config(cfg)
    check_darken_config(cfg_for(root, tmp_path / "prepared", "model.in_channels=5"))  # copies off: fine


@pytest.fixture
def darkened(tmp_path):
    """A prepared and gamma-enhanced dataset with 2 dark copies of each training video."""
    root = make_dataset(tmp_path / "data", n_frames=16, size=(64, 48))
    cfg = cfg_for(root, tmp_path / "prepared", "augment.darken.copies=2", "augment.darken.p=0.5",
                  "enhance.method=gamma", "cache.workers=2")  # fmt: skip
    prepare(cfg, progress=False)
    enhance(cfg, progress=False)
    return cfg


def test_prepare_and_enhance_make_the_copies(darkened):
    cfg = darkened
    index, raw = open_prepared(cfg)
    train = index.split("train")
    ids = [dark_copy_id(r.video_id, k) for r in train for k in (1, 2)]
    assert all(i in raw for i in ids)
    assert not any(dark_copy_id(r.video_id, 1) in raw for r in index.split("test"))  # never the test videos
    for r in train:
        assert raw.frames(dark_copy_id(r.video_id, 1)).shape == raw.frames(r.video_id).shape
        assert raw.frames(dark_copy_id(r.video_id, 1)).mean() < raw.frames(r.video_id).mean()
    assert len(cache_entries(cfg, index)) == len(index.records) + 2 * len(train)
    cache = training_cache(cfg)
    assert all(i in cache for i in ids)
    # the index lists the videos alone, as a prepare without copies does
    plain = cfg_for(cfg.data.source.root, Path(cfg.data.prepared).parent / "plain")
    prepare(plain, progress=False)
    assert [r.video_id for r in open_prepared(plain)[0].records] == [r.video_id for r in index.records]
    assert not any("~dark" in r.video_id for r in index.records)


def test_prepare_again_reuses_the_copies_and_remakes_changed_ones(darkened):
    cfg = darkened
    index, raw = open_prepared(cfg)
    cid = dark_copy_id(index.split("train")[0].video_id, 1)
    before = (frames_dir(cfg) / f"{cid}.npy").stat().st_mtime_ns
    prepare(cfg, progress=False)
    assert (frames_dir(cfg) / f"{cid}.npy").stat().st_mtime_ns == before
    cfg.augment.darken.seed = 1  # another camera draw: every copy is made again, and enhanced again
    prepare(cfg, progress=False)
    assert (frames_dir(cfg) / f"{cid}.npy").stat().st_mtime_ns != before
    with pytest.raises(DataError, match="not enhanced or stale"):
        training_cache(cfg)
    enhance(cfg, progress=False)
    training_cache(cfg)


def test_training_refuses_copies_made_with_other_settings(darkened):
    cfg = darkened
    cfg.augment.darken.level = [20.0, 30.0]  # changed, and not prepared again
    with pytest.raises(DataError, match="other augment.darken settings"):
        training_cache(cfg)
    training_cache(cfg, dark_copies=False)


def test_a_copy_that_cannot_be_made_fails_prepare_with_its_reason(tmp_path, monkeypatch):
    import darkaction.data.lowlight as lowlight

    def broken(*args, **kwargs):
        raise RuntimeError("encoder exploded")

    monkeypatch.setattr(lowlight, "darken_iter", broken)
    root = make_dataset(tmp_path / "data", n_frames=16, size=(64, 48))
    cfg = cfg_for(root, tmp_path / "prepared", "augment.darken.copies=1", "cache.workers=1")
    with pytest.raises(DataError, match="dark copies .* could not be made.*encoder exploded"):
        prepare(cfg, progress=False)
    summary = json.loads((tmp_path / "prepared" / "prepare.json").read_text())
    assert len(summary["dark_copies_failed"]) == len(open_prepared(cfg)[0].split("train"))  # the index was saved


def test_identity_enhancer_trains_on_the_raw_copies(darkened):
    cfg = darkened
    cfg.enhance.method = "identity"
    index, raw = open_prepared(cfg)
    cache = training_cache(cfg)
    assert cache.root == raw.root
    ds = ClipDataset(index.split("train"), cache, cfg, train=True)
    assert any(ds._train_source(r, i) != r.video_id for i, r in enumerate(ds.records))
    ds[0]


def test_training_refuses_missing_copies_and_evaluation_does_not_need_them(darkened):
    cfg = darkened
    index, raw = open_prepared(cfg)
    cache = training_cache(cfg)
    gone = dark_copy_id(index.split("train")[0].video_id, 2)
    FrameCache(frames_dir(cfg)).remove(gone)
    with pytest.raises(DataError, match="dark copies of training videos missing"):
        training_cache(cfg)
    training_cache(cfg, dark_copies=False)
    cache.remove(gone)  # the enhanced one too: a dataset built on the cache says so at once, not mid-epoch
    with pytest.raises(DataError, match="not in the cache"):
        ClipDataset(index.split("train"), cache, cfg, train=True)


def test_training_draws_read_copies_at_rate_p_and_evaluation_never(darkened):
    cfg = darkened
    index, _ = open_prepared(cfg)
    cache = training_cache(cfg)
    read: list[str] = []

    class Spy:
        def frames(self, vid):
            read.append(vid)
            return cache.frames(vid)

    ds = ClipDataset(index.split("train"), Spy(), cfg, train=True)
    for epoch in range(20):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            ds[i]
    copies = [v for v in read if "~dark" in v]
    assert 0.35 < len(copies) / len(read) < 0.65  # p = 0.5
    assert {v[-1] for v in copies} == {"1", "2"}
    read.clear()
    test = ClipDataset(index.split("test"), Spy(), cfg, train=False, views=2, n_min=ds.n_min, n_max=ds.n_max)
    for i in range(len(test)):
        test[i]
    assert read and not any("~dark" in v for v in read)


def test_copies_off_leave_the_draws_unchanged(darkened):
    """The choice of copy has its own random stream: a draw that reads the video itself is the clip it was
    without `augment.darken`; a draw that reads a copy has the same frames and crop, darker."""
    cfg = darkened
    index, _ = open_prepared(cfg)
    cache = training_cache(cfg)
    on = ClipDataset(index.split("train"), cache, cfg, train=True)
    cfg.augment.darken.copies = 0
    off = ClipDataset(index.split("train"), cache, cfg, train=True)
    kinds = set()
    for epoch in range(3):
        on.set_epoch(epoch)
        off.set_epoch(epoch)
        for i, rec in enumerate(on.records):
            a, b = on[i]["clip"].numpy(), off[i]["clip"].numpy()
            copy = on._train_source(rec, i) != rec.video_id
            kinds.add(copy)
            assert np.array_equal(a, b) != copy
    assert kinds == {True, False}
