"""Frozen enhancement of a prepared cache: resumable, keyed by fingerprint; training_cache; CLI; preview."""

import numpy as np
import pytest
import torch

from darkaction.cli import main
from darkaction.config import Config
from darkaction.enhancement.dce import DCENet
from darkaction.enhancement.run import enhance, preview, training_cache
from darkaction.errors import DataError


@pytest.fixture(scope="module")
def prepared_cfg(tiny_synth, tmp_path_factory):
    from darkaction.data.prepare import prepare

    cfg = Config()
    cfg.data.source.format = "synth"
    cfg.data.source.root = str(tiny_synth)
    cfg.data.prepared = str(tmp_path_factory.mktemp("prep") / "prepared")
    cfg.cache.height, cfg.cache.width, cfg.cache.workers = 32, 40, 1
    prepare(cfg, progress=False)
    return cfg


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    net = DCENet()
    net.init_weights(0.05)
    p = tmp_path_factory.mktemp("w") / "w.pth"
    torch.save(net.state_dict(), p)
    return p


def _cfg(base: Config, **enh) -> Config:
    import copy

    cfg = copy.deepcopy(base)
    for k, v in enh.items():
        setattr(cfg.enhance, k, v)
    return cfg


def test_gamma_cache_resumable(prepared_cfg):
    from darkaction.data.prepare import open_prepared

    cfg = _cfg(prepared_cfg, method="gamma", gamma=0.5)
    with pytest.raises(DataError, match="darkaction enhance"):
        training_cache(cfg)
    folder = enhance(cfg, progress=False)
    assert folder.name == "gamma-g0.5-at_cache" and folder.parent.name == "enhanced"
    index, raw = open_prepared(cfg)
    cache = training_cache(cfg)
    vid = index.records[0].video_id
    assert cache.settings["enhancer"] == folder.name
    lut = np.round(255 * (np.arange(256) / 255) ** 0.5).astype(np.uint8)
    assert np.array_equal(cache.frames(vid), lut[np.asarray(raw.frames(vid))])
    # resume: remove one entry, re-run: only that one is redone, the others are reused untouched
    other = index.records[1].video_id
    mtime = (folder / f"{other}.npy").stat().st_mtime_ns
    cache.remove(vid)
    with pytest.raises(DataError, match="darkaction enhance"):
        training_cache(cfg)
    enhance(cfg, progress=False)
    from darkaction.utils import read_json

    report = read_json(folder / "enhance.json")
    assert report["enhanced_now"] == 1 and report["reused"] == len(index.records) - 1
    assert (folder / f"{other}.npy").stat().st_mtime_ns == mtime
    assert np.array_equal(training_cache(cfg).frames(vid), lut[np.asarray(raw.frames(vid))])
    # another gamma is another cache
    assert enhance(_cfg(prepared_cfg, method="gamma", gamma=0.4), progress=False).name == "gamma-g0.4-at_cache"


def test_identity_reads_raw(prepared_cfg):
    from darkaction.data.prepare import open_prepared

    cfg = _cfg(prepared_cfg, method="identity")
    assert training_cache(cfg).root == open_prepared(cfg)[1].root


def test_zero_dce_cache_and_source(prepared_cfg, weights):
    from darkaction.data.prepare import open_prepared

    cfg = _cfg(prepared_cfg, method="zero-dce", weights=str(weights), precision="fp32", batch_size=16)
    folder = enhance(cfg, progress=False)
    assert folder.name.startswith("zero-dce-") and folder.name.endswith("fp32-at_cache")
    index, raw = open_prepared(cfg)
    cache = training_cache(cfg)
    vid = index.records[0].video_id
    out, inp = cache.frames(vid), np.asarray(raw.frames(vid))
    assert out.shape == inp.shape and out.dtype == np.uint8
    # at=source: enhanced at source resolution then resized; same shape, close to but not equal to at=cache
    src_cfg = _cfg(cfg, at="source")
    src_folder = enhance(src_cfg, progress=False)
    assert src_folder != folder and src_folder.name.endswith("at_source")
    src = training_cache(src_cfg).frames(vid)
    assert src.shape == out.shape
    assert np.abs(src.astype(float) - out.astype(float)).mean() < 12


def test_cli_enhance_and_preview(prepared_cfg, weights, tmp_path):
    import yaml

    from darkaction.config import to_dict

    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(yaml.safe_dump(to_dict(prepared_cfg)))
    png = tmp_path / "preview.png"
    args = ["enhance", "-c", str(cfg_file), "--method", "zero-dce", "--weights", str(weights), "--preview", str(png)]
    assert main(args) == 0
    assert png.stat().st_size > 5000
    bad = tmp_path / "bad.pth"
    torch.save({"e_conv1.weight": torch.zeros(1)}, bad)
    assert main(["enhance", "-c", str(cfg_file), "--weights", str(bad)]) == 2


def test_preview_lists_enhancers(prepared_cfg, weights, tmp_path):
    cfg = _cfg(prepared_cfg, method="zero-dce", weights=str(weights))
    out = preview(cfg, tmp_path / "p.png", n=2)
    assert out.is_file()


def test_zero_dce_training_frames_from_the_cache_or_at_source_resolution(prepared_cfg):
    import copy

    import cv2

    from darkaction.enhancement.train import training_images
    from darkaction.errors import ConfigError

    cfg = copy.deepcopy(prepared_cfg)
    cfg.enhance.train.n_frames = 7
    cached = training_images(cfg)
    assert len(cached) == 7 and all(im.shape == (32, 40, 3) for im in cached)
    cfg.enhance.train.frames_from = "source"
    cfg.enhance.train.image_size = 16
    source = training_images(cfg)
    # decoded at the source's 64x48 and resized to the training size at once (memory holds training-size images)
    assert len(source) == 7 and all(im.shape == (16, 16, 3) for im in source)
    # the same frames as the cache's, only from the full-resolution source
    small = cv2.resize(cached[3], (16, 16), interpolation=cv2.INTER_AREA)
    assert abs(small.astype(float) - source[3].astype(float)).mean() < 3
    cfg.enhance.train.frames_from = "disk"
    with pytest.raises(ConfigError, match="frames_from"):
        training_images(cfg)
