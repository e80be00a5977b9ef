"""prepare / open_prepared / stats end to end on generated videos: bad input reported, resume after SIGKILL,
no work on an unchanged dataset, re-extraction of a changed source."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_video import write_video

from darkaction.cli import main
from darkaction.config import load_config
from darkaction.data.cache import FrameCache
from darkaction.data.prepare import frames_dir, open_prepared, prepare
from darkaction.errors import DataError

CLASSES = [("Run", 5), ("Sit", 6), ("Wave", 10)]


def make_dataset(root: Path, per_class: int = 2, n_frames: int = 20, size=(64, 48), test: bool = True) -> Path:
    """A dataset in the `synth` layout (videos/<Class>/<Class>_<G>_<K>.mp4 + train.csv / test.csv)."""
    rows, trows = ["VideoID,Video,ClassID"], ["VideoID,Video,ClassID"]
    i = 0
    for cls, cid in CLASSES:
        for k in range(per_class):
            rel = f"{cls}/{cls}_{k % 2 + 1}_{k}.mp4"
            write_video(root / "videos" / rel, n_frames + i, *size, seed=i)
            rows.append(f"{i},{rel},{cid}")
            i += 1
        if test:
            rel = f"{cls}/{cls}_9_0.mp4"
            write_video(root / "videos" / rel, n_frames, *size, seed=100 + cid)
            trows.append(f"{cid},{rel},{cid}")
    (root / "train.csv").write_text("\n".join(rows) + "\n")
    (root / "test.csv").write_text("\n".join(trows) + "\n")
    return root


def cfg_for(root: Path, prepared: Path, *extra: str):
    return load_config(
        None,
        [
            "data.source.format=synth",
            f"data.source.root={root}",
            f"data.prepared={prepared}",
            "cache.height=24",
            "cache.width=32",
            *extra,
        ],
    )


def add_rows(root: Path, rels: list[str], cid: int = 5) -> None:
    lines = (root / "train.csv").read_text().splitlines()
    for j, rel in enumerate(rels):
        lines.append(f"{1000 + j},{rel},{cid}")
    (root / "train.csv").write_text("\n".join(lines) + "\n")


def test_prepare_skips_bad_videos_with_reasons_and_reruns_without_work(tmp_path):
    root = make_dataset(tmp_path / "d")
    vids = root / "videos" / "Run"
    good = write_video(tmp_path / "tmp.mp4", 30)
    (vids / "trunc.mp4").write_bytes(good.read_bytes()[:300])
    (vids / "zero.mp4").write_bytes(b"")
    (vids / "random.mp4").write_bytes(np.random.default_rng(1).bytes(5000))
    (vids / "text.mp4").write_text("hello, I am not a video\n")
    add_rows(root, ["Run/trunc.mp4", "Run/zero.mp4", "Run/random.mp4", "Run/text.mp4", "Run/gone.mp4"])
    add_rows(root, ["../outside.mp4"])
    lines = (root / "train.csv").read_text() + "77,Run/Run_1_0.mp4,5\n88,Run/x.mp4,99\n99,broken-line\n"
    (root / "train.csv").write_text(lines)

    cfg = cfg_for(root, tmp_path / "prep", "cache.workers=2")
    out = prepare(cfg, progress=False)
    skipped = {Path(s["file"]).name: s["reason"] for s in json.loads((out / "skipped.json").read_text())}
    assert "not a readable video" in skipped["trunc.mp4"]
    assert "empty" in skipped["zero.mp4"]
    assert "not a readable video" in skipped["random.mp4"]
    assert "not a readable video" in skipped["text.mp4"]
    assert skipped["gone.mp4"] == "missing file"
    assert "escapes" in skipped["outside.mp4"]
    assert "duplicate" in skipped["Run_1_0.mp4"]
    assert "unknown class id 99" in skipped["x.mp4"]
    assert any("malformed" in r for r in skipped.values())

    summary = json.loads((out / "prepare.json").read_text())
    assert summary["decoded"] == 9 and summary["failed"] == 3 and summary["splits"]["test"] == 3
    index, cache = open_prepared(cfg)
    assert len(index.records) == 9
    for r in index.records:
        assert cache.verify(r.video_id) == ""
        assert r.n_frames == cache.frames(r.video_id).shape[0] and cache.frames(r.video_id).shape[1:] == (24, 32, 3)
    assert {r.n_frames for r in index.split("train")} == set(range(20, 26))

    prepare(cfg, progress=False)  # unchanged: nothing decoded, bad files not retried
    again = json.loads((out / "prepare.json").read_text())
    assert again["decoded"] == 0 and again["reused"] == 9 and again["failed"] == 3

    # a changed source is re-extracted (and only that one)
    target = next(r for r in index.records if r.video_id == "Sit__Sit_1_0")
    time.sleep(0.01)
    write_video(Path(target.path), 41, seed=5)
    prepare(cfg, progress=False)
    third = json.loads((out / "prepare.json").read_text())
    assert third["decoded"] == 1
    index2, cache2 = open_prepared(cfg)
    assert index2.by_id()["Sit__Sit_1_0"].n_frames == 41 and cache2.frames("Sit__Sit_1_0").shape[0] == 41

    # strict: the same bad input is an error (exit 2 from the CLI)
    with pytest.raises(DataError, match="strict"):
        prepare(cfg_for(root, tmp_path / "prep", "cache.strict=true"), progress=False)
    args = ["prepare", "--set", f"data.source.root={root}", "--set", f"data.prepared={tmp_path / 'prep'}"]
    args += ["--set", "cache.height=24", "--set", "cache.width=32"]
    assert main(args) == 0
    assert main([*args, "--strict"]) == 2


def test_nothing_usable_is_an_error(tmp_path):
    root = tmp_path / "d"
    (root / "videos" / "Run").mkdir(parents=True)
    (root / "videos" / "Run" / "a.mp4").write_text("not a video")
    (root / "train.csv").write_text("VideoID,Video,ClassID\n0,Run/a.mp4,5\n")
    with pytest.raises(DataError, match="no usable training video"):
        prepare(cfg_for(root, tmp_path / "prep"), progress=False)


def test_open_prepared_errors_say_run_prepare(tmp_path):
    root = make_dataset(tmp_path / "d", per_class=1, test=False)
    cfg = cfg_for(root, tmp_path / "prep")
    with pytest.raises(DataError, match="darkaction prepare"):
        open_prepared(cfg)
    prepare(cfg, progress=False)
    with pytest.raises(DataError, match="different settings.*val_fraction"):
        open_prepared(cfg_for(root, tmp_path / "prep", "data.val_fraction=0.5"))
    with pytest.raises(DataError, match="darkaction prepare"):
        open_prepared(cfg_for(root, tmp_path / "prep", "cache.height=16"))


def test_short_side_cache_and_stats(tmp_path):
    root = make_dataset(tmp_path / "d", per_class=2, size=(64, 32))
    prep = tmp_path / "prep"
    args = ["prepare", "--set", f"data.source.root={root}", "--set", f"data.prepared={prep}"]
    args += ["--set", "cache.resize=short_side", "--set", "cache.short_side=16", "--set", "data.val_fraction=0.34"]
    assert main([*args, "--stats"]) == 0
    cache = FrameCache(prep / "frames" / "short_16")
    assert cache.frames(cache.ids[0]).shape[1:] == (16, 32, 3)
    s = json.loads((prep / "stats" / "stats.json").read_text())
    assert s["splits"]["train"]["clips"] + s["splits"]["val"]["clips"] == 6
    assert s["splits"]["test"]["clips_per_class"] == {"run": 1, "sit": 1, "wave": 1}
    assert s["splits"]["test"]["frames"]["min"] == 20
    assert len(s["train_channel_mean"]) == 3 and all(0 < m < 0.5 for m in s["train_channel_mean"])
    # alpha: auto (the default) crops no training clip; the count is recorded per split
    assert s["cropping"]["alpha_setting"] == "auto" and s["cropping"]["cropped"]["train"] == 0
    for name in ("frame_lengths.png", "brightness.png"):
        assert (prep / "stats" / name).read_bytes()[:4] == b"\x89PNG"


def test_killed_prepare_resumes_to_a_complete_valid_cache(tmp_path):
    """SIGKILL a prepare subprocess midway; a re-run completes every entry; a third run does no work."""
    root = make_dataset(tmp_path / "d", per_class=8, n_frames=60, size=(320, 240), test=False)
    prep = tmp_path / "prep"
    cfg = cfg_for(root, prep, "cache.workers=1")
    code = (
        "import sys; from darkaction.config import load_config; from darkaction.data.prepare import prepare; "
        "prepare(load_config(None, sys.argv[1:]), progress=False)"
    )
    overrides = [f"data.source.root={root}", f"data.prepared={prep}", "cache.height=24", "cache.width=32"]
    overrides += ["data.source.format=synth", "cache.workers=1"]
    cache_root = frames_dir(cfg)
    proc = subprocess.Popen([sys.executable, "-c", code, *overrides], env={**os.environ, "PYTHONUNBUFFERED": "1"})
    done_at_kill = 0
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if cache_root.is_dir():
                done_at_kill = len(list(cache_root.glob("*_*.json")))
                if done_at_kill >= 4:
                    break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "prepare finished before it could be killed"
    assert 0 < done_at_kill < 24
    assert not (prep / "index.json").exists()

    prepare(cfg, progress=False)
    summary = json.loads((prep / "prepare.json").read_text())
    assert summary["reused"] >= done_at_kill and summary["decoded"] + summary["reused"] == 24
    index, cache = open_prepared(cfg)
    assert len(index.records) == 24 and sorted(cache.ids) == sorted(r.video_id for r in index.records)
    assert all(cache.verify(r.video_id) == "" for r in index.records)
    assert not list(cache.root.glob(".*.tmp"))

    prepare(cfg, progress=False)
    assert json.loads((prep / "prepare.json").read_text())["decoded"] == 0
