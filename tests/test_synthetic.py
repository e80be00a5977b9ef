"""The synthetic dataset: layout, determinism, decodability, brightness, ARID's confounds and the motions."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import av
import numpy as np
import pytest
from scipy.stats import kruskal

from darkaction.cli import main
from darkaction.config import SynthConfig
from darkaction.data import synth_render as R
from darkaction.data.synthetic import CLASS_IDS, draw_motion, plan, plan_clip, render_clip, synth


def _small(out: Path, seed: int = 0, workers: int = 1) -> SynthConfig:
    return SynthConfig(
        out=str(out),
        seed=seed,
        classes=["Run", "Stand", "Wave"],
        width=48,
        height=32,
        train_groups=1,
        test_groups=1,
        reps=2,
        min_frames=33,
        max_frames=45,
        workers=workers,
    )


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


# ---------------------------------------------------------------------------------------------- layout


def test_layout_csvs_and_metadata(tiny_synth: Path, tiny_synth_cfg: SynthConfig) -> None:
    meta = json.loads((tiny_synth / "metadata.json").read_text())
    assert meta["seed"] == tiny_synth_cfg.seed
    assert meta["class_ids"] == {"Run": 5, "Sit": 6, "Stand": 7, "Turn": 8, "Walk": 9, "Wave": 10}
    clips = {c["video"]: c for c in meta["clips"]}
    n_per_split = {"train": 6 * 2 * 2, "test": 6 * 1 * 2}
    groups = {}
    for split in ("train", "test"):
        text = (tiny_synth / f"{split}.csv").read_text()
        assert text.splitlines()[0] == "VideoID,Video,ClassID"
        rows = _read_csv(tiny_synth / f"{split}.csv")
        assert len(rows) == n_per_split[split]
        assert [int(r["VideoID"]) for r in rows] == list(range(len(rows)))
        for r in rows:
            cls, name = r["Video"].split("/")
            stem_cls, group, k = name.removesuffix(".mp4").split("_")
            assert stem_cls == cls and int(r["ClassID"]) == CLASS_IDS[cls]
            assert (tiny_synth / "videos" / r["Video"]).is_file()
            c = clips[r["Video"]]
            assert c["split"] == split and c["group"] == int(group) and c["k"] == int(k)
            assert 0 <= c["action_start"] < c["action_end"] < c["n_frames"]
            assert {"brightness", "motion", "n_frames", "class"} <= set(c)
        groups[split] = {int(r["Video"].split("_")[1]) for r in rows}
    assert groups["train"] and groups["test"] and not groups["train"] & groups["test"]
    assert "out" not in meta["config"]  # the folder name must not make two runs differ


def test_videos_decode_to_metadata_frame_counts_and_brightness(tiny_synth: Path, tiny_synth_cfg: SynthConfig) -> None:
    meta = json.loads((tiny_synth / "metadata.json").read_text())
    lo, hi = tiny_synth_cfg.brightness
    for c in meta["clips"]:
        frames = _decode(tiny_synth / "videos" / c["video"])
        assert frames.shape == (c["n_frames"], tiny_synth_cfg.height, tiny_synth_cfg.width, 3), c["video"]
        assert tiny_synth_cfg.min_frames <= c["n_frames"] <= tiny_synth_cfg.max_frames
        # H.264 moves the mean a little; the target is drawn inside [lo, hi]
        assert lo - 3 <= frames.mean() <= hi + 3, (c["video"], frames.mean())
        assert abs(frames.mean() - c["brightness"]) < 2.0


def test_brightness_follows_the_configured_range(tmp_path: Path) -> None:
    cfg = dataclasses.replace(_small(tmp_path / "bright"), brightness=[60.0, 70.0], noise=0.5)
    out = synth(cfg)
    for c in json.loads((out / "metadata.json").read_text())["clips"]:
        assert 57 <= _decode(out / "videos" / c["video"]).mean() <= 73


# ---------------------------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_bytes_whatever_the_workers(tmp_path: Path) -> None:
    a = synth(_small(tmp_path / "a", workers=1))
    b = synth(_small(tmp_path / "b", workers=2))
    fa, fb = _files(a), _files(b)
    assert sorted(fa) == sorted(fb)
    assert len([k for k in fa if k.endswith(".mp4")]) == 3 * 2 * 2
    for name in fa:
        assert fa[name] == fb[name], name


def test_different_seed_gives_different_videos(tmp_path: Path) -> None:
    a = _files(synth(_small(tmp_path / "a", seed=0)))
    b = _files(synth(_small(tmp_path / "b", seed=1)))
    common = [k for k in a if k.endswith(".mp4") and k in b]
    assert common and all(a[k] != b[k] for k in common)


def test_a_clip_does_not_depend_on_the_other_classes() -> None:
    full = SynthConfig()
    only = dataclasses.replace(full, classes=["Wave"])
    assert plan_clip(full, "Wave", 2, 3, "train") == plan_clip(only, "Wave", 2, 3, "train")


# ---------------------------------------------------------------------------------------------- confounds


def test_lengths_depend_on_class_in_train_only() -> None:
    cfg = SynthConfig(train_groups=12, test_groups=12, reps=5)
    clips = plan(cfg)
    for split, dependent in (("train", True), ("test", False)):
        by_class = [[c["n_frames"] for c in clips if c["split"] == split and c["class"] == k] for k in cfg.classes]
        p = kruskal(*by_class).pvalue
        means = [np.mean(x) for x in by_class]
        if dependent:
            assert p < 1e-10 and max(means) > 2 * min(means)
        else:
            assert p > 1e-3 and max(means) < 1.35 * min(means)
    lengths = [c["n_frames"] for c in clips]
    assert min(lengths) >= 33 and max(lengths) <= 225


def test_action_occupies_part_of_the_clip_at_varying_positions() -> None:
    clips = plan(SynthConfig())
    fractions = [(c["action_end"] - c["action_start"]) / c["n_frames"] for c in clips]
    starts = [c["action_start"] / c["n_frames"] for c in clips]
    assert max(fractions) < 0.95 and min(fractions) > 0.05
    assert np.std(starts) > 0.05
    assert all(c["action_start"] > 0 for c in clips[:20]) or np.mean([c["action_start"] > 0 for c in clips]) > 0.8


# ---------------------------------------------------------------------------------------------- motion


def _poses(action: str, n: int, start: int, end: int, seed: int = 0) -> R.Poses:
    rng = np.random.default_rng(seed)
    motion = draw_motion(rng, action)
    motion["x0"] = 0.0
    return R.pose_sequence(action, n, start, end, motion, R.random_body(rng), 30.0)


def test_stand_pose_sequence_is_sit_reversed() -> None:
    rng = np.random.default_rng(3)
    motion, body = draw_motion(rng, "Sit"), R.random_body(rng)
    n, s, e = 90, 20, 70
    stand = R.pose_sequence("Stand", n, s, e, motion, body, 30.0)
    sit = R.pose_sequence("Sit", n, n - 1 - e, n - 1 - s, motion, body, 30.0)
    np.testing.assert_array_equal(stand.joints, sit.joints[::-1])
    np.testing.assert_array_equal(stand.yaw, sit.yaw[::-1])
    # and it really moves: the head drops by about a third of the height when sitting
    head_y = sit.joints[:, R.J["head"], 1]
    assert head_y[0] - head_y[-1] > 0.2 * body.height
    # the feet stay where they are while sitting down
    feet = sit.joints[:, R.J["l_foot"]]
    assert np.abs(feet[:, [0, 2]] - feet[0, [0, 2]]).max() < 0.05 * body.height


def _motion_profile(frames: np.ndarray) -> np.ndarray:
    """Per-frame foreground motion energy (T-1,), normalised to sum 1."""
    f = frames.astype(np.float32).mean(axis=-1)
    e = np.abs(np.diff(f, axis=0)).mean(axis=(1, 2))
    return e / e.sum()


def test_rendered_stand_motion_is_sit_motion_reversed() -> None:
    cfg = SynthConfig(width=64, height=48, noise=0.0)
    sit = next(c for c in plan(cfg) if c["class"] == "Sit")
    n = sit["n_frames"]
    stand = {
        **sit,
        "class": "Stand",
        "action_start": n - 1 - sit["action_end"],
        "action_end": n - 1 - sit["action_start"],
    }
    sit_frames, _ = render_clip(cfg, sit, noise=False)
    stand_frames, _ = render_clip(cfg, stand, noise=False)
    a, b = _motion_profile(sit_frames), _motion_profile(stand_frames)
    reversed_corr = np.corrcoef(a, b[::-1])[0, 1]
    forward_corr = np.corrcoef(a, b)[0, 1]
    assert reversed_corr > 0.95 and reversed_corr > forward_corr + 0.3
    # foreground (pixels differing from the first/last frame of the seated pose) mirrors too
    fg_sit = np.abs(sit_frames.astype(int) - sit_frames[-1]).sum(-1) > 3
    fg_stand = np.abs(stand_frames.astype(int) - stand_frames[0]).sum(-1) > 3
    agree = (fg_sit == fg_stand[::-1]).mean()
    assert agree > 0.97


def test_run_is_faster_with_larger_swing_and_lean_than_walk() -> None:
    walk, run = _poses("Walk", 60, 5, 55), _poses("Run", 60, 5, 55)

    def speed(p: R.Poses) -> float:
        return float(np.abs(np.diff(p.joints[:, R.J["pelvis"], 0])).sum())

    def swing(p: R.Poses) -> float:
        hip, knee = p.joints[:, R.J["l_hip"]], p.joints[:, R.J["l_knee"]]
        rel = knee - hip
        return float(np.ptp(np.arctan2(np.hypot(rel[:, 0], rel[:, 2]) * np.sign(rel[:, 0] + rel[:, 2]), -rel[:, 1])))

    def lean(p: R.Poses) -> float:
        spine = p.joints[30, R.J["neck"]] - p.joints[30, R.J["pelvis"]]
        return float(np.hypot(spine[0], spine[2]) / spine[1])

    assert speed(run) > 1.8 * speed(walk)
    assert swing(run) > 1.3 * swing(walk)
    assert lean(run) > lean(walk) + 0.1


def test_wave_moves_one_hand_above_the_head_and_turn_rotates_half_a_turn() -> None:
    wave = _poses("Wave", 60, 10, 50)
    hands_y = wave.joints[:, [R.J["l_hand"], R.J["r_hand"]], 1].max(axis=1)
    head_y = wave.joints[:, R.J["head"], 1]
    assert (hands_y[20:40] > head_y[20:40]).all() and (hands_y[:10] < head_y[:10]).all()
    feet = wave.joints[:, [R.J["l_foot"], R.J["r_foot"]], :]
    assert np.abs(feet - feet[0]).max() < 0.02
    turn = _poses("Turn", 60, 10, 50)
    assert abs(abs(turn.yaw[-1] - turn.yaw[0]) - np.pi) < 1e-9
    # foreshortening: the shoulder line's on-screen width follows |cos(yaw)|
    width = np.abs(turn.joints[:, R.J["l_shoulder"], 0] - turn.joints[:, R.J["r_shoulder"], 0])
    assert width.min() < 0.3 * width.max()


# ---------------------------------------------------------------------------------------------- CLI


def test_cli_synth_with_preview(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    args = ["synth", "--out", str(out), "--seed", "0", "--preview", "--set", "synth.reps=1"]
    args += ["--set", "synth.train_groups=1", "--set", "synth.test_groups=1", "--set", "synth.width=64"]
    args += ["--set", "synth.height=48", "--set", "synth.max_frames=40", "--workers", "1"]
    assert main(args) == 0
    assert (out / "preview.png").stat().st_size > 1000
    assert len(_read_csv(out / "train.csv")) == 6 and len(_read_csv(out / "test.csv")) == 6
    # running again into the same folder is allowed and gives the same bytes
    before = _files(out)
    assert main(args) == 0
    assert _files(out) == before


@pytest.mark.parametrize(
    "override",
    [
        "synth.width=63",
        "synth.classes=[Dance]",
        "synth.brightness=[40, 10]",
        "synth.min_frames=300",  # above max_frames (225)
        "synth.reps=0",
        "synth.workers=0",
    ],
)
def test_cli_bad_options_exit_2(tmp_path: Path, override: str, capsys) -> None:
    assert main(["synth", "--out", str(tmp_path / "x"), "--set", override]) == 2
    assert "synth." in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_cli_refuses_a_foreign_non_empty_folder(tmp_path: Path, capsys) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    assert main(["synth", "--out", str(tmp_path), "--set", "synth.reps=1"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_cli_bad_seed_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as e:
        main(["synth", "--out", str(tmp_path / "x"), "--seed", "zero"])
    assert e.value.code == 2
