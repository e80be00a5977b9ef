"""Precise BatchNorm statistics: recompute the running mean / variance as exact averages over training clips.

Why: at the paper's batch size 2 (and the demo's 8) BatchNorm's running statistics are an exponential average over
batches drawn while the weights were still moving, so evaluation-mode outputs lag the trained network. On the
synthetic dark clips a tiny R(2+1)D reached 96 % train accuracy with batch statistics but 58 % in eval mode; after
recomputing the statistics it reached 100 %. `torch.optim.swa_utils.update_bn` does the averaging (a cumulative
mean, momentum None) over up to `max_clips` training clips of the checkpoint's own epoch, with its weights frozen.

When: only where the statistics are read. Training in train mode never reads running statistics (every batch
normalises by its own), so recomputing them after every epoch (18 % of a table run's fit, docs/results.md) bought
nothing but the checkpoints' contents. They are recomputed before each validation (it reads them), and once training
ends for the checkpoints written without them (`best.ckpt`, `last.ckpt`: marked "pending" when saved, "done" after).
The clips of epoch e are a pure function of (seed, e), and the pass is seeded from (seed, e), so a checkpoint gets the
statistics a pass at the end of its own epoch gives, however the run got there: bit for bit what the old every-epoch
schedule gave on one device for models without randomness before a BN layer (R(2+1)D, measured); EfficientNet's
stochastic depth now draws from that seed, and under DDP rank 0 uses the first clips of the whole epoch, not of its
shard. Only the best and the latest file of each checkpoint callback are finished (other top-k files stay pending).
"""

from __future__ import annotations

import inspect
import io
from collections.abc import Iterator
from pathlib import Path

import lightning as L
import torch
from torch.optim.swa_utils import update_bn

from darkaction.utils import atomic_write_bytes

# checkpoint["precise_bn"]: "done" (statistics recomputed for its weights), "pending" (not yet: training stopped
# before they were), absent (not applicable: no BN, frozen BN, precise_bn 0, or written by an older version)
CHECKPOINT_KEY = "precise_bn"


def pending(checkpoint: dict) -> bool:
    """Whether a loaded checkpoint still waits for its precise BN statistics (its run stopped before fit end)."""
    return checkpoint.get(CHECKPOINT_KEY) == "pending"


def _clips(loader, max_clips: int, device: torch.device) -> Iterator[torch.Tensor]:
    seen = 0
    for batch in loader:
        for key in ("clip", "target_clip"):  # MRAN batches carry target-domain clips through the same BN layers
            if key in batch:
                yield batch[key].to(device)
        seen += len(batch["clip"])
        if seen >= max_clips:
            return


def _epoch_loader(trainer: L.Trainer, epoch: int):
    """The training loader of `epoch`: the datamodule's when it builds one per epoch (`train_dataloader(epoch=)`),
    else the trainer's with its sampler (and, through it, the dataset) set to that epoch."""
    dm = trainer.datamodule
    if dm is not None and "epoch" in inspect.signature(dm.train_dataloader).parameters:
        return dm.train_dataloader(epoch=epoch)
    loader = trainer.train_dataloader
    if loader is not None and hasattr(getattr(loader, "sampler", None), "set_epoch"):
        loader.sampler.set_epoch(epoch)
    return loader


