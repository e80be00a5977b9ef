"""Frame cache: one uint8 `T,H,W,3` RGB `.npy` per video plus a JSON metadata file that commits the entry.

    cache = FrameCache(prepared / "frames" / cache_key(cfg.cache), settings=resize_settings(cfg.cache))
    cache.put("Run__Run_1_1", frames, {"fps": 30.0})   # atomic: .npy via temp + rename, then <id>.json
    clip = cache.frames("Run__Run_1_1")[idx]             # read-only memmap; fancy indexing copies T frames only
    cache.meta("Run__Run_1_1")["n_frames"]

Layout of a cache folder: `settings.json` (resize settings; for enhanced caches the enhancer fingerprint),
`<video_id>.npy`, `<video_id>.json`. An entry exists only when its `.json` is there: the `.npy` is renamed into place
first, so a job killed at any moment leaves either a whole entry or none (a stray `.npy` without `.json` is ignored and
overwritten later). Memory-mapped `.npy` was chosen because a T=64 gather reads only the wanted frames (no decode, no
whole-file read); see benchmarks/bench_data.py.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from darkaction.errors import DataError
from darkaction.utils import read_json, write_json

SETTINGS_FILE = "settings.json"
CACHE_FORMAT = 1  # bump when the entry layout changes: old caches are then rebuilt, never misread


def resize_settings(cache_cfg) -> dict[str, Any]:
    """The settings that decide the cached pixels (`CacheConfig` -> plain dict; the actor crop only when on)."""
    from darkaction.errors import ConfigError

    crop = getattr(cache_cfg, "crop", "none")
    if crop not in ("none", "actor"):
        raise ConfigError(f"cache.crop must be 'none' or 'actor', got {crop!r}")
    if cache_cfg.resize == "fixed":
        s = {"format": CACHE_FORMAT, "resize": "fixed", "height": cache_cfg.height, "width": cache_cfg.width}
        if crop == "actor":
            scale = float(cache_cfg.crop_scale)
            if not 0.3 <= scale <= 1.0:
                raise ConfigError(f"cache.crop_scale must be in [0.3, 1] (the window's share of the frame): {scale}")
            from darkaction.data.actor import TRACKER_VERSION

            s.update(crop="actor", crop_scale=scale, tracker=TRACKER_VERSION)
        return s
    if cache_cfg.resize == "short_side":
        if crop != "none":
            raise ConfigError("cache.crop: actor needs cache.resize: fixed (the window is the cache's height x width)")
        return {"format": CACHE_FORMAT, "resize": "short_side", "short_side": cache_cfg.short_side}
    raise ConfigError(f"cache.resize must be 'fixed' or 'short_side', got {cache_cfg.resize!r}")


def cache_key(cache_cfg) -> str:
    """Folder name under `<prepared>/frames/` derived from the resize settings, e.g. `fixed_112x112`, `short_128`,
    `fixed_96x96_actor0.8`."""
    s = resize_settings(cache_cfg)
    if s["resize"] == "fixed":
        from darkaction.data.actor import crop_tag

        return f"fixed_{s['height']}x{s['width']}{crop_tag(cache_cfg)}"
    return f"short_{s['short_side']}"


def source_signature(path: str | os.PathLike) -> dict[str, int]:
    """Size and mtime (ns) of a video file, or for a frame folder the total size and newest mtime of its files."""
    p = Path(path)
    st = p.stat()
    if not p.is_dir():
        return {"src_bytes": st.st_size, "src_mtime_ns": st.st_mtime_ns}
    size, mtime = 0, st.st_mtime_ns
    with os.scandir(p) as it:
        for e in it:
            if e.is_file():
                est = e.stat()
                size += est.st_size
                mtime = max(mtime, est.st_mtime_ns)
    return {"src_bytes": size, "src_mtime_ns": mtime}


class FrameCache:
    """A folder of cached videos. `settings` (when given) is written on first use and must match afterwards.

    Entries: `frames(id) -> np.ndarray` (T,H,W,3) uint8 read-only memmap; `meta(id) -> dict` with at least
    `n_frames`, `height`, `width` (plus what the writer stored: fps, src size, brightness, signature, ...).
    """

    def __init__(self, root: str | os.PathLike, settings: dict[str, Any] | None = None, create: bool = True):
        self.root = Path(root)
        sfile = self.root / SETTINGS_FILE
        if not self.root.is_dir() and not create:
            raise DataError(f"frame cache not found: {self.root}; run `darkaction prepare` first")
        if sfile.is_file():
            self._settings = read_json(sfile)
            if settings is not None and _normalise(settings) != _normalise(self._settings):
                raise DataError(
                    f"{sfile}: cache was made with settings {self._settings}, not {settings}; "
                    "delete the folder or use another one"
                )
        elif settings is not None:
            self.root.mkdir(parents=True, exist_ok=True)
            write_json(sfile, settings)
            self._settings = dict(settings)
        elif create:
            self.root.mkdir(parents=True, exist_ok=True)
            self._settings = {}
        else:
            raise DataError(f"{self.root}: not a frame cache ({SETTINGS_FILE} missing); run `darkaction prepare`")
        self._meta: dict[str, dict] = {}

    # -------------------------------------------------------------------------------- reading

    @property
    def settings(self) -> dict[str, Any]:
        """Resize settings (and `enhancer` fingerprint for enhanced caches) as written in settings.json."""
        return dict(self._settings)

    @property
    def ids(self) -> list[str]:
        """Committed entries (sorted)."""
        out = []
        with os.scandir(self.root) as it:
            for e in it:
                n = e.name
                if n.endswith(".json") and n != SETTINGS_FILE and not n.startswith("."):
                    vid = n[:-5]
                    if (self.root / f"{vid}.npy").is_file():
                        out.append(vid)
        return sorted(out)

    def __contains__(self, video_id: str) -> bool:
        return (self.root / f"{video_id}.json").is_file() and (self.root / f"{video_id}.npy").is_file()

    def __len__(self) -> int:
        return len(self.ids)

    def frames(self, video_id: str) -> np.ndarray:
        """(T,H,W,3) uint8, a read-only memory map: index it (`arr[idx]`) to read only the frames needed."""
        if video_id not in self:
            raise DataError(f"{self.root}: no cached frames for {video_id!r}; run `darkaction prepare` (or enhance)")
        return np.load(self.root / f"{video_id}.npy", mmap_mode="r")

    def meta(self, video_id: str) -> dict[str, Any]:
        m = self._meta.get(video_id)
        if m is None:
            p = self.root / f"{video_id}.json"
            try:
                m = json.loads(p.read_text())
            except FileNotFoundError:
                raise DataError(f"{self.root}: no entry {video_id!r}; run `darkaction prepare` (or enhance)") from None
            self._meta[video_id] = m
        return dict(m)

    def verify(self, video_id: str) -> str:
        """'' when the entry is whole and consistent, else the reason it is not (used by tests and `prepare`)."""
        if video_id not in self:
            return "missing"
        try:
            m = self.meta(video_id)
            arr = self.frames(video_id)
        except (ValueError, OSError, DataError) as e:
            return f"unreadable: {e}"
        if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3:
            return f"bad array {arr.dtype} {arr.shape}"
        if arr.shape[0] != m.get("n_frames") or arr.shape[0] == 0:
            return f"{arr.shape[0]} frames stored, metadata says {m.get('n_frames')}"
        return ""

    def is_current(self, video_id: str, signature: dict) -> bool:
        """True when the entry exists and its metadata holds every item of `signature` (the source's size and mtime;
        a dark copy's camera)."""
        if video_id not in self:
            return False
        m = self.meta(video_id)
        return all(m.get(k) == v for k, v in signature.items())

    # -------------------------------------------------------------------------------- writing

    def put(self, video_id: str, frames: np.ndarray, meta: dict[str, Any] | None = None) -> None:
        """Store `frames` (T,H,W,3 uint8) atomically; `meta` is merged with n_frames/height/width.

        Order matters for crash safety: the `.npy` is renamed into place first, the `.json` (the commit marker) last.
        """
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
            raise ValueError(f"frames must be uint8 (T>0,H,W,3), got {frames.dtype} {frames.shape}")
        if not video_id or "/" in video_id or video_id.startswith("."):
            raise ValueError(f"video_id must be a plain file name, got {video_id!r}")
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / f"{video_id}.json").unlink(missing_ok=True)  # uncommit first: a crash below leaves no stale pair
        self._meta.pop(video_id, None)
        fd, tmp = tempfile.mkstemp(prefix=f".{video_id}.", suffix=".npy.tmp", dir=self.root)
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, np.ascontiguousarray(frames), allow_pickle=False)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.root / f"{video_id}.npy")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        full = dict(meta or {})
        full.update(n_frames=int(frames.shape[0]), height=int(frames.shape[1]), width=int(frames.shape[2]))
        write_json(self.root / f"{video_id}.json", full)

    def remove(self, video_id: str) -> None:
        (self.root / f"{video_id}.json").unlink(missing_ok=True)
        (self.root / f"{video_id}.npy").unlink(missing_ok=True)
        self._meta.pop(video_id, None)

    def clean_temporaries(self) -> int:
        """Delete temp files left by killed writers (call only when no other writer uses this cache)."""
        n = 0
        for p in self.root.glob(".*.tmp"):
            p.unlink(missing_ok=True)
            n += 1
        return n


def _normalise(d: dict) -> str:
    return json.dumps(d, sort_keys=True, default=str)
