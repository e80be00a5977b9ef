"""`train(cfg) -> Path`: one training run with Lightning, into a run directory.

    run_dir = train(load_config("configs/demo.yaml"))            # fresh run
    run_dir = train(cfg, resume=True)                            # continue a killed run from checkpoints/last.ckpt

The run directory (`cfg.run_dir` or runs/<name>) holds the resolved `config.yaml` (with N_min / N_max and the
enhancer weights filled in, so the run can be evaluated and used for prediction from its directory alone),
`data.json` (class names, N_min / N_max), `checkpoints/best.ckpt` (best val accuracy, or lowest train loss without a
val split) and `checkpoints/last.ckpt`, `metrics.csv` (CSVLogger), `tb/` (TensorBoard), `curves.png` and `report.md`.

Resume is exact at epoch boundaries on CPU: `last.ckpt` is written at the end of every epoch and holds the model,
Ranger's slow weights and step counter, the schedule and the loop counters; every random draw in an epoch is seeded
from (train.seed, epoch, index) (`utils.training_rng`), so the resumed run draws what the uninterrupted one drew.
"""

from __future__ import annotations

import copy
import csv
import io
import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import torch

from darkaction.config import save_config
from darkaction.errors import ConfigError, DataError
from darkaction.utils import atomic_write_text, read_json, seed_everything, write_json

log = logging.getLogger(__name__)


def resolve_precision(precision: str, accelerator: str) -> str:
    """`train.precision: auto` -> "bf16-mixed" on GPUs that run bf16 and on CPUs with native bf16 (oneDNN, e.g.
    AVX512-BF16 / AMX), else "32"; any other value is passed to Lightning unchanged."""
    if precision != "auto":
        return precision
    use_cuda = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    if use_cuda:
        return "bf16-mixed" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "32"
    # CPU: with native bf16, bf16 autocast measured 1.4x (48x48) to 1.8x (64x64) faster per training step than fp32
    # on the demo model (2 cores, AVX512-BF16). The NaN gradients it used to give came from oneDNN's stride-1
    # temporal conv over 2 time steps, which `TemporalConv3d` now runs in fp32. Without native bf16 (emulated
    # bf16 is slower than fp32) auto stays fp32.
    from darkaction.utils import bf16_native

    return "bf16-mixed" if bf16_native() else "32"


def _devices(value: str) -> Any:
    v = str(value).strip()
    if v == "auto":
        return "auto"
    if v.lstrip("-").isdigit():
        return int(v)
    return v  # "0,1": Lightning parses device lists itself


def _resolve_enhancer_weights(cfg) -> None:
    """Record the absolute enhancer weights path in the config, so predict can rebuild the enhancer from the run."""
    if cfg.enhance.method in ("zero-dce", "zero-dce++"):
        from darkaction.enhancement.base import default_weights_path

        w = Path(cfg.enhance.weights) if cfg.enhance.weights else default_weights_path(cfg)
        if w.is_file():
            cfg.enhance.weights = str(w.resolve())


def _read_csv_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _merge_metrics(path: Path, old_rows: list[dict], start_epoch: int) -> None:
    """CSVLogger rewrites metrics.csv on resume: put the epochs before the resume point back in front, with the rows
    logged without an epoch (the learning rate, at each epoch's start) up to their last step."""

    def number(r: dict, key: str) -> float | None:
        return None if r.get(key) in ("", None) else float(r[key])

    before = [r for r in old_rows if number(r, "epoch") is not None and number(r, "epoch") < start_epoch]
    if not before:
        return
    last_step = max(number(r, "step") or 0.0 for r in before)

    def kept(r: dict) -> bool:
        epoch = number(r, "epoch")
        return epoch < start_epoch if epoch is not None else (number(r, "step") or 0.0) <= last_step

    keep = [r for r in old_rows if kept(r)]
    new_rows = _read_csv_rows(path)
    keys: list[str] = []
    for r in keep + new_rows:
        for k in r:
            if k not in keys:
                keys.append(k)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    w.writerows(keep + new_rows)
    atomic_write_text(path, buf.getvalue())


