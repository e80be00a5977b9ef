"""Where a fit's time goes (`train.profiler`): Lightning's profiler, and its simple report grouped into shares.

With `train.profiler: simple` a run writes Lightning's report to `<run>/fit-profile.txt` (one line per hook) and the
grouped shares to `<run>/fit-shares.json`: the model's training step (forward + loss, backward) against everything
outside it (data, optimizer, precise BN, checkpoints, validation, the rest of Lightning), as fractions of the fit's
wall time from `on_fit_start` to `on_fit_end`. Timings are host-side: on a GPU, queued kernels land in whichever hook
waits for them first (the loss check in `training_step` does), so the split is meant for CPUs.
"""

from __future__ import annotations

import time
from pathlib import Path

import lightning as L

from darkaction.utils import write_json

# Lightning simple-profiler actions, grouped. Nesting decides the rules: optimizer_step wraps the closure
# (training_step and backward) when train.accumulate is 1, so the optimizer's own time is what is left of it;
# save_checkpoint runs inside ModelCheckpoint's hooks and is not counted again.
GROUPS = {
    "forward + loss": lambda a: a.endswith("Strategy.training_step"),
    "backward": lambda a: a.endswith("Strategy.backward"),
    "data": lambda a: a.endswith((".train_dataloader_next", ".train_dataloader")),
    "precise BN": lambda a: a.startswith("[Callback]PreciseBN") and not a.endswith("on_save_checkpoint"),
    "checkpoints": lambda a: a.startswith("[Callback]ModelCheckpoint") and not a.endswith("on_save_checkpoint"),
    "validation": lambda a: a.startswith(("[_EvaluationLoop]", "[Strategy]")) and "val" in a.lower(),
}


def build_profiler(kind: str, run_dir: Path):
    """Lightning's profiler of that kind, writing its report to <run>/fit-profile.txt; None when `kind` is ""."""
    if not kind:
        return None
    from lightning.pytorch import profilers

    cls = {"simple": profilers.SimpleProfiler, "advanced": profilers.AdvancedProfiler,
           "pytorch": profilers.PyTorchProfiler}[kind]  # fmt: skip
    return cls(dirpath=run_dir, filename="profile")


def time_shares(durations: dict[str, list[float]], fit_seconds: float, accumulate: int = 1) -> dict[str, float | None]:
    """Seconds per group of a simple profiler's `recorded_durations` over a fit of `fit_seconds`; "optimizer" is None
    when gradients were accumulated (the closure then runs outside optimizer_step and cannot be subtracted)."""
    totals = {action: sum(ds) for action, ds in durations.items()}
    seconds: dict[str, float | None] = {g: sum(t for a, t in totals.items() if match(a)) for g, match in GROUPS.items()}
    if accumulate == 1:
        inside = sum(t for a, t in totals.items() if a.endswith(".optimizer_step"))
        seconds["optimizer"] = max(0.0, inside - seconds["forward + loss"] - seconds["backward"])
    else:
        seconds["optimizer"] = None
    seconds["rest (Lightning, logging)"] = max(0.0, fit_seconds - sum(v for v in seconds.values() if v))
    return seconds


class FitShares(L.Callback):
    """Times the fit (on_fit_start to on_fit_end) and writes the simple profiler's grouped shares to `path`."""

    def __init__(self, path: Path, accumulate: int = 1) -> None:
        self.path, self.accumulate = Path(path), accumulate

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t0 = time.perf_counter()

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        wall = time.perf_counter() - self._t0
        durations = trainer.profiler.recorded_durations
        seconds = time_shares(durations, wall, self.accumulate)
        model = seconds["forward + loss"] + seconds["backward"]
        steps = next((len(v) for a, v in durations.items() if GROUPS["forward + loss"](a)), 0)
        record = {
            "fit_s": wall,
            "train_steps": steps,
            "seconds": seconds,
            "share": {g: (s / wall if s is not None else None) for g, s in seconds.items()},
            "outside_train_step": 1 - model / wall,  # everything but forward + loss and backward of training batches
        }
        if trainer.global_rank == 0:
            write_json(self.path, record)
