"""The LightningModule: model + loss + optimisation. Data lives in `datamodule.py`; the Trainer owns the rest.

    lit = VideoClassifierModule(cfg, num_classes=6)             # builds `build_model(cfg.model, 6, cfg.sampling.T)`
    lit = VideoClassifierModule(cfg, num_classes=6, model=net)  # any nn.Module: clip B,C,T,H,W -> logits B,K

Batches are dicts: train {"clip": B,C,T,H,W, "label": B} (+ "target_clip", "target_label" for the MRAN head);
validation the same with one test view, or (B,V,C,T,H,W) views whose softmax is averaged. Testing and prediction
go through `darkaction.inference.Recognizer`, not the Trainer.
"""

from __future__ import annotations

import math
import os
import shutil

import lightning as L
import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from darkaction.errors import ConfigError, DarkActionError
from darkaction.training.losses import build_loss
from darkaction.training.optim import build_optimizer, build_scheduler
from darkaction.utils import derived_seed


class NonFiniteLossError(DarkActionError):
    """The training loss became NaN or inf; the run stops instead of training on garbage."""


def mran_lambda(epoch: float, epochs: float) -> float:
    """MRAN's ramp-up of the adaptation loss weight: 2 / (1 + exp(-10 p)) - 1 with p = epoch / epochs in [0, 1]."""
    p = min(max(epoch / max(epochs, 1), 0.0), 1.0)
    return 2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0


def wants_channels_last(setting: bool | str, precision: str, device_type: str) -> bool:
    """`train.channels_last`: auto means on for bf16 autocast on a CPU (where it was measured faster at the same
    accuracy), else off. In fp32 it made the cpu preset's fit 1.16x faster but scored 1-2.5 points lower in 2 paired
    seeds (docs/results.md, session 25), so fp32 stays contiguous unless told."""
    if setting != "auto":
        return bool(setting)
    return bf16_on_cpu(precision, device_type)


def bf16_on_cpu(precision: str, device_type: str) -> bool:
    """Training runs bf16 autocast on a CPU: where `auto` turns channels-last and compiling on (both measured there)."""
    return device_type == "cpu" and precision.startswith("bf16")


def wants_compile(setting: bool | str, precision: str, device_type: str) -> bool:
    """`train.compile`: auto means on for bf16 autocast on a CPU where a C++ compiler is found, else off; true without
    a compiler on a CPU is a clear error instead of inductor's failure at the first step."""
    if setting == "auto":
        return bf16_on_cpu(precision, device_type) and cxx_compiler() is not None
    if setting and device_type == "cpu" and cxx_compiler() is None:
        raise ConfigError(
            "train.compile=true: torch.compile's CPU backend (inductor) needs a C++ compiler and none was found "
            "(install g++ or clang, or set CXX); or set train.compile=auto / false to train eagerly"
        )
    return bool(setting)


def cxx_compiler() -> str | None:
    """The C++ compiler inductor would use: $CXX if set, else the first of c++, g++, clang++ on PATH."""
    names = [os.environ["CXX"]] if os.environ.get("CXX") else ["c++", "g++", "clang++"]
    return next((path for path in map(shutil.which, names) if path), None)


