"""The optical-flow cache of the RGB + flow model (Table 3): flow of the frames training reads, computed once.

    build_flow_cache(cfg)      # resumable: Farneback flow of every video of `training_cache(cfg)` into a FrameCache
    open_flow_cache(cfg)       # what the RGB + flow dataset reads; a DataError naming the fix when it is missing

It lives here, above the data and enhancement layers, because which frames the flow is of (raw or enhanced) is the
training data's decision (`enhancement.run.training_cache`); `data.flow` holds the flow itself (encode, Farneback).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from darkaction.data.flow import FARNEBACK, FLOW_SCALE, flow_dir, flow_worker, init_flow_worker


def build_flow_cache(cfg, workers: int | None = None, progress: bool = True) -> Path:
    """Compute Farneback flow once for every video of the cache training reads (`enhance.training_cache(cfg)`, i.e.
    the enhanced frames when an enhancer is configured) into a FrameCache of `encode_flow` frames at
    `flow_dir(cfg, source)`. Resumable: videos whose flow is current are skipped; each entry records the size and
    mtime of the frames it came from, so flow of a re-prepared or re-enhanced video is recomputed. Returns the flow
    folder."""
    from concurrent.futures import ProcessPoolExecutor

    from darkaction.data.cache import FrameCache, source_signature
    from darkaction.enhancement.run import training_cache
    from darkaction.utils import progress_bar, write_json

    source = training_cache(cfg)
    source_root = Path(source.root)
    out = flow_dir(cfg, source_root)
    flow = FrameCache(out)
    videos = _videos(source)
    signatures = {v: source_signature(source_root / f"{v}.npy") for v in videos}
    todo = [v for v in videos if not flow.is_current(v, signatures[v])]
    write_json(out / "flow_settings.json", {"method": "farneback", "source": str(source_root), **FARNEBACK})
    workers = max(1, int(cfg.cache.workers if workers is None else workers))
    bar = progress_bar(total=len(todo), desc="optical flow", unit="video", disable=not progress or not todo)

    def store(video_id: str, encoded: np.ndarray, n: int) -> None:
        meta = {"n_frames": n, "flow": "farneback", "flow_scale": FLOW_SCALE, **signatures[video_id]}
        flow.put(video_id, encoded, meta)
        bar.update(1)

    if workers == 1 or len(todo) < 4:
        init_flow_worker()
        for v in todo:
            store(*flow_worker(str(source_root), v))
    else:
        import multiprocessing as mp

        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=init_flow_worker) as pool:
            for result in pool.map(flow_worker, [str(source_root)] * len(todo), todo, chunksize=4):
                store(*result)
    bar.close()
    return out


def _videos(cache) -> list[str]:
    """The cache's videos without the dark copies another config's `augment.darken` may have left beside them
    (flow is never made for those: `data.lowlight.check_darken_config`)."""
    from darkaction.data.lowlight import is_dark_copy

    return [v for v in cache.ids if not is_dark_copy(v)]


def open_flow_cache(cfg):
    """The flow FrameCache for `cfg` (what the RGB + flow dataset reads); a DataError when it was never built."""
    from darkaction.data.cache import FrameCache
    from darkaction.enhancement.run import training_cache
    from darkaction.errors import DataError

    source = training_cache(cfg)
    out = flow_dir(cfg, Path(source.root))
    flow = FrameCache(out) if out.is_dir() else None
    videos = _videos(source)
    missing = len(videos) if flow is None else sum(v not in flow for v in videos)
    if missing:
        raise DataError(
            f"optical-flow cache {out} is missing or incomplete ({missing} videos without flow): run "
            "`darkaction train` with model.in_channels=5 (it builds the flow cache first), `darkaction experiment 3 "
            "--rows flow`, or darkaction.training.flow_cache.build_flow_cache(cfg)"
        )
    return flow