def load_checkpoint(path: Path) -> dict:
    """A Lightning checkpoint as plain tensors and dicts (`weights_only=True`); DataError naming the file if bad."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"checkpoint not found: {path}; train a run first (darkaction train) or name an existing one")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling problem means the same thing to the user
        raise DataError(
            f"{path}: not a readable checkpoint ({type(e).__name__}: {e}); retrain or pick another"
        ) from None


def train(
    cfg,
    resume: bool = False,
    *,
    model: torch.nn.Module | None = None,
    datamodule=None,
    callbacks: list | None = None,
) -> Path:
    """Train `cfg` into its run directory and return the directory.

    Args:
        cfg: the full Config.
        resume: continue from `<run>/checkpoints/last.ckpt`.
        model, datamodule, callbacks: optional stand-ins / extras (tests, experiments); by default the model comes from
            `build_model` and the data from the prepared, enhanced cache.
    """
    from darkaction.training.module import VideoClassifierModule

    cfg = copy.deepcopy(cfg)
    run_dir = check_run(cfg, resume, own_model=model is not None)
    if cfg.train.pretrain_epochs > 0 and model is None:  # the backbone warm-up: a run of its own
        cfg.model.pretrained = str(pretrain_backbone(cfg, datamodule=datamodule))
    seed_everything(cfg.train.seed)
    dm = build_datamodule(cfg, datamodule)
    classes = record_run_config(cfg, dm, run_dir)
    lit = VideoClassifierModule(cfg, num_classes=len(classes), model=model, classes=classes)
    trainer = build_trainer(cfg, run_dir, has_val=bool(getattr(dm, "has_val", False)), callbacks=callbacks)
    fit(trainer, lit, dm, run_dir, resume)
    return run_dir


def check_run(cfg, resume: bool, own_model: bool = False) -> Path:
    """The run directory, after the checks that need no data: pretrained weights that are required but missing,
    resuming a run that does not exist or starting over one that does, no epochs, settings dark copies cannot
    work with."""
    if not own_model:
        from darkaction.models.pretrained import pretrained_file

        pretrained_file(cfg.model.pretrained)  # "required" without a file: say so before any data is read
    run_dir = cfg.resolved_run_dir()
    last = run_dir / "checkpoints" / "last.ckpt"
    if resume and not last.is_file():
        raise ConfigError(f"--resume: {last} not found; start the run without --resume")
    if not resume and last.is_file():
        raise ConfigError(
            f"{run_dir} already holds a trained run ({last}); continue it with --resume, "
            "or choose another name / run_dir (or delete the folder) to start afresh"
        )
    if cfg.train.epochs < 1 and cfg.train.max_steps < 1:
        raise ConfigError("train.epochs must be >= 1 (or set train.max_steps)")
    from darkaction.data.lowlight import check_darken_config

    check_darken_config(cfg)  # e.g. dark copies with an RGB + flow model: before the flow cache is built
    for name in cfg.train.loggers:
        _logger_class(name)  # an uninstalled W&B / MLflow: say so before training
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def build_datamodule(cfg, datamodule=None):
    """The set-up DataModule (the given stand-in, or the prepared cache's); the optical-flow cache first when the
    model reads RGB + flow (once; entries already current are skipped in well under a second)."""
    from darkaction.training.datamodule import VideoDataModule

    if datamodule is None and cfg.model.in_channels == 5:
        from darkaction.training.flow_cache import build_flow_cache

        build_flow_cache(cfg, progress=cfg.train.progress)
    dm = datamodule if datamodule is not None else VideoDataModule(cfg)
    dm.setup("fit")
    return dm


def record_run_config(cfg, dm, run_dir: Path) -> list[str]:
    """Fill in the values the data decides (index statistics, N_min / N_max, alpha, the enhancer weights' path) and
    write them to `config.yaml` and `data.json`, so the run can be evaluated from its directory alone. Returns the
    class names."""
    classes = list(dm.classes)
    _fix_index_stats(cfg, dm)
    cfg.sampling.n_min = int(getattr(dm, "n_min", 0) or cfg.sampling.n_min)
    cfg.sampling.n_max = int(getattr(dm, "n_max", 0) or cfg.sampling.n_max)
    crop = _resolve_alpha(cfg, dm, verbose=cfg.train.progress)
    _resolve_enhancer_weights(cfg)
    save_config(cfg, run_dir / "config.yaml")
    write_json(
        run_dir / "data.json",
        {"classes": classes, "n_min": cfg.sampling.n_min, "n_max": cfg.sampling.n_max, **crop},
    )
    return classes


# `train.loggers`: csv is always on (metrics.csv feeds the curves, the report and resume); the others are optional
LOGGERS = {
    "csv": ("lightning.pytorch.loggers", "CSVLogger", ""),
    "tensorboard": ("lightning.pytorch.loggers", "TensorBoardLogger", "tensorboard"),
    "wandb": ("lightning.pytorch.loggers", "WandbLogger", "wandb"),
    "mlflow": ("lightning.pytorch.loggers", "MLFlowLogger", "mlflow"),
}


def _logger_class(name: str):
    import importlib
    import importlib.util

    module, cls, needs = LOGGERS[name]
    if needs and importlib.util.find_spec(needs) is None:
        raise ConfigError(f"train.loggers: '{name}' needs the '{needs}' package: pip install {needs}")
    return getattr(importlib.import_module(module), cls)


def build_loggers(cfg, run_dir: Path) -> list:
    """metrics.csv always; TensorBoard in <run>/tb, W&B and MLflow (local ./mlruns unless MLFLOW_TRACKING_URI) when
    listed in `train.loggers`."""
    loggers = [_logger_class("csv")(save_dir=run_dir, name="", version="")]
    for name in dict.fromkeys(cfg.train.loggers):
        if name == "tensorboard":
            loggers.append(_logger_class(name)(save_dir=run_dir, name="tb", version="", default_hp_metric=False))
        elif name == "wandb":
            loggers.append(_logger_class(name)(save_dir=str(run_dir), name=cfg.name, offline=True))
        elif name == "mlflow":
            loggers.append(_logger_class(name)(experiment_name="darkaction", run_name=cfg.name))
    return loggers


def build_trainer(cfg, run_dir: Path, has_val: bool, callbacks: list | None = None):
    """The Lightning Trainer of a run: devices, precision, checkpoints (best by val accuracy, or train loss without a
    val split, and last), precise BN, loggers, progress."""
    import lightning as L
    from lightning.pytorch.callbacks import LearningRateMonitor, ProgressBar, Timer, TQDMProgressBar

    from darkaction.training.precise_bn import PreciseBN
    from darkaction.training.profile import FitShares, build_profiler

    t = cfg.train
    monitor, mode = ("val/acc", "max") if has_val else ("train/loss_epoch", "min")
    own_bar = any(isinstance(c, ProgressBar) for c in callbacks or [])
    return L.Trainer(
        default_root_dir=run_dir,
        max_epochs=t.epochs,
        max_steps=t.max_steps,
        accelerator=t.accelerator,
        devices=_devices(t.devices),
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        precision=resolve_precision(t.precision, t.accelerator),
        accumulate_grad_batches=t.accumulate,
        limit_train_batches=t.limit_train_batches,
        check_val_every_n_epoch=t.check_val_every,
        num_sanity_val_steps=0,
        # a fresh train loader per epoch, seeded from (seed, epoch): the basis of exact resume
        reload_dataloaders_every_n_epochs=1,
        logger=build_loggers(cfg, run_dir),
        callbacks=[
            PreciseBN(t.precise_bn),
            *checkpoint_callbacks(run_dir / "checkpoints", monitor, mode),
            LearningRateMonitor(logging_interval="epoch"),
            Timer(verbose=False),  # no limit: its elapsed time is saved in checkpoints, so a resumed run adds up
            # in a log file (no terminal) one progress line per epoch instead of one per step (Lightning's bar
            # writes to stdout)
            *([TQDMProgressBar(refresh_rate=10_000)] if t.progress and not sys.stdout.isatty() and not own_bar else []),
            *([FitShares(run_dir / "fit-shares.json", t.accumulate)] if t.profiler == "simple" else []),
            *(callbacks or []),
        ],
        profiler=build_profiler(t.profiler, run_dir),
        log_every_n_steps=max(1, min(50, t.batch_size)),
        enable_progress_bar=t.progress,
        enable_model_summary=t.progress,
    )


def fit(trainer, lit, dm, run_dir: Path, resume: bool) -> None:
    """trainer.fit (from last.ckpt when resuming), then the run's metrics.csv made whole again, its training time
    (`fit.json`) and its report."""
    last = run_dir / "checkpoints" / "last.ckpt"
    ckpt = load_checkpoint(last) if resume else {}
    start_epoch = int(ckpt.get("epoch", 0)) + 1 if resume else 0
    timed = not resume or any(k.startswith("Timer") for k in ckpt.get("callbacks", {}))
    old_rows = _read_csv_rows(run_dir / "metrics.csv") if resume else []
    with warnings.catch_warnings():
        # expected on a 2-core machine / with our own per-epoch loaders; Lightning's advice does not apply
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*exists and is not empty.*")
        warnings.filterwarnings("ignore", message=".*The number of training batches.*")
        trainer.fit(lit, datamodule=dm, ckpt_path=str(last) if resume else None)
    if trainer.global_rank == 0:
        if resume:
            _merge_metrics(run_dir / "metrics.csv", old_rows, start_epoch)
        write_fit_record(run_dir, trainer, timed)
        _finish_report(run_dir)


def write_fit_record(run_dir: Path, trainer, timed: bool) -> None:
    """`<run>/fit.json`: `train_seconds`, the wall time of the training loop summed over every resumed part (the time
    between a run's last checkpoint and its interruption is lost with the interruption); None when the run resumed
    from a checkpoint written before runs were timed."""
    from lightning.pytorch.callbacks import Timer

    timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
    seconds = round(timer.time_elapsed("train"), 1) if timer is not None and timed else None
    write_json(run_dir / "fit.json", {"train_seconds": seconds, "epochs": trainer.current_epoch})


def train_seconds(run_dir: Path) -> float | None:
    """A finished run's training time from its `fit.json` (None when unknown)."""
    record = Path(run_dir) / "fit.json"
    return read_json(record).get("train_seconds") if record.is_file() else None


def checkpoint_callbacks(ckpt_dir: Path, monitor: str, mode: str) -> list:
    """best.ckpt (the best epoch by `monitor`) and last.ckpt (every epoch: what --resume continues from).

    Two callbacks, because Lightning's `save_last=True` only refreshes last.ckpt when a new best was saved in the same
    step: a run whose final epochs did not improve would resume from, and be judged finished by, an older epoch."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    common = {"dirpath": ckpt_dir, "auto_insert_metric_name": False, "enable_version_counter": False}
    best = ModelCheckpoint(filename="best", monitor=monitor, mode=mode, save_top_k=1, save_last=False, **common)
    last = ModelCheckpoint(filename="last", monitor=None, save_top_k=1, every_n_epochs=1, **common)
    return [best, last]


def train_state(run_dir: Path, epochs: int) -> str:
    """'done', 'resume' or 'fresh': how far the run in `run_dir` got towards `epochs` (from its last.ckpt)."""
    from darkaction.training.precise_bn import pending

    last = Path(run_dir) / "checkpoints" / "last.ckpt"
    if not last.is_file():
        return "fresh"
    ckpt = load_checkpoint(last)
    # all epochs trained but stopped before precise BN finished the checkpoints: resuming finishes them
    return "done" if int(ckpt.get("epoch", -1)) + 1 >= epochs and not pending(ckpt) else "resume"


def pretrain_run_config(cfg):
    """The backbone warm-up run of `cfg` (`train.pretrain_epochs` > 0): the same data, backbone and optimisation with
    a TGAP head, for `pretrain_epochs` epochs, into `<run>/pretrain`."""
    pre = copy.deepcopy(cfg)
    pre.model.head = "tgap"
    pre.train.epochs = cfg.train.pretrain_epochs
    pre.train.pretrain_epochs = 0
    pre.train.max_steps = -1
    pre.run_dir = str(cfg.resolved_run_dir() / "pretrain")
    return pre


def can_warm_up(cfg) -> bool:
    """Whether `train.pretrain_epochs` applies: an R(2+1)D backbone under a bert or tgap head."""
    return cfg.model.backbone in ("r2plus1d_18", "r2plus1d_34") and cfg.model.head in ("bert", "tgap")


def pretrain_backbone(cfg, datamodule=None) -> Path:
    """Train (or finish, or reuse) the backbone warm-up run and return its last checkpoint, which `build_model`
    loads through `model.pretrained` (its `backbone.*` weights; the TGAP classifier is dropped)."""
    from darkaction.models.pretrained import names_weights

    if names_weights(cfg.model.pretrained):
        raise ConfigError(
            f"train.pretrain_epochs={cfg.train.pretrain_epochs} warms up a backbone trained from scratch, but "
            f"model.pretrained={cfg.model.pretrained} already gives one; set one of them"
        )
    if not can_warm_up(cfg):
        raise ConfigError(
            f"train.pretrain_epochs warms up an R(2+1)D backbone for a bert / tgap head; "
            f"model.backbone={cfg.model.backbone}, model.head={cfg.model.head} is not supported"
        )
    pre = pretrain_run_config(cfg)
    state = train_state(pre.resolved_run_dir(), pre.train.epochs)
    if state != "done":
        train(pre, resume=state == "resume", datamodule=datamodule)
    return pre.resolved_run_dir() / "checkpoints" / "last.ckpt"


def _resolve_alpha(cfg, dm, verbose: bool) -> dict:
    """Write the numeric delta-sampling cap into `cfg` (`alpha: auto` -> N_max / T) so evaluation samples as training
    did, and count the training clips it crops (none for auto). Returns {"alpha", "cropped_train", "train_clips"}."""
    from darkaction.data.sampling import cropped, resolve_alpha
    from darkaction.training.datamodule import lengths_of

    if isinstance(cfg.sampling.alpha, str) and not cfg.sampling.n_max:
        return {}  # a stand-in datamodule without an index: the dataset resolves alpha itself
    auto = isinstance(cfg.sampling.alpha, str)
    cfg.sampling.alpha = resolve_alpha(cfg.sampling.alpha, cfg.sampling.n_max, cfg.sampling.T)
    records = list(getattr(dm, "train_records", []))
    if not records or getattr(dm, "cache", None) is None:
        return {"alpha": cfg.sampling.alpha}
    n_crop = cropped(lengths_of(records, dm.cache), cfg.sampling.T, cfg.sampling.alpha)
    if verbose and cfg.sampling.strategy == "delta":
        how = f"auto: N_max {cfg.sampling.n_max} / T {cfg.sampling.T}, rounded up" if auto else "as configured"
        log.info(f"delta sampling: alpha {cfg.sampling.alpha:g} ({how}); {n_crop} of {len(records)} training clips "
              f"cropped (longer than alpha x T)")  # fmt: skip
    return {"alpha": cfg.sampling.alpha, "cropped_train": n_crop, "train_clips": len(records)}


def _fix_index_stats(cfg, dm) -> None:
    """`augment.normalize: index`: compute the training cache's channel statistics once and record them as
    `augment.mean/std` in the run's config, so evaluation and prediction normalise exactly as training did."""
    if cfg.augment.normalize != "index" or cfg.augment.mean or getattr(dm, "cache", None) is None:
        return
    from darkaction.data.transforms import channel_stats

    mean, std = channel_stats(dm.cache, [r.video_id for r in dm.train_records])
    cfg.augment.mean = [round(float(v), 6) for v in mean]
    cfg.augment.std = [round(float(v), 6) for v in std]


def _finish_report(run_dir: Path) -> None:
    from darkaction.report import plot_curves, write_report

    curves = plot_curves(run_dir / "metrics.csv", run_dir / "curves.png")
    results_path = run_dir / "results.json"
    if results_path.is_file():
        return  # evaluate wrote the full report already; it refreshes the curves link itself
    write_report(run_dir, {"split": "-", "checkpoint": "checkpoints/best.ckpt"}, {"curves": curves})
