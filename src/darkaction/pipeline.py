"""`demo(cfg) -> Path`: the whole pipeline on the built-in synthetic dataset (`make demo`, `darkaction demo`).

    synth -> prepare -> enhance train (Zero-DCE, briefly, on the synthetic frames) -> enhance -> train -> evaluate
    -> report, with configs/demo.yaml by default.

Every stage resumes or skips when its output is already there: the synthetic set is kept when its metadata matches
the config, prepare / enhance skip cached videos, Zero-DCE training resumes from its checkpoint, training resumes from
last.ckpt (or is skipped when it reached the last epoch) and evaluation re-runs (it takes seconds).
Returns the run directory; `results.json` there holds top1, mean_class_acc and n_test_videos.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "demo.yaml"  # package data (configs/ links here)


def _stage(name: str) -> float:
    log.info(f"\n== demo: {name}")
    return time.perf_counter()


def synth_is_current(cfg) -> bool:
    """Whether `cfg.synth.out` holds a complete synthetic dataset made with exactly `cfg.synth`'s settings."""
    from darkaction.data import synthetic
    from darkaction.utils import read_json

    out = Path(cfg.synth.out)
    meta = out / "metadata.json"
    if not (meta.is_file() and (out / "train.csv").is_file() and (out / "test.csv").is_file()):
        return False
    try:
        recorded = read_json(meta).get("config")
        return recorded == synthetic._recorded_config(cfg.synth)
    except (ValueError, AttributeError, TypeError):
        return False


def build_data(cfg, times: dict[str, float] | None = None) -> dict[str, float]:
    """The data stages for `cfg`, each skipped or resumed when done: render the synthetic set (when the source is
    `synth` and the set is missing or made with other settings), prepare, train Zero-DCE (when the config asks for
    a Zero-DCE without weights) and enhance. Returns seconds per stage."""
    from darkaction.data.prepare import prepare
    from darkaction.data.synthetic import synth
    from darkaction.enhancement.base import default_weights_path
    from darkaction.enhancement.run import enhance
    from darkaction.enhancement.train import enhance_train, is_trained

    times = {} if times is None else times
    if cfg.data.source.format == "synth":
        if Path(cfg.synth.out).resolve() != Path(cfg.data.source.root).resolve():
            from darkaction.errors import ConfigError

            raise ConfigError(
                f"synth.out ({cfg.synth.out}) and data.source.root ({cfg.data.source.root}) differ: the synthetic set "
                "would be rendered in one place and read from another; set both (and data.prepared) together"
            )
        t = _stage(f"synthetic dataset -> {cfg.synth.out}")
        if synth_is_current(cfg):
            log.info("already generated; skipped")
        else:
            synth(cfg.synth)
        times["synth"] = time.perf_counter() - t

    t = _stage(f"prepare -> {cfg.data.prepared}")
    prepare(cfg)
    times["prepare"] = time.perf_counter() - t

    if cfg.enhance.method in ("zero-dce", "zero-dce++") and not cfg.enhance.weights:
        t = _stage(f"enhance train ({cfg.enhance.method}, {cfg.enhance.train.epochs} epochs)")
        weights = default_weights_path(cfg)
        done = is_trained(weights.parent, cfg.enhance.train, cfg.enhance.method)
        if done:
            log.info(f"already trained: {weights}; skipped")
        else:
            enhance_train(cfg)
        times["enhance_train"] = time.perf_counter() - t

    if cfg.enhance.method != "identity":
        t = _stage(f"enhance ({cfg.enhance.method})")
        enhance(cfg)
        times["enhance"] = time.perf_counter() - t
    return times


def demo(cfg) -> Path:
    """Run every stage for `cfg` (the demo config) and return the run directory."""
    from darkaction.evaluation.evaluate import evaluate
    from darkaction.training.run import train, train_state

    start = time.perf_counter()
    times = build_data(cfg)

    run_dir = cfg.resolved_run_dir()
    t = _stage(f"train -> {run_dir}")
    state = train_state(run_dir, cfg.train.epochs)
    if state == "done":
        log.info(f"already trained ({run_dir / 'checkpoints' / 'last.ckpt'}); skipped")
    else:
        train(cfg, resume=state == "resume")
    times["train"] = time.perf_counter() - t

    t = _stage(f"evaluate ({cfg.eval.views} views per test video)")
    res = evaluate(run_dir, views=cfg.eval.views)
    times["evaluate"] = time.perf_counter() - t

    total = time.perf_counter() - start
    log.info("\n== demo: done")
    log.info("stage times: " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()) + f"; total {total:.0f} s")
    log.info(
        f"test top-1 {100 * res['top1']:.1f} % (clip-level {100 * res['clip_top1']:.1f} %), mean class accuracy "
        f"{100 * res['mean_class_acc']:.1f} % over {res['n_test_videos']} test videos"
    )
    log.info(f"results: {run_dir / 'results.json'}")
    log.info(f"report:  {run_dir / 'report.md'} (also report.html)")
    return run_dir
