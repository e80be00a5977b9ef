"""`synth --profile`: the ARID-structured evaluation profiles and the pretraining corpus, and its extra motions."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from darkaction.cli import main
from darkaction.config import SYNTH_PROFILES, load_config
from darkaction.data.synth_render import PRETRAIN_ACTIONS, J, pose_sequence, random_body
from darkaction.data.synthetic import draw_motion, plan, scene_params


def _profile(name: str, *extra: str):
    return load_config(None, [f"synth.profile={name}", *extra]).synth


def test_arid_profile_has_the_structure_of_arid():
    cfg = _profile("arid")
    clips = plan(cfg)
    train = [c for c in clips if c["split"] == "train"]
    test = [c for c in clips if c["split"] == "test"]
    # 16 recording groups x 3 takes per class in train, 5 unseen groups x 4 takes per class in test
    assert len(train) == 6 * 16 * 3 and len(test) == 6 * 5 * 4
    assert {c["group"] for c in train}.isdisjoint({c["group"] for c in test})
    assert (cfg.width, cfg.height, cfg.fps) == (320, 240, 30)
    lengths = np.array([c["n_frames"] for c in clips])
    assert lengths.min() >= 33 and lengths.max() <= 225
    # lengths depend on the class in train only
    mean_len = {k: np.mean([c["n_frames"] for c in train if c["class"] == k]) for k in cfg.classes}
    assert mean_len["Wave"] > 2 * mean_len["Run"]
    test_len = {k: np.mean([c["n_frames"] for c in test if c["class"] == k]) for k in cfg.classes}
    assert max(test_len.values()) < 1.6 * min(test_len.values())
    # people 35-70 % of the frame height, one distance per recording group
    fracs = [scene_params(cfg, g)["figure_frac"] for g in range(1, 22)]
    assert min(fracs) >= 0.35 and max(fracs) <= 0.7 and max(fracs) - min(fracs) > 0.15
    # brightness mostly 4.5-55 / 255, a fifth nearly black (4.5-7 / 255: still a faint trace of the person)
    target = np.array([c["target_brightness"] for c in clips])
    dark = np.array([c["nearly_black"] for c in clips])
    assert 0.12 < dark.mean() < 0.28
    assert target[dark].min() >= 4.5 and target[dark].max() <= 7.0
    assert target[~dark].min() >= 4.5 and target[~dark].max() <= 55.0 and np.median(target) < 25
    # the action occupies part of the clip
    share = np.array([(c["action_end"] - c["action_start"]) / c["n_frames"] for c in clips])
    assert share.max() < 0.8 and np.median(share) < 0.7


def test_profiles_share_no_seed_and_differ_in_rendering():
    arid, val, pre = _profile("arid"), _profile("arid-val"), _profile("pretrain")
    assert len({arid.seed, val.seed, pre.seed}) == 3
    assert (val.noise, val.crf, val.brightness) != (arid.noise, arid.crf, arid.brightness)
    # the pretraining corpus is bright, has many groups and 14 motion kinds, and no class-length confound
    assert pre.brightness[0] > arid.brightness[1] and pre.noise < arid.noise
    assert pre.train_groups >= 4 * arid.train_groups and not pre.length_bias
    assert set(pre.classes) == set(arid.classes) | set(PRETRAIN_ACTIONS) and len(pre.classes) == 14
    clips = plan(pre)
    assert {c["class"] for c in clips} == set(pre.classes)
    assert all(c["target_brightness"] >= 60 for c in clips)


def test_config_values_override_the_profile():
    cfg = _profile("arid", "synth.train_groups=2", "synth.width=160")
    assert (cfg.train_groups, cfg.width, cfg.height, cfg.profile) == (2, 160, 240, "arid")
    assert load_config(None, ["synth.profile=default"]).synth.width == 160  # the plain defaults
    with pytest.raises(Exception, match="synth.profile 'night' is unknown"):
        _profile("night")


@pytest.mark.parametrize("action", PRETRAIN_ACTIONS)
def test_every_corpus_motion_moves_the_body_inside_its_window_only(action):
    rng = np.random.default_rng(3)
    motion = draw_motion(rng, action)
    motion.setdefault("x0", 0.0)
    body = random_body(np.random.default_rng(4))
    n, start, end = 90, 20, 70
    poses = pose_sequence(action, n, start, end, motion, body, 30.0)
    j = poses.joints
    assert j.shape == (n, 15, 3) and np.isfinite(j).all()
    step = np.abs(np.diff(j, axis=0)).sum(axis=(1, 2))
    assert step[start:end].sum() > 5 * step[:start].sum() + 0.3  # the action is where the motion is
    feet = j[:, [J["l_foot"], J["r_foot"]], 1]
    assert feet.min() > -0.05  # never through the floor


def test_cli_profile_renders_a_corpus_whose_extra_classes_the_index_reads(tmp_path: Path):
    from darkaction.config import DataConfig, DataSource
    from darkaction.data.index import build_index
    from darkaction.utils import read_json

    out = tmp_path / "corpus"
    args = ["synth", "--profile", "pretrain", "--out", str(out), "--workers", "1", "--set",
            "synth.classes=[Walk,Jump,Clap]", "synth.train_groups=1", "synth.test_groups=1", "synth.width=64",
            "synth.height=48", "synth.max_frames=40"]  # fmt: skip
    assert main(args) == 0
    meta = read_json(out / "metadata.json")
    assert meta["config"]["profile"] == "pretrain" and meta["class_ids"] == {"Walk": 9, "Jump": 11, "Clap": 15}
    index, skipped = build_index(DataConfig(source=DataSource(format="synth", root=str(out))))
    assert not skipped and sorted(index.classes) == ["clap", "jump", "walk"]
    assert len(index.split("train")) == 3 and len(index.split("test")) == 3


def test_cli_unknown_profile_exits_2(tmp_path: Path, capsys):
    assert main(["synth", "--profile", "night", "--out", str(tmp_path / "x")]) == 2
    assert "arid-val" in capsys.readouterr().err


def test_profile_table_names_only_real_keys():
    from dataclasses import fields

    from darkaction.config import SynthConfig

    names = {f.name for f in fields(SynthConfig)}
    for profile in SYNTH_PROFILES.values():
        assert set(profile) <= names


def test_shared_gait_speed_draws_walks_and_runs_from_one_range_and_changes_nothing_else():
    from darkaction.data.synthetic import plan_clip

    base = _profile("pretrain", "synth.train_groups=40")
    shared = dataclasses.replace(base, gait_speed="shared")
    speeds = {"Walk": [], "Run": []}
    for cls in ("Walk", "Run", "Jump", "Sit"):
        for g in range(1, 41):
            a, b = plan_clip(base, cls, g, 1, "train"), plan_clip(shared, cls, g, 1, "train")
            if cls in speeds:
                speeds[cls].append(b["motion"]["speed"])
                # the body's own gait (leg swing) and everything drawn before and after stay the clip's own
                assert b["motion"]["swing"] == a["motion"]["swing"] and b["n_frames"] == a["n_frames"]
                assert b["target_brightness"] == a["target_brightness"]
            else:
                assert a == b
    walk, run = np.array(speeds["Walk"]), np.array(speeds["Run"])
    assert walk.min() >= 0.55 and run.max() <= 1.9
    assert walk.max() > 1.5 and run.min() < 0.75  # a fast walk and a slow run exist: speed no longer names the class
    # the recorded config stays as before the option for the default
    from darkaction.data.synthetic import _recorded_config

    assert "gait_speed" not in _recorded_config(base) and _recorded_config(shared)["gait_speed"] == "shared"
