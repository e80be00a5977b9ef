"""Index parsers on generated lists: every format, bad entries reported, splits, shared label space."""

from pathlib import Path

import pytest

from darkaction.config import DataConfig, DataSource
from darkaction.data.index import (
    DatasetIndex,
    VideoRecord,
    build_index,
    hmdb51_movie,
    parse_hmdb51_name,
    split_train_val,
)
from darkaction.errors import DataError


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def track1_root(tmp_path: Path) -> Path:
    root = tmp_path / "arid"
    rows = ["VideoID,Video,ClassID"]
    for i, (cls, cid) in enumerate([("Run", 5), ("Sit", 6), ("Wave", 10)] * 2):
        rows.append(f"{i},{cls}/{cls}_{i + 1}_1.mp4,{cid}")
        touch(root / cls / f"{cls}_{i + 1}_1.mp4")
    rows += [
        "6,Run/Run_9_9.mp4,3",  # unknown class for a 6-way track-1 list? id 3 is Pour: valid ARID, kept
        "7,Run/Run_9_8.mp4,42",  # unknown class id
        "8,Run/Run_9_7.mp4",  # malformed: two fields
        "9,Run/Run_1_1.mp4,5",  # duplicate of row 0
        "10,../outside.mp4,5",  # escapes the root
        "11,Run/missing.mp4,5",  # missing file
        "12,Run/empty.mp4,5",  # empty file
    ]
    touch(root / "Run" / "Run_9_9.mp4")
    touch(root / "Run" / "empty.mp4", b"")
    touch(tmp_path / "outside.mp4")
    (root / "ARID1.1_t1_train_pub.csv").write_text("\n".join(rows) + "\n")
    (root / "ARID1.1_t1_test_pub.csv").write_text("VideoID,Video,ClassID\n0,0.mp4,5\n1,1.mp4,9\n")
    touch(root / "test" / "0.mp4")
    touch(root / "test" / "1.mp4")
    return root


def test_track1_csv_parses_and_reports_bad_entries(tmp_path):
    root = track1_root(tmp_path)
    index, skipped = build_index(DataConfig(source=DataSource(format="arid-csv", root=str(root))))
    assert index.classes == ["pour", "run", "sit", "walk", "wave"]
    assert len(index.split("train")) == 7 and len(index.split("test")) == 2
    reasons = {Path(s.file).name: s.reason for s in skipped}
    assert "unknown class id 42" in reasons["Run_9_8.mp4"]
    assert "malformed" in reasons["Run_9_7.mp4"]
    assert "duplicate" in reasons["Run_1_1.mp4"]
    assert "escapes" in reasons["outside.mp4"]
    assert reasons["missing.mp4"] == "missing file"
    assert "empty" in reasons["empty.mp4"]
    assert all(s.list_file.endswith(".csv") and s.line > 1 for s in skipped)
    test = index.split("test")
    assert test[0].path == str(root / "test" / "0.mp4") and test[0].video_id == "test__0"
    assert index.classes[test[1].label] == "walk"
    run = next(r for r in index.records if r.video_id == "Run__Run_1_1")
    assert run.group == "1" and index.classes[run.label] == "run" and run.path == str(root / "Run" / "Run_1_1.mp4")


def test_class_filter_drops_silently(tmp_path):
    root = track1_root(tmp_path)
    src = DataSource(format="arid-csv", root=str(root), classes=["Run", "wave"])
    index, skipped = build_index(DataConfig(source=src))
    assert index.classes == ["run", "wave"]
    assert not any("Pour" in s.file or "Sit_" in s.file for s in skipped)


def test_csv_without_header_is_a_clear_error(tmp_path):
    root = tmp_path / "r"
    touch(root / "ARID1.1_t1_train_pub.csv", b"0,Run/Run_1_1.mp4,5\n")
    with pytest.raises(DataError, match=r"ARID1.1_t1_train_pub.csv.*VideoID,Video,ClassID"):
        build_index(DataConfig(source=DataSource(format="arid-csv", root=str(root))))