class VideoClassifierModule(L.LightningModule):
    """Trains a video classifier with focal loss / cross-entropy, Ranger / AdamW and a one-cycle / plateau schedule.

    Args:
        cfg: the full `Config` (uses `cfg.model`, `cfg.train`, `cfg.sampling.T`).
        num_classes: K.
        model: optional ready model (tests, stand-ins); default `build_model(cfg.model, K, cfg.sampling.T)`.
    """

    def __init__(self, cfg, num_classes: int, model: nn.Module | None = None, classes: list[str] | None = None):
        super().__init__()
        self.cfg = cfg
        self.num_classes = int(num_classes)
        self.classes = list(classes or [])
        if model is None:
            from darkaction.models.build import build_model

            model = build_model(cfg.model, self.num_classes, cfg.sampling.T)
        self.model = model
        self.criterion = build_loss(cfg.train.loss, cfg.train.focal_gamma, cfg.train.focal_alpha or None)
        self.train_acc = MulticlassAccuracy(num_classes=self.num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes=self.num_classes, average="micro")

    def configure_model(self) -> None:
        # Lightning calls this in every training process (spawned DDP workers do not inherit a compiled forward).
        trainer = self._trainer  # None when called by hand (tests): fp32 on the CPU
        precision = str(trainer.precision) if trainer is not None else "32-true"
        device = trainer.strategy.root_device.type if trainer is not None else "cpu"
        channels_last = wants_channels_last(self.cfg.train.channels_last, precision, device)
        if channels_last and hasattr(self.model, "use_channels_last"):
            self.model.use_channels_last()  # the values stay: checkpoints load into a contiguous model unchanged
        # In place: the parameters keep their names, so checkpoints load into an uncompiled model.
        compiled = getattr(self.model, "_compiled_call_impl", None) is not None
        if wants_compile(self.cfg.train.compile, precision, device) and not compiled:
            self.model.compile()

    def forward(self, clip: torch.Tensor, rate: torch.Tensor | None = None) -> torch.Tensor:
        """clip (B,C,T,H,W) float [, frames per slot (B,) for a `model.rate_input` model] -> logits (B,K)."""
        if getattr(self.model, "rate_input", False):
            return self.model(clip, rate)
        return self.model(clip)

    # ------------------------------------------------------------------------------------------ training

    def on_train_batch_start(self, batch: dict, batch_idx: int) -> None:
        # Dropout and BERT token masking draw from torch's global generator, which the DataLoader also consumes at
        # times that differ between a fresh and a resumed run; reseeding it per batch from (seed, epoch, batch, rank)
        # makes the resumed run draw exactly what the uninterrupted one drew.
        torch.manual_seed(derived_seed(self.cfg.train.seed, self.current_epoch, batch_idx * 1024 + self.global_rank,
                                       "dropout"))  # fmt: skip

    def _check_finite(self, loss: torch.Tensor, batch: dict) -> None:
        if not torch.isfinite(loss.detach()).all():
            ids = batch.get("index")
            where = f" (dataset indices {ids.tolist()})" if torch.is_tensor(ids) else ""
            raise NonFiniteLossError(
                f"training loss is {loss.item()} at epoch {self.current_epoch}, step {self.global_step}{where}; "
                f"the run stopped. Lower train.lr (now {self.cfg.train.lr}), try --set train.precision=32, or check "
                "the input frames; resume from the last good epoch with --resume."
            )

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        clip, label = batch["clip"], batch["label"]
        if "target_clip" in batch and hasattr(self.model, "adaptation_step"):
            # MRAN (Table 4): labelled source clips (extra_train data) and main-source target clips, paired at random.
            src_logits, tgt_logits, da_loss = self.model.adaptation_step(clip, batch["target_clip"], label)
            lam = mran_lambda(self.current_epoch, self.cfg.train.epochs)
            cls_loss = self.criterion(src_logits, label) + self.criterion(tgt_logits, batch["target_label"])
            loss = cls_loss + lam * self.cfg.model.mran_weight * da_loss.float()
            self.log("train/da_loss", da_loss.detach().float(), on_step=False, on_epoch=True, sync_dist=True)
            self.log("train/mran_lambda", lam, on_step=False, on_epoch=True)
            logits = src_logits
        else:
            logits = self(clip, batch.get("rate"))
            loss = self.criterion(logits, label)
        self._check_finite(loss, batch)
        bs = label.shape[0]
        self.train_acc(logits.detach().float(), label)
        self.log("train/loss", loss.detach(), on_step=True, on_epoch=True, prog_bar=True, sync_dist=True, batch_size=bs)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True, batch_size=bs)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        clip, label = batch["clip"], batch["label"]
        if clip.dim() == 6:  # (B,V,C,T,H,W): several views, averaged like at test time
            probs = self.view_probs(clip, batch.get("rate")).mean(1)
            loss = nn.functional.nll_loss(probs.clamp_min(1e-8).log(), label)
        else:
            logits = self(clip, batch.get("rate"))
            probs = logits.float().softmax(-1)
            loss = self.criterion(logits, label)
        self.val_acc(probs, label)
        bs = label.shape[0]
        self.log("val/loss", loss, on_step=False, on_epoch=True, sync_dist=True, batch_size=bs)
        self.log("val/acc", self.val_acc, on_step=False, on_epoch=True, prog_bar=True, batch_size=bs)

    def view_probs(self, clip: torch.Tensor, rate: torch.Tensor | None = None) -> torch.Tensor:
        """clip (B,V,C,T,H,W) [, rates (B,V)] -> per-view softmax (B,V,K) in fp32 (the V views go through as one
        batch)."""
        b, v = clip.shape[:2]
        logits = self(clip.flatten(0, 1), None if rate is None else rate.flatten())
        return logits.float().softmax(-1).view(b, v, -1)

    # ------------------------------------------------------------------------------------------ optimisation

    def configure_optimizers(self):
        t = self.cfg.train
        if not 0 < t.backbone_lr <= 1e3:
            raise ConfigError(f"train.backbone_lr={t.backbone_lr}: give a positive factor of train.lr (1 = the same)")
        backbone = getattr(self.model, "backbone", None)
        # one rate for all: the two groups of before (checkpoints of earlier runs resume into the same layout)
        gentle = t.backbone_lr != 1.0 and isinstance(backbone, nn.Module)
        in_backbone = {id(p) for p in backbone.parameters()} if gentle else set()
        # (backbone?, decay?) -> parameters; weight decay only on weights: norms, biases and other 1-D parameters
        # are left alone
        split: dict[tuple[bool, bool], list] = {}
        for p in self.model.parameters():
            if p.requires_grad:
                split.setdefault((id(p) in in_backbone, p.dim() > 1), []).append(p)
        groups = [
            {"params": split[key], "weight_decay": t.weight_decay if key[1] else 0.0,
             "lr": t.lr * (t.backbone_lr if key[0] else 1.0)}
            for key in sorted(split, reverse=True)
        ]  # fmt: skip
        opt = build_optimizer(t.optimizer, groups, t)
        total = int(self.trainer.estimated_stepping_batches) if self._trainer is not None else max(t.max_steps, 1)
        sched = build_scheduler(t.scheduler, opt, [g["lr"] for g in opt.param_groups], total, t.pct_start)
        if sched is None:
            return opt
        if t.scheduler == "plateau":
            sched["monitor"] = "val/loss" if self._has_val() else "train/loss_epoch"
        return {"optimizer": opt, "lr_scheduler": sched}

    def _has_val(self) -> bool:
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        return bool(getattr(dm, "has_val", False))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # plain data only: the checkpoint must load with torch.load(weights_only=True). The resolved config and the
        # enhancer's weights travel with it, so one .ckpt file is enough for `Recognizer.from_run`.
        from darkaction.config import to_dict

        info = {"classes": list(self.classes), "num_classes": self.num_classes, "config": to_dict(self.cfg)}
        enhancer = self._enhancer_state()
        if enhancer:
            info["enhancer"] = enhancer
        checkpoint["darkaction"] = info

    def _enhancer_state(self) -> dict:
        """The run's Zero-DCE weights (read once), or {} when it has none or the file is not there."""
        if not hasattr(self, "_enhancer_cache"):
            e = self.cfg.enhance
            self._enhancer_cache = {}
            if e.method in ("zero-dce", "zero-dce++") and e.weights:
                from darkaction.enhancement.base import read_state_dict
                from darkaction.errors import DataError

                try:
                    self._enhancer_cache = read_state_dict(e.weights)
                except DataError:
                    pass  # a run whose weights are elsewhere still trains; from_run then reads enhance.weights
        return self._enhancer_cache
