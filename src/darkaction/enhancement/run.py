"""Frozen enhancement of the prepared frame cache, still-image enhancement and the before/after preview figure.

    folder = enhance(cfg)              # <prepared>/enhanced/<fingerprint>/ (a FrameCache), resumable
    cache = training_cache(cfg)        # what training reads for cfg.enhance (the raw cache for identity)
    enhance_images(["a.png"], "Epoch99.pth", "out/", raw=True)
    preview(cfg, "preview.png")        # rows: frames; columns: raw, gamma, zero-dce, ... (the paper's Figure 6)

`enhance.at = cache` enhances the resized cached frames; `source` decodes the source video at full resolution,
enhances it and resizes it exactly as `prepare` does (slower: the network sees source-sized frames).
"""

from __future__ import annotations

import io
import logging
import time
from pathlib import Path

import cv2
import numpy as np

from darkaction.config import Config
from darkaction.enhancement.base import Enhancer, build_curve_enhancer, build_enhancer, default_weights_path
from darkaction.errors import DataError
from darkaction.utils import atomic_write_bytes, progress_bar, write_json

log = logging.getLogger(__name__)

SIGNATURE_KEYS = ("src_bytes", "src_mtime_ns", "n_frames", "darken")


def enhanced_dir(cfg: Config, enhancer: Enhancer) -> Path:
    """`<prepared>/enhanced/<fingerprint>`, with `_actor<scale>` for an actor-cropped cache (`cache.crop`), so the
    cropped and the whole-frame caches of one prepared folder each have their own."""
    from darkaction.data.actor import crop_tag

    return Path(cfg.data.prepared) / "enhanced" / f"{enhancer.fingerprint}{crop_tag(cfg.cache)}"


def _open_enhanced(cfg: Config, enhancer: Enhancer, raw_settings: dict, create: bool):
    from darkaction.data.cache import FrameCache

    # The raw cache's resize settings plus the fingerprint: a folder made for other settings is refused, never mixed.
    settings = {**raw_settings, "enhancer": enhancer.fingerprint}
    return FrameCache(enhanced_dir(cfg, enhancer), settings=settings, create=create)


def _is_current(enhanced, raw, video_id: str) -> bool:
    """An enhanced entry is reusable when it exists and was made from the raw entry as it is now."""
    if video_id not in enhanced:
        return False
    have, want = enhanced.meta(video_id), raw.meta(video_id)
    return all(have.get(k) == want.get(k) for k in SIGNATURE_KEYS)


def _enhance_at_source(enhancer: Enhancer, path: str, raw_meta: dict, batch: int) -> np.ndarray:
    """Decode at full resolution, enhance in batches, resize each frame to the cached size. -> uint8 T,h,w,3."""
    from darkaction.data.video import decode

    frames, _ = decode(path, resize="none")
    n = int(raw_meta["n_frames"])
    if len(frames) < n:
        raise DataError(f"{path}: decoded {len(frames)} frames at source size, the cache holds {n}; re-run prepare")
    h, w = int(raw_meta["height"]), int(raw_meta["width"])
    out = np.empty((n, h, w, 3), np.uint8)
    for i in range(0, n, batch):
        for j, f in enumerate(enhancer(frames[i : i + batch])):
            # INTER_AREA as prepare's resize: the two `at` modes differ only in where the enhancement happens.
            out[i + j] = f if f.shape[:2] == (h, w) else cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA)
    return out


