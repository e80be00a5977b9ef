"""The real ARID list files from ../shared/fixtures/arid: counts, label remapping, the paper's 80/20 split."""

from collections import Counter
from pathlib import Path

from darkaction.config import DataConfig, DataSource
from darkaction.data.index import build_index, read_mapping_table


def _track1(fixtures_dir: Path, **kw) -> DataConfig:
    return DataConfig(source=DataSource(format="arid-csv", root=str(fixtures_dir / "arid")), **kw)


def test_track1_train_counts_and_remapped_labels(fixtures_dir):
    index, skipped = build_index(_track1(fixtures_dir), check_files=False)
    assert not skipped
    assert index.classes == ["run", "sit", "stand", "turn", "walk", "wave"]  # ids 5..10 -> 0..5 by name
    assert index.class_counts("train") == {"run": 335, "sit": 214, "stand": 232, "turn": 389, "walk": 353, "wave": 314}
    wave = next(r for r in index.records if r.video_id == "Wave__Wave_10_1")
    assert wave.label == 5 and wave.group == "10"


def test_track1_labelled_test_csv(fixtures_dir):
    index, _ = build_index(_track1(fixtures_dir), check_files=False)
    test = index.split("test")
    assert len(test) == 1289
    first = next(r for r in test if r.video_id == "test__0")
    assert first.path == str(fixtures_dir / "arid" / "test" / "0.mp4") and index.classes[first.label] == "run"
    assert set(Counter(r.label for r in test)) == set(range(6))


def test_paper_split_1470_367_reproducible(fixtures_dir):
    a, _ = build_index(_track1(fixtures_dir, val_fraction=0.2, split_seed=7), check_files=False)
    b, _ = build_index(_track1(fixtures_dir, val_fraction=0.2, split_seed=7), check_files=False)
    c, _ = build_index(_track1(fixtures_dir, val_fraction=0.2, split_seed=8), check_files=False)
    assert (len(a.split("train")), len(a.split("val"))) == (1470, 367)
    ids = lambda ix: {r.video_id for r in ix.split("val")}  # noqa: E731
    assert ids(a) == ids(b) and ids(a) != ids(c)
    # stratified: every class keeps ~20 % in val
    for cls, n in a.class_counts("val").items():
        total = n + a.class_counts("train")[cls]
        assert abs(n - 0.2 * total) <= 1


def test_group_disjoint_split_really_disjoint(fixtures_dir):
    index, _ = build_index(_track1(fixtures_dir, val_fraction=0.2, val_group_disjoint=True), check_files=False)
    train_groups = {r.group for r in index.split("train")}
    val_groups = {r.group for r in index.split("val")}
    assert val_groups and train_groups.isdisjoint(val_groups)
    assert len(index.split("train")) + len(index.split("val")) == 1837
    assert abs(len(index.split("val")) - 367) < 60  # whole groups: close to, not exactly, 20 %


def test_arid_v1_split1(fixtures_dir):
    root = fixtures_dir / "arid"
    assert read_mapping_table(root / "mapping_table.txt")[10] == "Wave"
    src = DataSource(format="arid-v1", root=str(root), split=1)
    index, skipped = build_index(DataConfig(source=src), check_files=False)
    assert not skipped and len(index.classes) == 11 and index.classes[0] == "drink"
    assert len(index.split("train")) == 2288 and len(index.split("test")) == 823
    # ARID v1 train and test use disjoint recording groups per class
    tr = {(index.classes[r.label], r.group) for r in index.split("train")}
    te = {(index.classes[r.label], r.group) for r in index.split("test")}
    assert tr.isdisjoint(te)
    # the six track-1 classes only
    six = DataSource(format="arid-v1", root=str(root), classes=["run", "sit", "stand", "turn", "walk", "wave"])
    index6, _ = build_index(DataConfig(source=six), check_files=False)
    assert index6.classes == ["run", "sit", "stand", "turn", "walk", "wave"]
