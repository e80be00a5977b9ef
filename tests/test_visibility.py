"""How much of the rendered person a synthetic video holds (data/visibility.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from darkaction.config import SynthConfig
from darkaction.data import visibility as V
from darkaction.data.synthetic import clean_layers, encode_mp4, plan_clip, render_clip
from darkaction.errors import DataError
from darkaction.utils import atomic_write_bytes


def _cfg(level: float) -> SynthConfig:
    """One Walk take at 160x120 and a mean brightness of `level` (the camera noise and CRF of the arid profile)."""
    return SynthConfig(
        classes=["Walk"], width=160, height=120, fps=30, min_frames=33, max_frames=40, brightness=[level, level],
        noise=1.0, crf=23, workers=1,
    )  # fmt: skip


def _video(tmp_path: Path, cfg: SynthConfig, clip: dict, frames: np.ndarray | None = None) -> Path:
    if frames is None:
        frames, _ = render_clip(cfg, clip)
    path = tmp_path / f"{clip['class']}_{clip['target_brightness']}.mp4"
    atomic_write_bytes(path, encode_mp4(frames, cfg.fps, cfg.crf))
    return path


def test_clean_layers_are_the_noiseless_render_and_its_empty_scene():
    cfg = _cfg(40.0)
    clip = plan_clip(cfg, "Walk", 1, 1, "train")
    person, empty = clean_layers(cfg, clip)
    clean, _ = render_clip(cfg, clip, noise=False)
    np.testing.assert_array_equal(person, clean)  # same gain, same figure
    assert person.shape == empty.shape
    moved = np.abs(person.astype(int) - empty).sum(-1) > 0
    assert 0.002 < moved.mean() < 0.5  # the person covers part of each frame, the rest is the scene
    assert (empty == empty[0]).all()  # the empty scene is static


def test_visibility_high_for_a_lit_take_low_in_the_dark_and_zero_without_the_person(tmp_path):
    lit, dark = _cfg(60.0), _cfg(2.0)
    clip_lit = plan_clip(lit, "Walk", 1, 1, "train")
    clip_dark = plan_clip(dark, "Walk", 1, 1, "train")
    v_lit = V.person_visibility(lit, clip_lit, _video(tmp_path, lit, clip_lit), size=(48, 64))
    v_dark = V.person_visibility(dark, clip_dark, _video(tmp_path, dark, clip_dark), size=(48, 64))
    assert v_lit["r"] > 0.9
    assert v_dark["r"] < v_lit["r"] - 0.2 and v_dark["contrast"] < v_lit["contrast"] / 4
    # a video of the empty scene at the same exposure holds nothing of the person: r about 0
    _, empty = clean_layers(lit, clip_lit)
    v_none = V.person_visibility(lit, clip_lit, _video(tmp_path / "e", lit, clip_lit, np.ascontiguousarray(empty)))
    assert abs(v_none["r"]) < 0.1


def test_dataset_visibility_covers_the_split_with_index_ids_and_is_cached(tiny_synth, tmp_path, monkeypatch):
    from darkaction.config import DataConfig, DataSource
    from darkaction.data.index import build_index

    root = tmp_path / "data"
    root.mkdir()
    for p in Path(tiny_synth).iterdir():  # a private copy: the cache file is written into the dataset folder
        (root / p.name).symlink_to(p)
    (root / "metadata.json").unlink()
    (root / "metadata.json").write_bytes((Path(tiny_synth) / "metadata.json").read_bytes())
    table = V.dataset_visibility(root, split="test", size=(32, 32), progress=False)
    index, _ = build_index(DataConfig(source=DataSource(format="synth", root=str(root))))
    ids = {r.video_id for r in index.records if r.split == "test"}
    assert set(table) == ids
    assert all(-1 <= v["r"] <= 1 and v["contrast"] > 0 and v["noise"] > 0 for v in table.values())
    assert (root / "visibility_test_32x32.json").is_file()

    def fail(*a, **k):
        raise AssertionError("measured again")

    monkeypatch.setattr(V, "person_visibility", fail)
    assert V.dataset_visibility(root, split="test", size=(32, 32), progress=False) == table


def test_dataset_visibility_refuses_a_folder_synth_did_not_make(tmp_path):
    with pytest.raises(DataError, match="metadata.json"):
        V.dataset_visibility(tmp_path)


def test_config_fields_survive_the_metadata_round_trip():
    # dataset_visibility rebuilds the SynthConfig from metadata.json's "config"
    cfg = _cfg(10.0)
    assert SynthConfig(**dataclasses.asdict(cfg)) == cfg