def test_arid_v1_list_with_mapping_and_wrong_format(tmp_path):
    root = tmp_path / "v1"
    touch(root / "Drink" / "Drink_1_1.avi")
    touch(root / "Wave" / "Wave_2_1.avi")
    (root / "mapping_table.txt").write_text("0\tDrink\n1\tWave\n")
    (root / "ARID_split1_train.txt").write_text("0\t0\tDrink/Drink_1_1.avi\n1\t1\tWave/Wave_2_1.avi\n2\t7\tX/x.avi\n")
    index, skipped = build_index(DataConfig(source=DataSource(format="arid-v1", root=str(root))))
    assert index.classes == ["drink", "wave"] and len(index.split("train")) == 2
    assert len(skipped) == 1 and "unknown class id 7" in skipped[0].reason
    (root / "ARID_split1_train.txt").write_text("VideoID,Video,ClassID\n0,a.mp4,5\n")
    with pytest.raises(DataError, match="ARID v1 split list"):
        build_index(DataConfig(source=DataSource(format="arid-v1", root=str(root))))


def hmdb_root(tmp_path: Path) -> Path:
    root = tmp_path / "hmdb"
    splits = root / "testTrainMulti_7030_splits"
    for cls in ("walk", "run", "kiss"):
        lines = []
        for j, (movie, tag) in enumerate([("MovieA", 1), ("MovieA", 2), ("Other_Film", 1), ("Zed", 0)]):
            name = f"{movie}_{cls}_f_cm_np1_ri_med_{j}.avi"
            touch(root / cls / name)
            lines.append(f"{name} {tag}")
        touch(splits / f"{cls}_test_split1.txt", ("\n".join(lines) + "\n").encode())
    return root


def test_hmdb51_split_files_with_class_filter_and_movie_groups(tmp_path):
    root = hmdb_root(tmp_path)
    src = DataSource(format="hmdb51", root=str(root), classes=["walk", "run"])
    index, skipped = build_index(DataConfig(source=src))
    assert index.classes == ["run", "walk"] and not skipped
    assert len(index.split("train")) == 4 and len(index.split("test")) == 2  # tag 0 = unused
    assert {r.group for r in index.records} == {"MovieA", "Other_Film"}
    with pytest.raises(DataError, match="no split file for class"):
        build_index(DataConfig(source=DataSource(format="hmdb51", root=str(root), classes=["sit"])))


def test_hmdb51_split_all_takes_every_clip_once_for_training(tmp_path):
    """The real layout: per class three split files, each naming every clip with 1 (train), 2 (test) or 0 (unused);
    `split: all` counts each clip once, whatever its tags (the paper's 1,420 for the six classes)."""
    root = tmp_path / "hmdb"
    splits = root / "testTrainMulti_7030_splits"
    tags = {1: [1, 2, 0, 1, 1], 2: [2, 1, 1, 0, 1], 3: [0, 0, 2, 1, 2]}
    for cls in ("walk", "run"):
        names = [f"Movie{j % 2}_{cls}_f_cm_np1_ri_med_{j}.avi" for j in range(5)]
        for n in names:
            touch(root / cls / n)
        for k, ts in tags.items():
            touch(splits / f"{cls}_test_split{k}.txt", "".join(f"{n} {t}\n" for n, t in zip(names, ts)).encode())
    src = DataSource(format="hmdb51", root=str(root), split="all")
    index, skipped = build_index(DataConfig(source=src))
    assert not skipped and len(index.records) == 10 and len(index.split("train")) == 10
    assert len({r.video_id for r in index.records}) == 10  # every clip once
    one, _ = build_index(DataConfig(source=DataSource(format="hmdb51", root=str(root), split=1)))
    assert len(one.split("train")) == 6 and len(one.split("test")) == 2  # split 1: tags 1 and 2 only
    with pytest.raises(DataError, match="split=all is for hmdb51"):
        build_index(DataConfig(source=DataSource(format="arid-v1", root=str(root), split="all")))
    with pytest.raises(DataError, match="splits 1, 2 and 3, or 'all'"):
        build_index(DataConfig(source=DataSource(format="hmdb51", root=str(root), split="foo")))
    only_one = hmdb_root(tmp_path / "one")  # split-1 files only: `all` reads the splits that are there
    index, _ = build_index(DataConfig(source=DataSource(format="hmdb51", root=str(only_one), split="all")))
    assert len(index.records) == 12


def test_hmdb51_name_parsing():
    d = parse_hmdb51_name("Crash_walk_f_cm_np1_ri_med_0")
    assert d == {
        "movie": "Crash",
        "action": "walk",
        "body": "f",
        "camera": "cm",
        "people": "np1",
        "view": "ri",
        "quality": "med",
        "index": "0",
    }
    assert parse_hmdb51_name("50_FIRST_DATES_drink_u_nm_np1_fr_goo_29")["movie"] == "50_FIRST_DATES"
    assert parse_hmdb51_name("Some_Movie_climb_stairs_f_cm_np1_ba_bad_3")["action"] == "climb_stairs"
    assert hmdb51_movie("no_tags_here") == "no_tags_here"


