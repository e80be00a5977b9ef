"""Dataset index: which videos exist, their canonical labels, splits and recording groups.

    index, skipped = build_index(cfg.data)
    train = index.split("train")          # list[VideoRecord]
    index.save(prepared / "index.json")

Formats (`DataSource.format`), with where their files are looked up (`root` = `DataSource.root`):

- `arid-csv`: ARID 1.1 track-1 CSV `VideoID,Video,ClassID` (ids 5..10 keep their 11-class ARID values; labels are
  remapped by class *name*). Train entries `Class/Class_G_K.mp4` resolve against `root`; the labelled test CSV names
  bare files `N.mp4` that resolve against `test_root` (default `<root>/test`). Default lists:
  `<root>/ARID1.1_t1_train_pub.csv`, `<root>/ARID1.1_t1_test_pub.csv`.
- `synth`: the output of `darkaction synth`: the same CSV layout, `<root>/train.csv`, `<root>/test.csv`, videos
  under `<root>/videos`.
- `arid-v1`: tab-separated `row<TAB>class_id<TAB>Class/Class_G_K.avi` lists (default `<root>/ARID_split{k}_train.txt`
  and `_test.txt`) with `mapping_table.txt` (`mapping`, `<root>/mapping_table.txt`, or the built-in table).
- `hmdb51`: official split files `<class>_test_split{k}.txt` (lines `<video>.avi 0|1|2`; 1 train, 2 test, 0 unused);
  `split: all` = every clip named in any split file, once, as training data (the paper's 1,420 for the six classes)
  in `train_list` (a folder; default `<root>/testTrainMulti_7030_splits`, `<root>/splits` or `<root>`); videos at
  `<root>/<class>/<video>.avi`; group = the movie name so clips of one movie stay together.
- `folders`: `<root>/<Class>/<video>`; or `<root>/train/<Class>/...` and `<root>/test/<Class>/...` when both exist.
- `list`: lines `path label`; `frames-list`: lines `frame_dir num_frames label` (frames `img_00001.jpg`, 1-based).
  Integer labels name `label_names[i]`, or else the parent folder of the path. Defaults `<root>/train.txt`,
  `<root>/test.txt`.

Label space: lower-case class names (ARID `Run` == HMDB51 `run`), sorted; labels index `DatasetIndex.classes`.
Bad entries (missing or empty file, unknown class, malformed line, duplicate, path escaping the root) become
`Skipped` items; a list in the wrong format is a `DataError`. `extra_train` sources add all their clips (train and
test lists) to the train split; the validation split is drawn from the main source's train clips only.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import re
import typing
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from darkaction.config import SourceFormat
from darkaction.errors import DataError

# ARID v1 ids 0..10 (mapping_table.txt); ARID 1.1 track 1 uses ids 5..10 of the same table.
ARID_CLASSES = ["Drink", "Jump", "Pick", "Pour", "Push", "Run", "Sit", "Stand", "Turn", "Walk", "Wave"]
HMDB51_CLASSES = (
    "brush_hair cartwheel catch chew clap climb climb_stairs dive draw_sword dribble drink eat fall_floor fencing "
    "flic_flac golf handstand hit hug jump kick kick_ball kiss laugh pick pour pullup punch push pushup ride_bike "
    "ride_horse run shake_hands shoot_ball shoot_bow shoot_gun sit situp smile smoke somersault stand swing_baseball "
    "sword sword_exercise talk throw turn walk wave"
).split()
VIDEO_EXTS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".wmv")
SPLITS = ("train", "val", "test")
FORMATS = typing.get_args(SourceFormat)
TRACK1_HEADER = ["VideoID", "Video", "ClassID"]

_ARID_NAME = re.compile(r"^(?P<cls>[A-Za-z]+)_(?P<group>\d+)_(?P<k>\d+)$")
_HMDB_TAGS = re.compile(
    r"_(?P<body>[fhlu])_(?P<camera>cm|nm)_(?P<people>np\d+)_(?P<view>fr|ba|le|ri)_(?P<quality>goo|med|bad)"
    r"_(?P<index>\d+)$"
)


@dataclass
class VideoRecord:
    """One video. `video_id` is unique and file-name safe (the cache key); `path` is absolute (a file, or a frame
    folder for `frames-list`); `label` indexes `DatasetIndex.classes`; `n_frames` is filled by `prepare`."""

    video_id: str
    path: str
    label: int
    split: str
    group: str = ""
    source: str = ""
    n_frames: int = 0


@dataclass
class Skipped:
    """A list entry or video left out, with the reason (written to `<prepared>/skipped.json`)."""

    file: str
    reason: str
    list_file: str = ""
    line: int = 0

    def __str__(self) -> str:
        where = f" ({self.list_file}:{self.line})" if self.list_file else ""
        return f"{self.file}{where}: {self.reason}"


@dataclass
class DatasetIndex:
    """Class names (lower case, sorted) and the records of every split. `info` holds how it was built."""

    classes: list[str]
    records: list[VideoRecord]
    info: dict = field(default_factory=dict)

    def split(self, name: str) -> list[VideoRecord]:
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        return [r for r in self.records if r.split == name]

    def class_counts(self, split: str | None = None) -> dict[str, int]:
        """Clips per class name (every class present, zeros included)."""
        counts = Counter(r.label for r in self.records if split is None or r.split == split)
        return {c: counts.get(i, 0) for i, c in enumerate(self.classes)}

    def by_id(self) -> dict[str, VideoRecord]:
        return {r.video_id: r for r in self.records}

    def save(self, path: str | os.PathLike) -> Path:
        from darkaction.utils import write_json

        obj = {"classes": self.classes, "info": self.info, "records": [dataclasses.asdict(r) for r in self.records]}
        return write_json(Path(path), obj)

    @classmethod
    def load(cls, path: str | os.PathLike) -> DatasetIndex:
        from darkaction.utils import read_json

        p = Path(path)
        if not p.is_file():
            raise DataError(f"index not found: {p}; run `darkaction prepare` first")
        try:
            obj = read_json(p)
            records = [VideoRecord(**r) for r in obj["records"]]
            return cls(classes=list(obj["classes"]), records=records, info=dict(obj.get("info", {})))
        except (ValueError, KeyError, TypeError) as e:
            raise DataError(
                f"{p}: not a valid index file ({e}); delete it and run `darkaction prepare` again"
            ) from None


# ---------------------------------------------------------------------------------------------- name parsing


def arid_group(stem: str) -> str:
    """`Run_12_3` -> `12` (the recording group G of `Class_G_K`); "" when the name has another form."""
    m = _ARID_NAME.match(stem)
    return m.group("group") if m else ""


def parse_hmdb51_name(stem: str, class_name: str | None = None) -> dict[str, str]:
    """Split an HMDB51 clip name into movie, action and tags.

    `Crash_walk_f_cm_np1_ri_med_0` -> movie `Crash`, action `walk`, body `f`, camera `cm`, people `np1`, view `ri`,
    quality `med`, index `0`. Without `class_name` the action is the longest HMDB51 class name ending the head.
    Raises `ValueError` when the tags are missing.
    """
    m = _HMDB_TAGS.search(stem)
    if not m:
        raise ValueError(f"{stem!r} does not end with HMDB51 tags like _f_cm_np1_ri_med_0")
    head = stem[: m.start()]
    candidates = [class_name.lower()] if class_name else sorted(HMDB51_CLASSES, key=len, reverse=True)
    movie, action = head, ""
    for c in candidates:
        if head.lower().endswith("_" + c):
            movie, action = head[: -len(c) - 1], c
            break
    return {"movie": movie, "action": action, **m.groupdict()}


def hmdb51_movie(stem: str, class_name: str | None = None) -> str:
    """The movie a clip was cut from (its group); the whole stem when the name has no HMDB51 tags."""
    try:
        return parse_hmdb51_name(stem, class_name)["movie"]
    except ValueError:
        return stem


def read_mapping_table(path: Path | None) -> list[str]:
    """ARID `mapping_table.txt` (`id<TAB>Name` lines) -> names by id; the built-in table when `path` is None."""
    if path is None:
        return list(ARID_CLASSES)
    names: dict[int, str] = {}
    for i, line in enumerate(_read_lines(path), 1):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise DataError(f"{path}:{i}: expected `id<TAB>ClassName` lines (ARID mapping_table.txt), got {line!r}")
        names[int(parts[0])] = parts[1]
    if not names:
        raise DataError(f"{path}: empty mapping table; expected `id<TAB>ClassName` lines")
    return [names.get(i, "") for i in range(max(names) + 1)]


# ---------------------------------------------------------------------------------------------- parsers


class ListEntry(NamedTuple):
    """One video a parser found, before it is checked: where it was listed, its path relative to `base`, its class
    name and split."""

    list_file: str  # the list file it came from ("" for folder layouts)
    line: int
    rel: str  # path as listed, relative to base (or absolute)
    base: Path  # the folder the path is relative to; paths may not escape it
    class_name: str
    split: str


def _synth_class_names(root: Path, ids: list[str]) -> list[str]:
    """ARID's names by id, extended by the ids a synthetic dataset's metadata.json gives (the pretraining corpus's
    motions are numbered after ARID's eleven classes)."""
    meta = root / "metadata.json"
    if not meta.is_file():
        return ids
    from darkaction.utils import read_json

    try:
        extra = read_json(meta).get("class_ids", {})
    except (ValueError, AttributeError):
        return ids
    names = list(ids)
    for name, cid in extra.items():
        if isinstance(cid, int) and cid >= 0:
            names += [""] * (cid + 1 - len(names))
            names[cid] = names[cid] or str(name)
    return names


def _read_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text list; check that the list path points to the split file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read list ({e.strerror})") from None
    return [ln.strip() for ln in text.splitlines()]


def _list_path(value: str, root: Path, default: str | None, what: str, required: bool = True) -> Path | None:
    """Resolve a configured list (relative to root, or as given) or the format's default name under root."""
    if value:
        p = Path(value)
        cand = p if p.is_absolute() else root / p
        if not cand.exists() and p.exists():
            cand = p
        if not cand.exists():
            raise DataError(
                f"{what} not found: {cand}; check data.source.{'train' if 'train' in what else 'test'}_list"
            )
        return cand
    if default is None:
        return None
    cand = root / default
    if cand.exists():
        return cand
    if required:
        raise DataError(f"{what} not found: {cand}; set data.source.train_list to the list file")
    return None


def _parse_track1_csv(path: Path, base: Path, split: str, id_names: list[str]) -> Iterator[ListEntry | Skipped]:
    """ARID 1.1 track-1 / synth CSV; labels by ARID id -> name."""
    lines = _read_lines(path)
    rows = list(csv.reader(lines))
    if not rows or [c.strip() for c in rows[0]] != TRACK1_HEADER:
        first = lines[0] if lines else "<empty file>"
        raise DataError(
            f"{path}: expected an ARID 1.1 track-1 CSV with header `VideoID,Video,ClassID`, got first line {first!r}; "
            "check data.source.format and the list path"
        )
    for i, row in enumerate(rows[1:], 2):
        if not row or not "".join(row).strip():
            continue
        if len(row) != 3 or not row[2].strip().lstrip("-").isdigit():
            yield Skipped(row[1].strip() if len(row) > 1 else "", f"malformed line {','.join(row)!r}", str(path), i)
            continue
        video, cid = row[1].strip(), int(row[2])
        if not video:
            yield Skipped("", "malformed line: empty Video field", str(path), i)
            continue
        name = id_names[cid] if 0 <= cid < len(id_names) and id_names[cid] else None
        if name is None:
            yield Skipped(video, f"unknown class id {cid} (known ids 0..{len(id_names) - 1})", str(path), i)
            continue
        yield ListEntry(str(path), i, video, base, name, split)


def _parse_arid_v1(path: Path, base: Path, split: str, id_names: list[str]) -> Iterator[ListEntry | Skipped]:
    lines = _read_lines(path)
    first = next((ln for ln in lines if ln), "")
    fields = first.split("\t") if "\t" in first else first.split()
    if len(fields) != 3 or not (fields[0].isdigit() and fields[1].isdigit()):
        raise DataError(
            f"{path}: expected an ARID v1 split list with lines `row<TAB>class_id<TAB>Class/Class_G_K.avi`, got "
            f"{first!r}; check data.source.format"
        )
    for i, line in enumerate(lines, 1):
        if not line:
            continue
        f = line.split("\t") if "\t" in line else line.split()
        if len(f) != 3 or not f[1].strip().isdigit():
            yield Skipped(f[-1] if f else "", f"malformed line {line!r}", str(path), i)
            continue
        cid, video = int(f[1]), f[2].strip()
        if not (0 <= cid < len(id_names) and id_names[cid]):
            yield Skipped(video, f"unknown class id {cid} (known ids 0..{len(id_names) - 1})", str(path), i)
            continue
        yield ListEntry(str(path), i, video, base, id_names[cid], split)


def _parse_hmdb51_all(split_dir: Path, root: Path, wanted: set[str]) -> Iterator[ListEntry | Skipped]:
    """`split: all`: every clip the split files name (train, test and unused lines of all splits), each once, as
    training data (the paper adds all 1,420 clips of the six classes to ARID's training set)."""
    seen: set[str] = set()
    present = [k for k in (1, 2, 3) if any(split_dir.glob(f"*_test_split{k}.txt"))] or [1]
    for k in present:  # every split file lists every clip of its class; read whichever splits are there
        for item in _parse_hmdb51(split_dir, root, k, wanted, keep_unused=True):
            if isinstance(item, Skipped):
                yield item
                continue
            path, line, video, base, cls, _ = item
            if video not in seen:
                seen.add(video)
                yield ListEntry(path, line, video, base, cls, "train")


def _parse_hmdb51(
    split_dir: Path, root: Path, k: int, wanted: set[str], keep_unused: bool = False
) -> Iterator[ListEntry | Skipped]:
    files = sorted(split_dir.glob(f"*_test_split{k}.txt"))
    if not files:
        raise DataError(
            f"{split_dir}: no HMDB51 split files `<class>_test_split{k}.txt`; set data.source.train_list to the "
            "folder holding them (testTrainMulti_7030_splits)"
        )
    found = {f.name[: -len(f"_test_split{k}.txt")].lower(): f for f in files}
    missing = sorted(wanted - set(found))
    if missing:
        raise DataError(f"{split_dir}: no split file for class(es) {', '.join(missing)}; check data.source.classes")
    for cls, f in sorted(found.items()):
        if wanted and cls not in wanted:
            continue
        for i, line in enumerate(_read_lines(f), 1):
            if not line:
                continue
            parts = line.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                yield Skipped(parts[0] if parts else "", f"malformed line {line!r} (expected `<video>.avi 0|1|2`)",
                              str(f), i)  # fmt: skip
                continue
            if parts[1] == "0" and not keep_unused:  # unused in this split: not an error
                continue
            split = "train" if parts[1] in ("0", "1") else "test"
            yield ListEntry(str(f), i, f"{cls}/{parts[0]}", root, cls, split)


def _parse_folders(root: Path) -> Iterator[ListEntry | Skipped]:
    tops = [(root / "train", "train"), (root / "test", "test")]
    if not all(p.is_dir() for p, _ in tops):
        tops = [(root, "train")]
    for top, split in tops:
        classes = sorted(d for d in top.iterdir() if d.is_dir() and not d.name.startswith("."))
        if not classes:
            raise DataError(f"{top}: no class folders; the folders format expects <root>/<Class>/<video> files")
        for d in classes:
            for f in sorted(d.iterdir()):
                if f.is_file() and f.suffix.lower() in VIDEO_EXTS and not f.name.startswith("."):
                    yield ListEntry("", 0, str(f.relative_to(root)), root, d.name, split)


def _parse_plain_list(path: Path, root: Path, split: str, frames: bool, label_names: list[str]):
    n_fields = 3 if frames else 2
    expected = "`frame_dir num_frames label`" if frames else "`path label`"
    lines = _read_lines(path)
    first = next((ln for ln in lines if ln), "")
    if len(first.rsplit(maxsplit=n_fields - 1)) != n_fields or (frames and not first.split()[-2].isdigit()):
        raise DataError(f"{path}: expected list lines {expected}, got {first!r}; check data.source.format")
    for i, line in enumerate(lines, 1):
        if not line or line.startswith("#"):
            continue
        parts = line.rsplit(maxsplit=n_fields - 1)
        if len(parts) != n_fields or (frames and not parts[1].isdigit()):
            yield Skipped(parts[0], f"malformed line {line!r} (expected {expected})", str(path), i)
            continue
        rel, label = parts[0], parts[-1]
        name: str | None = label
        if label.lstrip("-").isdigit():
            idx = int(label)
            if label_names:
                name = label_names[idx] if 0 <= idx < len(label_names) else None
            else:
                parent = Path(rel).parent.name
                name = parent if parent not in ("", ".") else f"label{idx}"
            if name is None:
                yield Skipped(rel, f"unknown class index {idx} ({len(label_names)} label_names)", str(path), i)
                continue
        yield ListEntry(str(path), i, rel, root, name, split)


def _parse_track1(src, root: Path, fmt: str) -> Iterator[ListEntry | Skipped]:
    """ARID 1.1 track 1 (`arid-csv`) and the synthetic dataset in its layout (`synth`)."""
    ids = read_mapping_table(Path(src.mapping) if src.mapping else None)
    if fmt == "synth":
        ids = _synth_class_names(root, ids)
        train, test = ("train.csv", "test.csv")
        base_train = base_test = root / "videos"
    else:
        train, test = ("ARID1.1_t1_train_pub.csv", "ARID1.1_t1_test_pub.csv")
        base_train, base_test = root, Path(src.test_root) if src.test_root else root / "test"
    tr = _list_path(src.train_list, root, train, "train list")
    yield from _parse_track1_csv(tr, base_train, "train", ids)
    te = _list_path(src.test_list, root, test, "test list", required=False)
    if te is not None:
        for item in _parse_track1_csv(te, base_test, "test", ids):
            if fmt == "arid-csv" and not src.test_root and isinstance(item, ListEntry):
                # bare `N.mp4` names live in <root>/test: keep `test/` in the path so ids read `test__N`
                item = item._replace(rel="test/" + item.rel, base=root)
            yield item


def _parse_arid_v1_source(src, root: Path) -> Iterator[ListEntry | Skipped]:
    mapping = Path(src.mapping) if src.mapping else root / "mapping_table.txt"
    ids = read_mapping_table(mapping if mapping.is_file() else None)
    k = src.split
    if str(k).lower() == "all":
        raise DataError("data.source.split=all is for hmdb51; ARID v1 has splits 1, 2 and 3")
    tr = _list_path(src.train_list, root, f"ARID_split{k}_train.txt", "train list")
    yield from _parse_arid_v1(tr, root, "train", ids)
    te = _list_path(src.test_list, root, f"ARID_split{k}_test.txt", "test list", required=False)
    if te is not None:
        yield from _parse_arid_v1(te, root, "test", ids)


def _parse_hmdb51_source(src, root: Path) -> Iterator[ListEntry | Skipped]:
    if src.train_list:
        split_dir = _list_path(src.train_list, root, None, "train list (HMDB51 split folder)")
    else:
        split_dir = next((d for d in (root / "testTrainMulti_7030_splits", root / "splits") if d.is_dir()), root)
    wanted = {c.lower() for c in src.classes}
    if str(src.split).lower() not in ("1", "2", "3", "all"):
        raise DataError(f"data.source.split={src.split!r}: HMDB51 has splits 1, 2 and 3, or 'all' (every clip)")
    if str(src.split).lower() == "all":
        yield from _parse_hmdb51_all(split_dir, root, wanted)
    else:
        yield from _parse_hmdb51(split_dir, root, int(src.split), wanted)


def _parse_lists(src, root: Path, frames: bool) -> Iterator[ListEntry | Skipped]:
    """`list` / `frames-list`: `path label` lines in train.txt / test.txt."""
    tr = _list_path(src.train_list, root, "train.txt", "train list")
    yield from _parse_plain_list(tr, root, "train", frames, src.label_names)
    te = _list_path(src.test_list, root, "test.txt", "test list", required=False)
    if te is not None:
        yield from _parse_plain_list(te, root, "test", frames, src.label_names)


@dataclass(frozen=True)
class Format:
    """A dataset layout: `parse(source, root)` yields the listed videos, `group(stem, class)` names the recording
    group of one (takes of one group stay on one side of a train/val split)."""

    parse: Callable[[Any, Path], Iterator[ListEntry | Skipped]]
    group: Callable[[str, str], str] = lambda stem, cls: ""


def _arid_group(stem: str, cls: str) -> str:
    return arid_group(stem)


# `data.source.format` -> its layout; adding a format is one entry here and its name in config.SourceFormat
PARSERS: dict[str, Format] = {
    "synth": Format(lambda src, root: _parse_track1(src, root, "synth"), _arid_group),
    "arid-csv": Format(lambda src, root: _parse_track1(src, root, "arid-csv"), _arid_group),
    "arid-v1": Format(_parse_arid_v1_source, _arid_group),
    "hmdb51": Format(_parse_hmdb51_source, hmdb51_movie),
    "folders": Format(lambda src, root: _parse_folders(root)),
    "list": Format(lambda src, root: _parse_lists(src, root, frames=False)),
    "frames-list": Format(lambda src, root: _parse_lists(src, root, frames=True)),
}


def _format(src) -> Format:
    if src.format not in PARSERS:
        from darkaction.errors import ConfigError

        raise ConfigError(f"data.source.format {src.format!r} is not one of {', '.join(PARSERS)}")
    return PARSERS[src.format]


def _parse_source(src, root: Path) -> Iterator[ListEntry | Skipped]:
    parse = _format(src).parse
    if not root.is_dir():
        raise DataError(f"dataset root not found: {root}; set data.source.root (format {src.format})")
    yield from parse(src, root)


# ---------------------------------------------------------------------------------------------- building


def _safe_id(text: str) -> str:
    text = text.replace("\\", "/").strip("/")
    text = "__".join(p for p in text.split("/") if p)
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


def _collect(src, prefix: str, seen: dict[str, str], used_ids: set[str], check_files: bool = True):
    """Parse one source and check each entry; yields (record without label, class name) or Skipped."""
    root = Path(os.path.abspath(src.root))
    wanted = {c.lower() for c in src.classes}
    frames = src.format == "frames-list"
    for item in _parse_source(src, root):
        if isinstance(item, Skipped):
            yield item
            continue
        list_file, line, rel, base, cls, split = item
        name = cls.lower()
        if wanted and name not in wanted:
            continue  # filtered out on purpose: not bad input
        base = Path(os.path.abspath(base))
        path = os.path.normpath(rel if os.path.isabs(rel) else os.path.join(base, rel))
        if os.path.commonpath([path, str(base)]) != str(base):
            yield Skipped(rel, f"path escapes the dataset folder {base}", list_file, line)
            continue
        if path in seen:
            yield Skipped(rel, f"duplicate entry (first listed at {seen[path]})", list_file, line)
            continue
        seen[path] = f"{list_file}:{line}" if list_file else path
        p = Path(path)
        if not check_files:
            pass
        elif frames:
            if not p.is_dir():
                yield Skipped(path, "missing frame folder", list_file, line)
                continue
        elif not p.is_file():
            yield Skipped(path, "missing file", list_file, line)
            continue
        elif p.stat().st_size == 0:
            yield Skipped(path, "empty file (0 bytes)", list_file, line)
            continue
        key = os.path.relpath(path, base)  # ids follow the list's own paths: `Run/Run_1_1.mp4` -> `Run__Run_1_1`
        vid = _safe_id(prefix + os.path.splitext(key)[0] if not frames else prefix + key)
        base_id, n = vid, 2
        while vid in used_ids:
            vid, n = f"{base_id}-{n}", n + 1
        used_ids.add(vid)
        stem = p.stem if not frames else p.name
        group = _format(src).group(stem, name)
        yield VideoRecord(vid, path, -1, split, group, src.format), name


def split_train_val(
    records: list[VideoRecord], fraction: float, seed: int, group_disjoint: bool = False
) -> tuple[list[VideoRecord], list[VideoRecord]]:
    """Split train records into (train, val); reproducible from `seed`, independent of list order.

    Plain: stratified by label, `round(fraction * n)` clips in val in total (1837 -> 1470 / 367 at 0.2).
    Group-disjoint: whole groups (records with an empty group are their own group) go to val, in a seeded order, while
    that brings val closer to the same target; no group has clips on both sides.
    """
    if fraction <= 0 or not records:
        return list(records), []
    if fraction >= 1:
        raise ValueError(f"val_fraction must be < 1, got {fraction}")
    rng = np.random.default_rng(seed)
    ordered = sorted(records, key=lambda r: r.video_id)
    target = int(round(fraction * len(ordered)))
    val_ids: set[str] = set()
    if group_disjoint:
        groups: dict[str, list[VideoRecord]] = defaultdict(list)
        for r in ordered:
            groups[r.group or f"id:{r.video_id}"].append(r)
        names = sorted(groups)
        count = 0
        for gi in rng.permutation(len(names)):
            size = len(groups[names[gi]])
            if abs(count + size - target) < abs(count - target):
                val_ids.update(r.video_id for r in groups[names[gi]])
                count += size
    else:
        by_label: dict[int, list[VideoRecord]] = defaultdict(list)
        for r in ordered:
            by_label[r.label].append(r)
        labels = sorted(by_label)
        exact = {c: fraction * len(by_label[c]) for c in labels}
        quota = {c: int(np.floor(exact[c])) for c in labels}
        # largest remainders get the leftover clips so the total is exactly `target`
        for c in sorted(labels, key=lambda c: (-(exact[c] - quota[c]), c))[: max(0, target - sum(quota.values()))]:
            quota[c] += 1
        for c in labels:
            perm = rng.permutation(len(by_label[c]))[: quota[c]]
            val_ids.update(by_label[c][i].video_id for i in perm)
    train = [r for r in records if r.video_id not in val_ids]
    val = [dataclasses.replace(r, split="val") for r in records if r.video_id in val_ids]
    return train, val


def build_index(data, check_files: bool = True) -> tuple[DatasetIndex, list[Skipped]]:
    """Parse `data.source` (+ `data.extra_train`) into one index with a shared label space.

    Returns the index (splits train / val / test) and the entries left out with reasons. `check_files=False` parses
    the lists only (no missing / empty file checks: for list statistics without the videos). Raises `DataError` for a
    list in the wrong format, a missing root or list, or when no usable training clip remains.
    """
    seen: dict[str, str] = {}
    used: set[str] = set()
    skipped: list[Skipped] = []
    pending: list[tuple[VideoRecord, str, bool]] = []  # (record, class name, from main source)
    sources = [(data.source, "", True)] + [(s, f"extra{i}-", False) for i, s in enumerate(data.extra_train, 1)]
    for src, prefix, main in sources:
        for item in _collect(src, prefix, seen, used, check_files):
            if isinstance(item, Skipped):
                skipped.append(item)
            else:
                rec, name = item
                if not main:
                    rec.split = "train"  # extra sources only ever add training clips
                pending.append((rec, name, main))
    classes = sorted({name for _, name, _ in pending})
    label_of = {c: i for i, c in enumerate(classes)}
    records = []
    for rec, name, _ in pending:
        rec.label = label_of[name]
        records.append(rec)
    main_train = [r for (r, _, m) in pending if m and r.split == "train"]
    train, val = split_train_val(main_train, data.val_fraction, data.split_seed, data.val_group_disjoint)
    if data.val_fraction > 0 and main_train and (not val or not train):
        raise DataError(
            f"cannot hold out val_fraction={data.val_fraction} of {len(main_train)} train clips "
            f"(group-disjoint={data.val_group_disjoint}: too few groups?); change data.val_fraction"
        )
    val_by_id = {r.video_id: r for r in val}
    records = [val_by_id.get(r.video_id, r) for r in records]
    info = {
        "source": dataclasses.asdict(data.source),
        "extra_train": [dataclasses.asdict(s) for s in data.extra_train],
        "val_fraction": data.val_fraction,
        "val_group_disjoint": data.val_group_disjoint,
        "split_seed": data.split_seed,
    }
    return DatasetIndex(classes, records, info), skipped
