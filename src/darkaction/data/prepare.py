"""`prepare`: index a dataset and decode every video once into the frame cache (resumable, parallel, atomic).

    prepared = prepare(cfg)                 # <prepared>/index.json, skipped.json, prepare.json, frames/<key>/
    index, cache = open_prepared(cfg)       # what training reads

Re-running continues where a killed run stopped (entries are committed one by one), does no work on an unchanged
dataset (each entry stores the source's size + mtime), and re-extracts a changed source. Bad videos are listed in
`skipped.json` with the reason (and remembered in the cache's `.failures.json` so unchanged bad files are not decoded
again); the job fails only with `cache.strict` or when no usable training clip remains.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing as mp
import time
import zlib
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

import numpy as np

from darkaction.data.cache import FrameCache, cache_key, resize_settings, source_signature
from darkaction.data.index import DatasetIndex, Skipped, build_index
from darkaction.errors import DataError
from darkaction.utils import progress_bar, read_json, write_json

log = logging.getLogger(__name__)

FAILURES_FILE = ".failures.json"


def frames_dir(cfg) -> Path:
    """`<prepared>/frames/<cache_key>`: the raw (not enhanced) frame cache for `cfg.cache`."""
    return Path(cfg.data.prepared) / "frames" / cache_key(cfg.cache)


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)  # one process per core already; OpenCV's own threads would only contend


def _extract(job: tuple[str, str, str, dict, dict]) -> tuple[str, int, list[str], str]:
    """Decode one video into the cache. Returns (video_id, n_frames, warnings, error reason or '')."""
    from darkaction.data.video import decode

    video_id, path, root, settings, signature = job
    try:
        if settings.get("crop") == "actor":
            from darkaction.data.actor import decode_cropped

            frames, info = decode_cropped(path, (settings["height"], settings["width"]), settings["crop_scale"])
        else:
            frames, info = decode(
                path,
                resize=settings["resize"],
                height=settings.get("height", 0),
                width=settings.get("width", 0),
                short_side=settings.get("short_side", 0),
            )
    except DataError as e:
        return video_id, 0, [], str(e).removeprefix(f"{path}: ")
    except Exception as e:  # anything else from a broken file must not stop the job
        return video_id, 0, [], f"{type(e).__name__}: {e}"
    stats = {k: info[k] for k in ("channel_mean", "channel_sqmean", "warnings")}
    _put(root, video_id, frames, path, info, round(info["mean_brightness"], 4), signature, settings, stats)
    return video_id, int(frames.shape[0]), info["warnings"], ""


def _put(root, cache_id: str, frames, path: str, info: dict, brightness: float, signature: dict, settings: dict,
         extra: dict | None = None) -> None:  # fmt: skip
    """Store one cache entry with the metadata every entry carries: the source and its size, its signature (what
    makes the entry current), the resize settings."""
    meta = {
        "fps": info["fps"],
        "src_height": info["src_height"],
        "src_width": info["src_width"],
        "mean_brightness": brightness,
        **(extra or {}),
        "source": path,
        **signature,
        **{k: v for k, v in settings.items() if k != "format"},
    }
    FrameCache(root).put(cache_id, frames, meta)


def _extract_dark(job: tuple[str, str, str, dict, dict]) -> tuple[str, int, list[str], str]:
    """Record one dark copy of a training video (`augment.darken`) into the cache: decode at the source size,
    darken (`data.lowlight`), resize as `_extract` does. Returns what `_extract` returns."""
    from darkaction.data.lowlight import darken_iter
    from darkaction.data.video import _resize_into, decode, output_size

    copy_id, path, root, settings, signature = job
    try:
        frames, info = decode(path, resize="none")  # the source once; the copy streams frame by frame from it
        p = signature["darken"]
        size = output_size(*frames.shape[1:3], settings["resize"], settings.get("height", 0),
                           settings.get("width", 0), settings.get("short_side", 0))  # fmt: skip
        out = np.empty((len(frames), *size, 3), np.uint8)
        dark = darken_iter(frames, p["level"], p["photons"], p["read_noise"], p["crf"], seed=p["noise_seed"])
        for f, dst in zip(dark, out, strict=True):
            _resize_into(f, size, dst)
    except DataError as e:
        return copy_id, 0, [], str(e).removeprefix(f"{path}: ")
    except Exception as e:
        return copy_id, 0, [], f"{type(e).__name__}: {e}"
    _put(root, copy_id, out, path, info, round(float(out.mean()), 4), signature, settings)
    return copy_id, len(out), [], ""


def dark_copies(cfg, index: DatasetIndex) -> dict[str, list[tuple[str, dict]]]:
    """{training video_id: [(copy id, its darkening), ...]} for `augment.darken` ({} when off). Each copy's camera
    is drawn from a stream keyed by (darken.seed, video id, k), so a copy never changes unless its settings do."""
    from darkaction.data.lowlight import check_darken, dark_copy_id, draw_darkening

    d = cfg.augment.darken
    check_darken(d)
    out: dict[str, list[tuple[str, dict]]] = {}
    if not d.copies:
        return out
    for r in index.split("train"):
        key = zlib.crc32(r.video_id.encode())
        out[r.video_id] = [
            (dark_copy_id(r.video_id, k),
             {**draw_darkening(d, np.random.default_rng([d.seed, key, k])), "noise_seed": [d.seed, key, k, 1]})
            for k in range(1, int(d.copies) + 1)
        ]  # fmt: skip
    return out


def cache_entries(cfg, index: DatasetIndex) -> list[tuple[str, str, dict]]:
    """Every (cache id, source path, darkening or {}) the frame caches hold for `cfg`: the indexed videos, then the
    dark copies of the training videos (`augment.darken`)."""
    by_id = index.by_id()
    entries = [(r.video_id, r.path, {}) for r in index.records]
    for vid, copies in dark_copies(cfg, index).items():
        entries += [(cid, by_id[vid].path, p) for cid, p in copies]
    return entries


def _run_jobs(jobs: list, workers: int, fn=_extract):
    """Yield `fn` (`_extract` or `_extract_dark`) results as they finish; a process pool when workers > 1."""
    if workers <= 1 or len(jobs) <= 1:
        _init_worker()
        for j in jobs:
            yield fn(j)
        return
    ctx = mp.get_context("forkserver")  # fork after torch/OpenMP threads start can deadlock; forkserver cannot
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker) as pool:
        pending = set()
        it = iter(jobs)
        # keep a bounded queue so a strict failure cancels little work and memory stays flat
        for j in it:
            pending.add(pool.submit(fn, j))
            if len(pending) >= 2 * workers:
                break
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    yield f.result()
                    nxt = next(it, None)
                    if nxt is not None:
                        pending.add(pool.submit(fn, nxt))
        finally:
            for f in pending:
                f.cancel()


def prepare(cfg, progress: bool = True) -> Path:
    """Build `<prepared>/index.json` and the frame cache for `cfg.data` / `cfg.cache`; returns the prepared folder.

    Writes `skipped.json` (file, reason, list file, line) and `prepare.json` (what this run did: decoded, reused,
    failed, frames, seconds). Raises `DataError` when nothing usable remains, or on the first bad entry with
    `cfg.cache.strict`.
    """
    from darkaction.data.actor import check_crop_config
    from darkaction.data.lowlight import check_darken_config

    t0 = time.perf_counter()
    check_darken_config(cfg)  # before hours of decoding, not after
    check_crop_config(cfg)
    prepared = Path(cfg.data.prepared)
    prepared.mkdir(parents=True, exist_ok=True)
    index, skipped = build_index(cfg.data)
    if cfg.cache.strict and skipped:
        _write_skipped(prepared, skipped)
        raise DataError(
            f"{len(skipped)} bad list entries (strict mode), first: {skipped[0]}; see {prepared}/skipped.json"
        )
    settings = resize_settings(cfg.cache)
    cache = FrameCache(frames_dir(cfg), settings=settings)
    cache.clean_temporaries()  # leftovers of a killed run; prepare is the only writer of this cache
    failures_path = cache.root / FAILURES_FILE
    failures: dict[str, dict] = read_json(failures_path) if failures_path.is_file() else {}

    jobs, reused, failed_before = [], 0, []
    by_id = index.by_id()
    for r in index.records:
        sig = source_signature(r.path)
        if cache.is_current(r.video_id, sig):
            reused += 1
        elif failures.get(r.video_id, {}).get("signature") == sig:
            failed_before.append(Skipped(r.path, failures[r.video_id]["reason"]))  # unchanged bad file
        else:
            jobs.append((r.video_id, r.path, str(cache.root), settings, sig))
    # long videos first: the pool's tail is then short ones and the workers finish together
    jobs.sort(key=lambda j: -j[4]["src_bytes"])

    decoded = frames_total = 0
    failed: list[Skipped] = list(failed_before)
    warnings: dict[str, list[str]] = {}
    bar = progress_bar(total=len(jobs), desc="prepare", unit="video", disable=not progress or not jobs)
    try:
        for vid, n, warns, reason in _run_jobs(jobs, cfg.cache.workers):
            bar.update(1)
            path = by_id[vid].path
            if reason:
                failed.append(Skipped(path, reason))
                failures[vid] = {"signature": next(j[4] for j in jobs if j[0] == vid), "reason": reason}
                if cfg.cache.strict:
                    raise DataError(f"{path}: {reason} (strict mode: stopped; drop --strict to skip bad videos)")
                continue
            failures.pop(vid, None)
            decoded += 1
            frames_total += n
            if warns:
                warnings[path] = warns
            bar.set_postfix(fps=f"{frames_total / max(bar.format_dict['elapsed'], 1e-6):.0f}", refresh=False)
    finally:
        bar.close()
        write_json(failures_path, failures)
        _write_skipped(prepared, skipped + failed)

    bad_ids = {s.file for s in failed}
    cache = FrameCache(cache.root)  # fresh handle: workers rewrote entries whose metadata this one memoised
    kept = []
    for r in index.records:
        if r.path in bad_ids or r.video_id not in cache:
            continue
        kept.append(dataclasses.replace(r, n_frames=int(cache.meta(r.video_id)["n_frames"])))
    index = DatasetIndex(index.classes, kept, {**index.info, "cache_key": cache_key(cfg.cache)})
    if not index.split("train"):
        raise DataError(
            f"no usable training video remains ({len(skipped) + len(failed)} skipped, see {prepared}/skipped.json); "
            f"check data.source.root={cfg.data.source.root} and the list files"
        )
    index.save(prepared / "index.json")  # first: the copies are the slow part, and the index does not list them
    dark_made, dark_failed = _make_dark_copies(cfg, index, cache, settings, progress)
    seconds = time.perf_counter() - t0
    summary = {
        "records": len(kept),
        "splits": {s: len(index.split(s)) for s in ("train", "val", "test")},
        "classes": index.classes,
        "decoded": decoded,
        "reused": reused,
        "failed": len(failed),
        "skipped_entries": len(skipped),
        "frames_decoded": frames_total,
        "dark_copies_made": dark_made,
        "dark_copies_failed": dark_failed,
        "seconds": round(seconds, 3),
        "frames_per_second": round(frames_total / seconds, 1) if seconds > 0 else 0.0,
        "warnings": warnings,
        "cache": str(cache.root),
    }
    write_json(prepared / "prepare.json", summary)
    if progress:
        _print_summary(summary, skipped + failed, prepared)
    if dark_failed:  # its source decoded, so the simulation itself failed: training would lack the copy
        first = dark_failed[0]
        raise DataError(
            f"{len(dark_failed)} dark copies (augment.darken) could not be made, first {first['copy']}: "
            f"{first['reason']}; all in {prepared / 'prepare.json'} (dark_copies_failed)"
        )
    return prepared


def _make_dark_copies(cfg, index: DatasetIndex, cache: FrameCache, settings: dict, progress: bool):
    """Record the dark copies `augment.darken` asks for that the cache lacks or holds with other settings
    (resumable: one entry at a time). Returns (made, [{copy id, reason}] of copies that failed)."""
    jobs = []
    for cid, path, darkening in cache_entries(cfg, index):
        if darkening:
            sig = {**source_signature(path), "darken": darkening}
            if not cache.is_current(cid, sig):
                jobs.append((cid, path, str(cache.root), settings, sig))
    made, failed = 0, []
    bar = progress_bar(total=len(jobs), desc="dark copies", unit="video", disable=not progress or not jobs)
    with bar:
        for cid, _, _, reason in _run_jobs(jobs, cfg.cache.workers, _extract_dark):
            bar.update(1)
            if reason:
                failed.append({"copy": cid, "reason": reason})
            else:
                made += 1
    return made, failed


def _write_skipped(prepared: Path, skipped: list[Skipped]) -> None:
    write_json(prepared / "skipped.json", [dataclasses.asdict(s) for s in skipped])


def _print_summary(summary: dict[str, Any], skipped: list[Skipped], prepared: Path) -> None:
    sp = summary["splits"]
    log.info(
        f"prepared {summary['records']} videos (train {sp['train']}, val {sp['val']}, test {sp['test']}; "
        f"{len(summary['classes'])} classes) in {prepared}"
    )
    log.info(
        f"  decoded {summary['decoded']} ({summary['frames_decoded']} frames, {summary['frames_per_second']} fps), "
        f"reused {summary['reused']} cached, skipped {len(skipped)}"
    )
    if summary["dark_copies_made"] or summary["dark_copies_failed"]:
        log.info(f"  dark copies of training videos (augment.darken): made {summary['dark_copies_made']}, "
                 f"failed {len(summary['dark_copies_failed'])}")  # fmt: skip
    for s in skipped[:20]:
        log.info(f"  skipped {s}")
    if len(skipped) > 20:
        log.info(f"  ... and {len(skipped) - 20} more in {prepared / 'skipped.json'}")
    for path, warns in list(summary["warnings"].items())[:10]:
        log.info(f"  warning {path}: {'; '.join(warns)}")


def open_prepared(cfg) -> tuple[DatasetIndex, FrameCache]:
    """The prepared index and raw frame cache for `cfg`; `DataError` saying "run darkaction prepare" when missing or
    built from another data config or other cache settings."""
    prepared = Path(cfg.data.prepared)
    hint = "run `darkaction prepare` with this config first"
    if not (prepared / "index.json").is_file():
        raise DataError(f"{prepared / 'index.json'} not found; {hint}")
    index = DatasetIndex.load(prepared / "index.json")
    want = {
        "source": dataclasses.asdict(cfg.data.source),
        "extra_train": [dataclasses.asdict(s) for s in cfg.data.extra_train],
        "val_fraction": cfg.data.val_fraction,
        "val_group_disjoint": cfg.data.val_group_disjoint,
        "split_seed": cfg.data.split_seed,
        "cache_key": cache_key(cfg.cache),
    }
    have = {k: index.info.get(k) for k in want}
    if have != want:
        diff = sorted(k for k in want if have[k] != want[k])
        raise DataError(f"{prepared / 'index.json'} was prepared with different settings ({', '.join(diff)}); {hint}")
    root = frames_dir(cfg)
    if not root.is_dir():
        raise DataError(f"frame cache {root} not found; {hint}")
    cache = FrameCache(root, settings=resize_settings(cfg.cache), create=False)
    missing = [r.video_id for r in index.records if r.video_id not in cache]
    if missing:
        raise DataError(f"{root}: {len(missing)} indexed videos are not cached (e.g. {missing[0]}); {hint}")
    return index, cache