def enhance(cfg: Config, progress: bool = True) -> Path:
    """Enhance every video of the prepared cache into `<prepared>/enhanced/<fingerprint>/`; returns that folder.

    Entries already enhanced from the same raw entry are skipped (resumable); a video that fails is listed in
    `skipped.json` there and the job goes on. identity: nothing to write, returns the raw cache folder.
    """
    from darkaction.data.actor import check_crop_config
    from darkaction.data.lowlight import check_darken_config
    from darkaction.data.prepare import cache_entries, open_prepared

    check_darken_config(cfg)
    check_crop_config(cfg)
    index, raw = open_prepared(cfg)
    enhancer = build_enhancer(cfg)
    if enhancer.name == "identity":
        if progress:
            log.info(f"identity enhancer: training reads the raw cache {raw.root}")
        return raw.root
    out = _open_enhanced(cfg, enhancer, raw.settings, create=True)
    records = cache_entries(cfg, index)  # the videos and the training videos' dark copies (augment.darken)
    missing = [vid for vid, _, _ in records if vid not in raw]
    if missing:
        raise DataError(f"{raw.root}: {len(missing)} entries not prepared (e.g. {missing[0]}); run darkaction prepare")
    todo = [(vid, path) for vid, path, _ in records if not _is_current(out, raw, vid)]
    skipped: list[dict] = []
    n_frames = 0
    t0 = time.perf_counter()
    bar = progress_bar(todo, desc=f"enhance {enhancer.fingerprint}", unit="video", disable=not progress)
    for vid, path in bar:
        meta = raw.meta(vid)
        try:
            if cfg.enhance.at == "source":
                frames = _enhance_at_source(enhancer, path, meta, cfg.enhance.batch_size)
            else:
                frames = enhancer(np.asarray(raw.frames(vid)))
        except DataError as e:
            skipped.append({"video_id": vid, "file": path, "reason": str(e)})
            continue
        meta.update(enhancer=enhancer.fingerprint, mean_brightness=float(frames.mean()))
        out.put(vid, frames, meta)
        n_frames += len(frames)
        bar.set_postfix(fps=f"{n_frames / max(time.perf_counter() - t0, 1e-9):.0f}", refresh=False)
    seconds = time.perf_counter() - t0
    write_json(out.root / "skipped.json", skipped)
    write_json(
        out.root / "enhance.json",
        {
            "enhancer": enhancer.fingerprint,
            "at": cfg.enhance.at,
            "videos": len(records),
            "enhanced_now": len(todo) - len(skipped),
            "reused": len(records) - len(todo),
            "skipped": len(skipped),
            "frames_now": n_frames,
            "seconds": round(seconds, 3),
            "frames_per_second": round(n_frames / seconds, 2) if n_frames else None,
        },
    )
    if progress:
        rate = f", {n_frames / seconds:.1f} frames/s" if n_frames else ""
        log.info(
            f"enhanced {len(todo) - len(skipped)} videos ({n_frames} frames{rate}), reused {len(records) - len(todo)}"
        )
        for s in skipped[:20]:
            log.info(f"  skipped {s['file']}: {s['reason']}")
    return out.root


def training_cache(cfg: Config, dark_copies: bool = True):
    """The FrameCache training reads for `cfg.enhance`: raw for identity, else the complete enhanced cache (with
    the training videos' dark copies of `augment.darken`; evaluation, which never reads them, passes False).

    Raises DataError("run darkaction enhance ...") when the enhanced cache is missing or incomplete.
    """
    from darkaction.data.prepare import cache_entries, open_prepared

    index, raw = open_prepared(cfg)
    entries = [(vid, darkening) for vid, _, darkening in cache_entries(cfg, index) if dark_copies or not darkening]
    # dark copies (augment.darken) that prepare has not made, or made with other settings than this config's
    stale = [vid for vid, d in entries if d and not raw.is_current(vid, {"darken": d})]
    if stale:
        raise DataError(
            f"{raw.root}: {len(stale)} dark copies of training videos missing or made with other augment.darken "
            f"settings (e.g. {stale[0]}); run `darkaction prepare` and `darkaction enhance` with this config"
        )
    ids = [vid for vid, _ in entries]
    enhancer = build_enhancer(cfg)
    if enhancer.name == "identity":
        return raw
    folder = enhanced_dir(cfg, enhancer)
    hint = f"run `darkaction enhance` with this config (enhance.method={cfg.enhance.method})"
    if not folder.is_dir():
        raise DataError(f"enhanced cache {folder} not found; {hint}")
    cache = _open_enhanced(cfg, enhancer, raw.settings, create=False)
    missing = [vid for vid in ids if not _is_current(cache, raw, vid)]
    if missing:
        raise DataError(f"{folder}: {len(missing)} videos not enhanced or stale (e.g. {missing[0]}); {hint}")
    return cache


