"""darkaction: recognise human actions in dark videos.

Every stage of the data path is a plain function with the same name as its CLI subcommand::

    import darkaction
    darkaction.synth(cfg.synth)          # built-in synthetic dataset
    darkaction.prepare(cfg)              # index + frame cache
    darkaction.enhance(cfg)              # frozen enhancement of the cache
    darkaction.train(cfg)                # Lightning training run
    darkaction.evaluate(run_dir)         # k-view evaluation

    rec = darkaction.Recognizer.from_run("runs/demo")   # inference: files, frames, long videos, live streams
    rec.predict("night.avi")

They are imported lazily so that `import darkaction` stays light. No subpackage shares a name with a stage, so
`darkaction.enhance` stays the function however often it is called (the package is `darkaction.enhancement`).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_STAGES = {
    "synth": "darkaction.data.synthetic",
    "prepare": "darkaction.data.prepare",
    "enhance": "darkaction.enhancement.run",
    "train": "darkaction.training.run",
    "evaluate": "darkaction.evaluation.evaluate",
    "predict": "darkaction.evaluation.predict",
    "experiment": "darkaction.experiments.runner",
    "demo": "darkaction.pipeline",
    "bench": "darkaction.benchmarking",
    "Recognizer": "darkaction.inference.recognizer",
    "FrameStream": "darkaction.inference.stream",
}

__all__ = ["__version__", *_STAGES]


def __getattr__(name: str):
    if name in _STAGES:
        return getattr(importlib.import_module(_STAGES[name]), name)
    raise AttributeError(f"module 'darkaction' has no attribute {name!r}")