class PreciseBN(L.Callback):
    """Recompute BN statistics over up to `max_clips` training clips before each validation and, once training
    ends, for every checkpoint saved without them. Skipped for models without BN, with frozen BN
    (`model.freeze_bn`), or max_clips 0."""

    def __init__(self, max_clips: int = 200) -> None:
        self.max_clips = int(max_clips)
        self._done_epoch = -1
        self._finished = False  # the checkpoints were finished at on_train_end

    def _applies(self, pl_module: L.LightningModule) -> bool:
        model = pl_module.model
        frozen = bool(getattr(pl_module.cfg.model, "freeze_bn", False))
        has_bn = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
        return self.max_clips > 0 and has_bn and not frozen

    def _recompute(self, trainer: L.Trainer, pl_module: L.LightningModule, epoch: int, loader=None) -> None:
        loader = _epoch_loader(trainer, epoch) if loader is None else loader
        if loader is None:
            return
        seed = int(pl_module.cfg.train.seed)
        # the global RNG is restored afterwards (training draws stay as they were) and seeded from (seed, epoch)
        # within, so randomness inside the model (stochastic depth before a BN) is the same wherever this runs
        # eagerly even when train.compile is on: a cumulative average (momentum None) makes each BN read its batch
        # count as a Python float, a graph break per layer that recompiled every block up to dynamo's limit
        eager = torch.compiler.set_stance("force_eager")
        with torch.random.fork_rng(devices=[]), torch.no_grad(), trainer.precision_plugin.forward_context(), eager:
            torch.manual_seed(seed * 1_000_003 + epoch)
            model = pl_module.model
            if getattr(model, "rate_input", False):  # its BN layers are all in the backbone, which reads no rates
                model = model.backbone
            update_bn(_clips(loader, self.max_clips, pl_module.device), model)

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self._done_epoch == trainer.current_epoch or not self._applies(pl_module):
            return
        self._done_epoch = trainer.current_epoch
        self._recompute(trainer, pl_module, trainer.current_epoch, loader=trainer.train_dataloader)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        if self._applies(pl_module):
            checkpoint[CHECKPOINT_KEY] = "done" if self._done_epoch == trainer.current_epoch else "pending"

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._finish(trainer, pl_module)
        trainer.strategy.barrier("precise_bn")  # other ranks go on to read the checkpoints only once rank 0 wrote them

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """A fit resumed after its last epoch skips the loop and calls no on_train_end: finish its checkpoints here.
        Lightning's teardown has moved the module to the CPU by now; the pass runs on the training device."""
        if self._finished:
            return
        device = pl_module.device
        pl_module.to(trainer.strategy.root_device)
        try:
            self._finish(trainer, pl_module)
        finally:
            pl_module.to(device)

    def _finish(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Give every pending checkpoint its statistics (loaded, recomputed for its epoch, written back atomically,
        last.ckpt last: `train_state` reads it as the run's marker); the module ends with those of the latest one
        (its weights are the module's), or, when nothing was checkpointed, with statistics recomputed over the last
        epoch's clips. With precise BN off (a run resumed with precise_bn 0 or frozen BN) pending marks are dropped:
        the running averages are what that configuration asks for."""
        self._finished = True
        if not trainer.is_global_zero:
            return
        applies = self._applies(pl_module)
        live = _state(pl_module)
        finished: list[tuple[int, dict]] = []  # (epoch, state with its statistics): best and last often coincide
        for path in _checkpoint_files(trainer):
            ckpt = torch.load(path, map_location="cpu", weights_only=False)
            if not pending(ckpt):
                continue
            if not applies:
                del ckpt[CHECKPOINT_KEY]
                _atomic_save(ckpt, path)
                continue
            epoch = int(ckpt["epoch"])
            same = [s for e, s in finished if e == epoch and _same_weights(s, ckpt["state_dict"])]
            if not same:
                pl_module.load_state_dict(ckpt["state_dict"])
                self._recompute(trainer, pl_module, epoch)
                finished.append((epoch, _state(pl_module)))
            ckpt["state_dict"] = same[0] if same else finished[-1][1]
            ckpt[CHECKPOINT_KEY] = "done"
            _atomic_save(ckpt, path)
        final = [s for _, s in finished if _same_weights(s, live)]
        pl_module.load_state_dict(final[0] if final else live)
        if applies and not trainer.checkpoint_callbacks and self._done_epoch != trainer.current_epoch - 1:
            self._recompute(trainer, pl_module, trainer.current_epoch - 1, loader=trainer.train_dataloader)


def _checkpoint_files(trainer: L.Trainer) -> list[Path]:
    """The best / latest files of the trainer's checkpoint callbacks, looked up by name in each callback's folder
    (a resumed run's restored paths point where the run was, which may have moved), last.ckpt at the end."""
    files = set()
    for cb in trainer.checkpoint_callbacks:
        for saved in filter(None, (cb.best_model_path, cb.last_model_path)):
            path = Path(cb.dirpath or Path(saved).parent) / Path(saved).name
            if path.is_file():
                files.add(path)
    return sorted(files, key=lambda p: (p.name == "last.ckpt", str(p)))


def _state(module: torch.nn.Module) -> dict:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def _same_weights(a: dict, b: dict) -> bool:
    """Equal learned tensors (BN's running statistics and counters aside)."""
    return a.keys() == b.keys() and all(
        torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point() and "running_" not in k
    )


def _atomic_save(obj: dict, path: Path) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())