def test_arid_and_hmdb51_share_one_label_space(tmp_path):
    root = track1_root(tmp_path)
    hroot = hmdb_root(tmp_path)
    data = DataConfig(
        source=DataSource(format="arid-csv", root=str(root), classes=["run", "wave"]),
        extra_train=[DataSource(format="hmdb51", root=str(hroot), classes=["run", "walk"])],
    )
    index, _ = build_index(data)
    assert index.classes == ["run", "walk", "wave"]
    runs = [r for r in index.records if index.classes[r.label] == "run"]
    assert {r.source for r in runs} == {"arid-csv", "hmdb51"}
    extra = [r for r in index.records if r.source == "hmdb51"]
    assert len(extra) == 6 and all(r.split == "train" and r.video_id.startswith("extra1-") for r in extra)


def test_folders_and_list_formats(tmp_path):
    root = tmp_path / "f"
    touch(root / "Jump" / "a.mp4")
    touch(root / "Jump" / "b.avi")
    touch(root / "Jump" / "notes.txt")
    touch(root / "Sit" / "c.mkv")
    index, _ = build_index(DataConfig(source=DataSource(format="folders", root=str(root))))
    assert index.classes == ["jump", "sit"] and len(index.records) == 3

    (root / "train.txt").write_text("Jump/a.mp4 0\nSit/c.mkv 1\nJump/b.avi jump\nJump/a.mp4 0\nbad\n")
    (root / "test.txt").write_text("Sit/c.mkv 5\n")
    src = DataSource(format="list", root=str(root), label_names=["jump", "sit"])
    index, skipped = build_index(DataConfig(source=src))
    assert [index.classes[r.label] for r in index.split("train")] == ["jump", "sit", "jump"]
    reasons = sorted(s.reason.split(" ")[0] for s in skipped)
    assert reasons == ["duplicate", "duplicate", "malformed"] or reasons == ["duplicate", "malformed", "unknown"]


def test_frames_list_format(tmp_path):
    root = tmp_path / "fr"
    touch(root / "walk" / "clip1" / "img_00001.jpg")
    (root / "train.txt").write_text("walk/clip1 1 0\nwalk/clip2 5 0\n")
    index, skipped = build_index(DataConfig(source=DataSource(format="frames-list", root=str(root))))
    assert index.classes == ["walk"] and index.records[0].video_id == "walk__clip1"
    assert skipped[0].reason == "missing frame folder"
    (root / "train.txt").write_text("walk/clip1 0\n")
    with pytest.raises(DataError, match="frame_dir num_frames label"):
        build_index(DataConfig(source=DataSource(format="frames-list", root=str(root))))


def _records(n_groups=10, per=7):
    return [
        VideoRecord(f"v{g}_{k}", f"/x/{g}_{k}.mp4", label=(g + k) % 3, split="train", group=str(g))
        for g in range(n_groups)
        for k in range(per)
    ]


def test_split_train_val_reproducible_and_order_independent():
    recs = _records()
    t1, v1 = split_train_val(recs, 0.2, seed=3)
    t2, v2 = split_train_val(list(reversed(recs)), 0.2, seed=3)
    assert {r.video_id for r in v1} == {r.video_id for r in v2}
    assert len(v1) == 14 and len(t1) == 56 and all(r.split == "val" for r in v1)
    _, v3 = split_train_val(recs, 0.2, seed=4)
    assert {r.video_id for r in v3} != {r.video_id for r in v1}


def test_split_group_disjoint_is_disjoint():
    recs = _records()
    train, val = split_train_val(recs, 0.3, seed=0, group_disjoint=True)
    assert {r.group for r in train}.isdisjoint({r.group for r in val})
    assert len(val) == 21


def test_index_save_load_round_trip(tmp_path):
    idx = DatasetIndex(["run", "sit"], _records(2, 2), {"k": 1})
    idx.save(tmp_path / "index.json")
    back = DatasetIndex.load(tmp_path / "index.json")
    assert back == idx
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(DataError, match="bad.json"):
        DatasetIndex.load(tmp_path / "bad.json")


def test_every_config_format_has_exactly_one_parser():
    import typing

    from darkaction.config import SourceFormat
    from darkaction.data.index import PARSERS

    assert list(PARSERS) == list(typing.get_args(SourceFormat))