# ---------------------------------------------------------------------------------------------- still images


def _png_bytes(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise DataError("PNG encoding failed")
    return buf.tobytes()


def enhance_images(
    paths: list[str | Path],
    weights: str | Path,
    out_dir: str | Path,
    method: str = "zero-dce",
    raw: bool = False,
    scale_factor: int = 1,
    precision: str = "fp32",
) -> list[Path]:
    """Enhance PNG/JPEG images -> `<out>/<stem>.png`; with `raw` also `<stem>.npy` (float32 H,W,3, unclamped)."""
    from darkaction.enhancement.train import read_image

    enh = build_curve_enhancer(method, weights, scale_factor=scale_factor, precision=precision, batch_size=1)
    out = Path(out_dir)
    written = []
    for p in progress_bar(paths, desc="enhance images", unit="image", disable=len(paths) < 4):
        img = read_image(p)[None]
        y = enh.enhance_float(img)[0]
        png = np.clip(np.round(np.clip(y, 0.0, 1.0) * 255.0), 0, 255).astype(np.uint8)
        written.append(atomic_write_bytes(out / f"{Path(p).stem}.png", _png_bytes(png)))
        if raw:
            buf = io.BytesIO()
            np.save(buf, y.astype(np.float32), allow_pickle=False)
            written.append(atomic_write_bytes(out / f"{Path(p).stem}.npy", buf.getvalue()))
    return written


# ---------------------------------------------------------------------------------------------- preview figure


def preview_enhancers(cfg: Config) -> list[Enhancer]:
    """Baselines plus every curve enhancer that has weights: gamma, the configured one, zero-dce / zero-dce++."""
    import dataclasses

    from darkaction.enhancement.classic import GammaEnhancer

    out: list[Enhancer] = [GammaEnhancer(cfg.enhance.gamma)]
    for method in ("zero-dce", "zero-dce++"):
        weights = cfg.enhance.weights if cfg.enhance.method == method and cfg.enhance.weights else ""
        path = Path(weights) if weights else default_weights_path(cfg, method)
        if path.is_file():
            sub = dataclasses.replace(cfg.enhance, method=method, weights=str(path))
            out.append(build_enhancer(dataclasses.replace(cfg, enhance=sub)))
    if cfg.enhance.method == "external" and cfg.enhance.external:
        out.append(build_enhancer(cfg))
    return out


def preview(cfg: Config, path: str | Path | None = None, n: int = 4) -> Path:
    """Before/after figure: n frames (middle frames of videos spread over the index) x (raw + each enhancer)."""
    from darkaction.data.prepare import open_prepared
    from darkaction.utils import figure, save_figure

    index, raw = open_prepared(cfg)
    records = index.records
    picks = [records[i] for i in np.linspace(0, len(records) - 1, min(n, len(records))).round().astype(int)]
    frames = np.stack([np.asarray(raw.frames(r.video_id)[int(raw.meta(r.video_id)["n_frames"]) // 2]) for r in picks])
    enhancers = preview_enhancers(cfg)
    columns = [("input", frames)] + [(e.fingerprint, e(frames)) for e in enhancers]
    fig, axes = figure(len(picks), len(columns), figsize=(2.6 * len(columns), 2.4 * len(picks)), squeeze=False)
    for j, (title, imgs) in enumerate(columns):
        for i in range(len(picks)):
            ax = axes[i, j]
            ax.imshow(imgs[i])
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(f"mean {imgs[i].mean():.0f}", fontsize=8)
            if i == 0:
                ax.set_title(title if len(title) < 28 else title[:26] + "..", fontsize=8)
            if j == 0:
                ax.set_ylabel(picks[i].video_id[:24], fontsize=7)
    fig.tight_layout()
    out = Path(path) if path else Path(cfg.data.prepared) / "enhanced" / "preview.png"
    return save_figure(fig, out, dpi=100)
